"""Cases a review found: an image not offered in the location, events that arrive alone or in
an order that would book wrong amounts, voided invoices, and a hand-typed ?paid=1."""

from __future__ import annotations

import copy

import pytest
from django.urls import reverse

from billing import ledger
from billing.events import event_process
from billing.ledger import LedgerNotReady
from billing.models import LedgerEntry, Order, StripeEvent
from billing.stripe_client import StripeError
from billing.tasks import _worth_retrying
from instances.models import Instance
from tests.billing.conftest import deliver, pay, place, process_all, sandbox_events, stripe_api
from tests.factories import make_os_image

pytestmark = pytest.mark.django_db


def test_image_not_offered_in_the_location_is_a_form_error(client, shop, german):
    other = make_os_image(slug="rocky-9", name="Rocky Linux 9")  # no template anywhere
    client.force_login(german)
    response = client.post(
        reverse("billing:order_new"),
        {
            "plan": shop["nvme"].pk,
            "location": shop["location"].pk,
            "os_image": other.pk,
            "hostname": "web-1",
            "generate_password": "on",
        },
    )
    assert response.status_code == 200
    assert "Choose an operating system offered in" in response.content.decode()
    assert Order.objects.count() == 0


def test_subscription_event_alone_pays_the_order(client, shop, german, stripe_settings):
    """Checkout and invoice deliveries lost: the active subscription still pays the order."""
    order = place(german, shop)
    pay(stripe_settings, order)
    (created,) = sandbox_events(stripe_settings, "customer.subscription.created")
    deliver(client, created)
    process_all()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and Instance.objects.count() == 1


def test_refund_before_its_payment_waits_for_it(client, shop, german, stripe_settings):
    order = place(german, shop)
    pay(stripe_settings, order)
    paid_events = sandbox_events(stripe_settings)
    invoice = next(e for e in paid_events if e["type"] == "invoice.paid")["data"]["object"]
    payment_intent = (
        stripe_api(stripe_settings)
        .v1.invoices.retrieve(invoice["id"], params={"expand": ["payments"]})
        .payments.data[0]
        .payment.payment_intent
    )
    stripe_api(stripe_settings).v1.refunds.create(
        params={"payment_intent": payment_intent, "amount": 594}
    )
    (refund_event,) = sandbox_events(stripe_settings, "refund.created")
    deliver(client, refund_event)
    with pytest.raises(LedgerNotReady):
        process_all()
    assert not LedgerEntry.objects.filter(kind="refund").exists()
    for event in paid_events:
        deliver(client, event)
    for stored in StripeEvent.objects.exclude(type="refund.created"):
        event_process(stored.pk)
    process_all()  # the refund, retried
    (refund,) = LedgerEntry.objects.filter(kind="refund")
    assert (refund.net_cents, refund.vat_cents, refund.gross_cents) == (-499, -95, -594)


def test_voided_invoice_is_reversed_once(german, shop, stripe_settings):
    from billing.models import BillingAccount

    BillingAccount.objects.create(user=german, stripe_customer_id="cus_void")
    invoice = {
        "id": "in_void",
        "customer": "cus_void",
        "currency": "eur",
        "number": "X-1",
        "status": "open",
        "total": 594,
        "total_taxes": [{"amount": 95}],
        "customer_address": {"country": "DE"},
        "status_transitions": {"finalized_at": 1_790_000_000},
        "created": 1_790_000_000,
    }
    ledger.invoice_issued(invoice, "evt_1")
    voided = copy.deepcopy(invoice) | {"status": "void"}
    voided["status_transitions"]["voided_at"] = 1_790_000_100
    ledger.invoice_issued(voided, "evt_2")
    ledger.invoice_voided(voided, "evt_2")
    ledger.invoice_voided(voided, "evt_3")
    rows = {row.kind: row.gross_cents for row in LedgerEntry.objects.all()}
    assert rows == {"invoice_issued": 594, "invoice_voided": -594}


def test_never_issued_void_invoice_books_nothing(german):
    ledger.invoice_voided({"id": "in_x", "status": "void", "customer": "cus_x"}, "evt")
    assert LedgerEntry.objects.count() == 0


def test_hand_typed_paid_flag_does_not_hide_pay(client, shop, german, stripe_settings):
    order = place(german, shop)
    client.force_login(german)
    client.post(reverse("billing:order_pay", args=[order.pk]))
    page = client.get(reverse("billing:order", args=[order.pk]) + "?paid=1").content.decode()
    assert "Awaiting payment" in page and "Confirming your payment" not in page


def test_what_the_task_retries():
    assert _worth_retrying(StripeError("down", transient=True))
    assert not _worth_retrying(StripeError("refused"))
    assert _worth_retrying(LedgerNotReady("later"))
    assert not _worth_retrying(ValueError("bug"))


def test_a_subscription_for_another_price_does_not_build(client, shop, german, stripe_settings):
    """Metadata naming the order is not enough: the subscription must pay the ordered price."""
    from billing.events import event_process
    from billing.orders import OrderError, customer_for

    order = place(german, shop)  # NVMe VPS S
    api = stripe_api(stripe_settings)
    session = api.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer_for(german),
            "line_items": [{"price": shop["storage"].stripe_price_id, "quantity": 1}],
            "subscription_data": {"metadata": {"order_id": str(order.pk)}},
            "success_url": "http://shop.test/ok",
        }
    )
    stripe_settings.pay(session.id, "4242424242424242")
    for event in sandbox_events(stripe_settings):
        deliver(client, event)
    refused = []
    for stored in StripeEvent.objects.all():
        try:
            event_process(stored.pk)
        except OrderError as error:
            refused.append(str(error))
    assert refused and all("not building" in message for message in refused)
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT
    assert Instance.objects.count() == 0
    assert StripeEvent.objects.filter(last_error__contains="not building").exists()
