"""Webhooks that arrive while no worker runs: acknowledged and stored, and a worker started later
(real Celery, real broker) turns the paid order into exactly one server. A broker that goes away
after an event was processed leaves it processed."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from django.utils import timezone
from kombu import pools as kombu_pools
from kombu.exceptions import OperationalError as KombuOperationalError

from billing.events import event_process
from billing.models import StripeEvent
from billing.tasks import retry_stripe_events
from instances.models import Instance, InstanceOperation
from instances.operations import engine
from portal.celery import app as celery_app
from portal.celery import configure
from tests.billing.conftest import deliver, pay, place, sandbox_events

# The worker thread and the test write at once: committed transactions, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_events_wait_in_the_broker_for_a_worker(client, shop, german, stripe_settings):
    celery_app.control.purge()  # messages other tests queued for nobody
    order = place(german, shop)
    pay(stripe_settings, order)
    events = sandbox_events(stripe_settings)
    for event in events + events:  # and every one delivered twice
        assert deliver(client, event).status_code == 200
    assert StripeEvent.objects.count() == len(events)
    assert not StripeEvent.objects.filter(processed_at__isnull=False).exists()
    assert Instance.objects.count() == 0

    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False):
        wait_until(lambda: not StripeEvent.objects.filter(processed_at__isnull=True).exists())
    connections.close_all()
    instance = Instance.objects.get()
    assert instance.external_ref == f"order:{order.pk}"
    order.refresh_from_db()
    assert order.instance_id == instance.pk


def _broker_at(settings, url: str) -> None:
    settings.CELERY_BROKER_URL = url
    configure(celery_app)
    kombu_pools.reset()  # the pools are kept per URL; Celery has no public call to drop them
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_gone(settings):
    """Sending a task fails at once: the broker's port refuses connections."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real_broker = settings.CELERY_BROKER_URL
    _broker_at(settings, f"redis://127.0.0.1:{port}/0")
    yield
    _broker_at(settings, real_broker)


def test_an_event_processed_before_its_task_cannot_be_sent_stays_processed(
    client, shop, german, stripe_settings, broker_gone, django_capture_on_commit_callbacks
):
    """The worker wrote the payment and the server's build (committed), then sending the
    build's task fails: the event keeps its success (no error kept, beat leaves it be), and the
    reaper starts the build nobody was told about."""
    order = place(german, shop)
    pay(stripe_settings, order)
    with django_capture_on_commit_callbacks(execute=False):  # the webhook's task: not sent
        for event in sandbox_events(stripe_settings, "checkout.session.completed"):
            assert deliver(client, event).status_code == 200
    stored = StripeEvent.objects.get()
    with pytest.raises(KombuOperationalError):
        event_process(stored.pk)  # the build's task, sent after the commit
    stored.refresh_from_db()
    assert stored.processed_at is not None and stored.last_error == ""
    later = timezone.now() + timedelta(hours=1)
    assert retry_stripe_events(now=later) == 0
    build = InstanceOperation.objects.get(instance__external_ref=f"order:{order.pk}")
    assert build.state == InstanceOperation.State.QUEUED
    assert [operation_id for operation_id, _chain in engine.reap(now=later)] == [build.pk]
