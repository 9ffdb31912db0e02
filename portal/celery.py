"""The Celery app. Tasks are long and idempotent, so a task is acknowledged only after it ran
and is handed back to the queue if its worker dies (acks_late + reject_on_worker_lost)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")


def _broker_transport_options(settings) -> dict:
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = settings.BROKER_DIR
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # The filesystem transport polls; kombu's default second adds up over a build.
            "polling_interval": 0.1,
        }
    return {
        "visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT,
        # A Redis that accepts connections and never answers: every command gives up after the
        # socket timeout instead of waiting forever (the BRPOP of a worker waits on poll(), not
        # on the socket, so it is not cut short).
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
    }


# Queues per concern, so a burst of one kind of work never delays another: server operations
# (customers wait on them), Stripe events (money), and maintenance that runs on a schedule.
# A worker started without -Q consumes all of them (make run); production can give each its
# own pool (README, "Production").
QUEUES = ("operations", "billing", "maintenance", "exports", "celery")
EXCHANGE = Exchange("celery", type="direct")
ROUTES = {
    "instances.advance_operation": "operations",
    "instances.refresh_usage": "operations",
    "billing.process_stripe_event": "billing",
    "billing.sync_customer_tax": "billing",
    "instances.reap_operations": "maintenance",
    "instances.sync_status": "maintenance",
    "billing.retry_stripe_events": "maintenance",
    "instances.drain_node": "operations",
    "instances.drain_nodes": "maintenance",
    "instances.planned_reboots": "maintenance",
    # Starts the due backups only; they run as operations (on `operations`, never blocking).
    "instances.start_backups": "maintenance",
    "instances.check_firewalls": "maintenance",
    "billing.upgrades_due": "maintenance",
    "accounts.recheck_vat_ids": "maintenance",
    # Finance exports can read a year of ledger rows: never in the way of the work above.
    "billing.run_export": "exports",
    "billing.monthly_exports": "maintenance",
    "billing.lifecycle_tick": "maintenance",
    "api.purge_idempotency_keys": "maintenance",
}


def configure(app: Celery) -> None:
    from django.conf import settings

    embedded = settings.CELERY_BROKER_URL.startswith("filesystem://")
    app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        # kombu's filesystem transport, with messages that appear whole (portal/broker.py).
        broker_transport="portal.broker:Transport" if embedded else None,
        broker_transport_options=_broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.REDIS_CONNECT_TIMEOUT,
        # Bounded: a caller waits at most (retries + 1) socket timeouts plus these intervals.
        task_publish_retry_policy={
            "max_retries": settings.CELERY_PUBLISH_MAX_RETRIES,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.CELERY_TASK_TIME_LIMIT,
        task_soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        worker_hijack_root_logger=False,
        task_queues=[Queue(name, EXCHANGE, routing_key=name) for name in QUEUES],
        task_default_queue="celery",
        task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
        beat_schedule={
            "reap-operations": {
                "task": "instances.reap_operations",
                "schedule": settings.OPERATION_REAPER_INTERVAL,
            },
            "sync-status": {
                "task": "instances.sync_status",
                "schedule": settings.STATUS_SYNC_INTERVAL,
            },
            "retry-stripe-events": {
                "task": "billing.retry_stripe_events",
                "schedule": settings.STRIPE_EVENT_RETRY_AFTER,
            },
            "drain-nodes": {"task": "instances.drain_nodes", "schedule": settings.DRAIN_INTERVAL},
            "planned-reboots": {"task": "instances.planned_reboots", "schedule": 60.0},
            "start-backups": {
                "task": "instances.start_backups",
                "schedule": settings.BACKUP_SCHEDULE_INTERVAL,
            },
            "check-firewalls": {
                "task": "instances.check_firewalls",
                "schedule": settings.FIREWALL_CHECK_INTERVAL,
            },
            "upgrades-due": {"task": "billing.upgrades_due", "schedule": 60.0},
            "recheck-vat-ids": {
                "task": "accounts.recheck_vat_ids",
                "schedule": settings.VIES_RECHECK_INTERVAL,
            },
            # Last month's finance exports, mailed (idempotent: a second run mails nothing).
            "monthly-exports": {
                "task": "billing.monthly_exports",
                "schedule": crontab(minute=0, hour=6, day_of_month=1),
            },
            "lifecycle": {"task": "billing.lifecycle_tick", "schedule": 300.0},
            "idempotency-keys": {"task": "api.purge_idempotency_keys", "schedule": 3600.0},
        },
    )


configure(app)
app.autodiscover_tasks()
