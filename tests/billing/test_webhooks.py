"""The webhook endpoint: signatures, storing, and processing that ends the same way however the
deliveries come (duplicated, replayed, out of order, or while no worker runs).

Events are the Stripe sandbox's own (made by paying a real checkout session), delivered by the
test with a signature so the order and timing are under the test's control.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.events import event_process
from billing.models import LedgerEntry, Order, StripeEvent, Subscription
from billing.tasks import retry_stripe_events
from instances.models import Instance
from portal.celery import app as celery_app
from tests.billing.conftest import (
    deliver,
    pay,
    place,
    process_all,
    sandbox_events,
    signature,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_events(shop, german, stripe_settings):
    """An order paid on the sandbox; the events it made, not yet delivered."""
    order = place(german, shop)
    pay(stripe_settings, order)
    events = sandbox_events(stripe_settings)
    types = [event["type"] for event in events]
    assert "checkout.session.completed" in types and "invoice.paid" in types
    return order, events


def tampered(header: str) -> str:
    """The same signature with its last hex digit changed (always a different one)."""
    return header[:-1] + ("0" if header[-1] != "0" else "1")


def by_type(events, kind):
    return next(event for event in events if event["type"] == kind)


def test_bad_signature_is_refused_and_nothing_stored(client, paid_events):
    _, events = paid_events
    response = deliver(client, events[0], secret="whsec_wrong")
    assert response.status_code == 400
    payload = json.dumps(events[0]).encode()
    response = client.post(
        "/billing/stripe/webhook/",
        data=payload,
        content_type="application/json",
        headers={"stripe-signature": tampered(signature(payload))},
    )
    assert response.status_code == 400
    response = client.post(
        "/billing/stripe/webhook/", data=payload, content_type="application/json"
    )
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_stale_timestamp_is_refused(client, paid_events):
    _, events = paid_events
    response = deliver(client, events[0], timestamp=int(time.time()) - 3600)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_a_changed_body_breaks_the_signature(client, paid_events):
    _, events = paid_events
    payload = json.dumps(events[0]).encode()
    header = signature(payload)
    tampered = payload.replace(b'"livemode": false', b'"livemode": true')
    response = client.post(
        "/billing/stripe/webhook/",
        data=tampered,
        content_type="application/json",
        headers={"stripe-signature": header},
    )
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_get_is_not_allowed(client):
    assert client.get("/billing/stripe/webhook/").status_code == 405


def test_unknown_event_type_is_stored_and_ignored(client, db, stripe_settings):
    event = {
        "id": "evt_unknown_1",
        "object": "event",
        "type": "radar.early_fraud_warning.created",
        "created": int(time.time()),
        "data": {"object": {"id": "issfr_1", "object": "radar.early_fraud_warning"}},
    }
    with_callbacks = deliver(client, event)
    assert with_callbacks.status_code == 200
    stored = StripeEvent.objects.get()
    assert event_process(stored.pk) == "ignored (no handler)"
    stored.refresh_from_db()
    assert stored.processed_at is not None


def signed_event(event_id: str, kind: str = "radar.early_fraud_warning.created") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": "issfr_1", "object": "radar.early_fraud_warning"}},
    }


@pytest.mark.parametrize(
    "event",
    [
        signed_event("evt_" + "a" * 77),  # 81 characters; the column holds 80
        signed_event("evt_" + "a" * 5000),
        signed_event("evt_1 OR 1=1"),
        signed_event("not_an_event_id"),
        signed_event(42),
        signed_event("evt_1", kind="invoice." + "x" * 80),
    ],
    ids=["81-chars", "5000-chars", "spaces", "wrong-prefix", "number", "long-type"],
)
def test_a_signed_event_whose_id_or_type_does_not_fit_is_refused_and_not_stored(
    client, db, stripe_settings, event
):
    response = deliver(client, event)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_an_event_id_of_the_longest_storable_length_is_kept(client, db, stripe_settings):
    response = deliver(client, signed_event("evt_" + "a" * 76))
    assert response.status_code == 200
    assert len(StripeEvent.objects.get().event_id) == 80


def test_delivery_answers_fast_and_queues_processing(
    client, paid_events, django_capture_on_commit_callbacks
):
    _, events = paid_events
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(client, by_type(events, "checkout.session.completed"))
    assert response.status_code == 200
    assert len(callbacks) == 1  # process_stripe_event.delay, after commit
    assert Instance.objects.count() == 0  # nothing done inside the request


def test_paid_order_becomes_one_server_with_duplicates(client, paid_events):
    order, events = paid_events
    for event in events:
        for _ in range(3):
            assert deliver(client, event).status_code == 200
    assert StripeEvent.objects.count() == len(events)
    process_all()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    instance = Instance.objects.get()
    assert order.instance == instance
    assert instance.external_ref == f"order:{order.pk}"
    assert instance.status == Instance.Status.QUEUED
    assert (instance.vcpus, instance.memory_mib, instance.disk_gib) == (2, 4096, 75)
    subscription = Subscription.objects.get()
    assert subscription.status == "active"
    assert subscription.current_period_end > subscription.current_period_start
    kinds = sorted(LedgerEntry.objects.values_list("kind", flat=True))
    assert kinds == ["invoice_issued", "invoice_paid", "payment"]


def test_replaying_processed_events_changes_nothing(client, paid_events):
    _, events = paid_events
    for event in events:
        deliver(client, event)
    process_all()
    ledger_before = list(LedgerEntry.objects.values_list("pk", flat=True))
    for event in events:
        assert deliver(client, event).status_code == 200
        # even if a worker processes the same event again
        event_process(StripeEvent.objects.get(event_id=event["id"]).pk)
    process_all()
    assert Instance.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("pk", flat=True)) == ledger_before


def test_invoice_paid_before_checkout_completed(client, paid_events):
    order, events = paid_events
    deliver(client, by_type(events, "invoice.paid"))
    process_all()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Instance.objects.count() == 1
    deliver(client, by_type(events, "checkout.session.completed"))
    process_all()
    assert Instance.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_reverse_order_of_everything(client, paid_events):
    order, events = paid_events
    for event in reversed(events):
        deliver(client, event)
        process_all()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Instance.objects.count() == 1
    assert Subscription.objects.get().status == "active"
    assert LedgerEntry.objects.count() == 3


def test_webhook_while_the_worker_is_down(client, paid_events, django_capture_on_commit_callbacks):
    """Stored and acknowledged with no worker; the worker, once back, builds exactly one."""
    order, events = paid_events
    with django_capture_on_commit_callbacks(execute=False):
        for event in events:
            assert deliver(client, event).status_code == 200
    assert Instance.objects.count() == 0
    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == len(events)
    # The beat job re-queues what nobody processed; the worker then runs each event.
    process_all()
    process_all()
    assert Instance.objects.count() == 1
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()


def test_beat_queues_again_what_was_stored_longer_ago_than_the_retry_delay(
    client, paid_events, settings, django_capture_on_commit_callbacks
):
    """At the time beat runs at (it may be given one): not an event that may still be on its
    way to a worker, but one stored longer ago than STRIPE_EVENT_RETRY_AFTER."""
    _, events = paid_events
    with django_capture_on_commit_callbacks(execute=False):  # its task never sent
        deliver(client, by_type(events, "checkout.session.completed"))
    now = timezone.now()
    later = now + timedelta(seconds=settings.STRIPE_EVENT_RETRY_AFTER + 1)
    try:
        assert retry_stripe_events(now=now) == 0
        assert retry_stripe_events(now=later) == 1
    finally:
        celery_app.control.purge()  # the task it sent is for no worker of this test


def test_events_of_another_customers_order_are_ignored(
    client, shop, german, french, stripe_settings
):
    """A subscription whose metadata names another customer's order does not pay that order."""
    mine = place(german, shop)
    theirs = place(french, shop, hostname="theirs")
    pay(stripe_settings, mine)
    events = sandbox_events(stripe_settings)
    for event in events:
        data = event["data"]["object"]
        if data.get("object") == "subscription":
            data["metadata"]["order_id"] = str(theirs.pk)
    # The portal re-reads the subscription from Stripe, so the forged metadata has no effect.
    for event in events:
        deliver(client, event)
    process_all()
    theirs.refresh_from_db()
    assert theirs.status == Order.Status.AWAITING_PAYMENT
    assert Instance.objects.filter(owner=french).count() == 0
    assert Instance.objects.filter(owner=german).count() == 1
