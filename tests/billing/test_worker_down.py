"""Webhooks that arrive while no worker runs: acknowledged and stored, and a worker started later
(real Celery, real broker) turns the paid order into exactly one server."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections

from billing.models import StripeEvent
from instances.models import Instance
from portal.celery import app as celery_app
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
