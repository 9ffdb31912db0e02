"""The Celery app is configured for long, idempotent tasks that survive a worker dying."""

from __future__ import annotations

from django.conf import settings

from portal.celery import app

# What a worker does as it starts: import every app's tasks module (autodiscovery), so this
# file sees all tasks whatever ran before it.
app.loader.import_default_modules()


def test_tasks_are_acknowledged_only_after_they_ran():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_a_worker_takes_one_task_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_have_hard_and_soft_time_limits():
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.task_time_limit <= 60 * 60


def test_broker_matches_the_environment():
    if settings.REDIS_URL:
        assert app.conf.broker_url == settings.REDIS_URL
        # Redis must not redeliver a task that is only waiting for its countdown.
        assert app.conf.broker_transport_options["visibility_timeout"] >= 60 * 60
    else:
        assert app.conf.broker_url.startswith("filesystem://")
        assert app.conf.broker_transport == "portal.broker:Transport"
        queue = app.conf.broker_transport_options["data_folder_in"]
        assert queue == app.conf.broker_transport_options["data_folder_out"]


def test_visibility_timeout_outlasts_any_countdown_we_schedule():
    assert settings.CELERY_VISIBILITY_TIMEOUT > settings.CELERY_TASK_TIME_LIMIT


def test_each_concern_has_its_own_queue():
    route = app.amqp.router.route
    queue_of = {
        name: route({}, name)["queue"].name
        for name in (
            "instances.advance_operation",
            "instances.refresh_usage",
            "billing.process_stripe_event",
            "instances.reap_operations",
            "instances.sync_status",
            "billing.retry_stripe_events",
        )
    }
    assert queue_of == {
        "instances.advance_operation": "operations",
        "instances.refresh_usage": "operations",
        "billing.process_stripe_event": "billing",
        "instances.reap_operations": "maintenance",
        "instances.sync_status": "maintenance",
        "billing.retry_stripe_events": "maintenance",
    }
    registered = set(app.tasks)
    assert set(queue_of) <= registered, "every routed task exists"
    assert {queue.name for queue in app.conf.task_queues} >= set(queue_of.values())


def test_every_scheduled_task_exists_and_is_routed_off_the_operations_queue():
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks
        assert app.amqp.router.route({}, entry["task"])["queue"].name == "maintenance"


def test_a_task_reaches_its_own_queue_and_no_other():
    """Through the configured broker (Redis in CI, the filesystem broker otherwise)."""
    with app.connection_for_write() as connection:
        queues = {
            queue.name: queue.bind(connection.default_channel) for queue in app.conf.task_queues
        }
        for queue in queues.values():
            queue.declare()
            queue.purge()
        app.send_task("instances.sync_status", connection=connection)
        app.send_task("billing.process_stripe_event", args=(0,), connection=connection)
        received = {name: [] for name in queues}
        for name, queue in queues.items():
            while (message := queue.get(no_ack=True)) is not None:
                received[name].append(message.headers["task"])
    assert received == {
        "operations": [],
        "billing": ["billing.process_stripe_event"],
        "maintenance": ["instances.sync_status"],
        "exports": [],
        "celery": [],
    }
