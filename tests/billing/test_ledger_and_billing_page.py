"""The ledger written from Stripe's webhooks (payments, renewals, refunds, credit notes), and the
customer's billing page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import Invoice, LedgerEntry, Subscription
from tests.billing.conftest import deliver, pay, place, process_all, sandbox_events, stripe_api

pytestmark = pytest.mark.django_db
DAY = 86400


def deliver_new(client, sandbox, seen: set[str]) -> None:
    """Deliver the sandbox's events not delivered yet, then let the worker process them."""
    for event in sandbox_events(sandbox):
        if event["id"] not in seen:
            seen.add(event["id"])
            assert deliver(client, event).status_code == 200
    process_all()


@pytest.fixture
def paid_order(client, shop, german, stripe_settings):
    order = place(german, shop, "vds")  # €29.99 a month + €10.00 setup, German VAT 19%
    pay(stripe_settings, order)
    seen: set[str] = set()
    deliver_new(client, stripe_settings, seen)
    order.refresh_from_db()
    return order, seen


def rows(kind):
    return list(LedgerEntry.objects.filter(kind=kind).order_by("pk"))


def test_first_payment_in_the_ledger(paid_order, german):
    order, _ = paid_order
    issued, paid, payment = rows("invoice_issued"), rows("invoice_paid"), rows("payment")
    assert len(issued) == len(paid) == len(payment) == 1
    # 2999 + 1000 net; VAT 570 + 190; gross 4759.
    for entry in (issued[0], paid[0], payment[0]):
        assert (entry.net_cents, entry.vat_cents, entry.gross_cents) == (3999, 760, 4759)
        assert entry.currency == "EUR" and entry.country == "DE"
        assert entry.vat_treatment == "domestic" and entry.vat_rate == 19
        assert entry.customer == german and entry.plan == order.plan
    assert payment[0].stripe_object_id.startswith("pi_")
    assert order.first_total_cents == 4759


def test_renewal_and_refund_and_credit_note(client, paid_order, stripe_settings):
    order, seen = paid_order
    stripe_settings.advance(32 * DAY)
    deliver_new(client, stripe_settings, seen)
    assert len(rows("invoice_paid")) == 2
    renewal = rows("invoice_paid")[1]
    assert (renewal.net_cents, renewal.vat_cents, renewal.gross_cents) == (2999, 570, 3569)
    subscription = Subscription.objects.get()
    assert subscription.current_period_end.timestamp() > stripe_settings.now() + 20 * DAY

    api = stripe_api(stripe_settings)
    api.v1.refunds.create(params={"payment_intent": renewal_payment_intent(), "amount": 1190})
    deliver_new(client, stripe_settings, seen)
    (refund,) = rows("refund")
    # 1190 of a 3569 payment that carried 570 VAT: 190 VAT, 1000 net, all negative.
    assert (refund.net_cents, refund.vat_cents, refund.gross_cents) == (-1000, -190, -1190)

    invoice = Invoice.objects.order_by("issued_at").first()
    api.v1.credit_notes.create(
        params={"invoice": invoice.stripe_invoice_id, "amount": 500, "reason": "order_change"}
    )
    deliver_new(client, stripe_settings, seen)
    (credit,) = rows("credit_note")
    assert credit.gross_cents < 0 and credit.gross_cents == credit.net_cents + credit.vat_cents

    # Everything delivered again: not one row more.
    count = LedgerEntry.objects.count()
    for event in sandbox_events(stripe_settings):
        deliver(client, event)
    process_all()
    assert LedgerEntry.objects.count() == count


def renewal_payment_intent() -> str:
    return rows("payment")[1].stripe_object_id


def test_failed_renewal_marks_the_subscription(client, shop, french, stripe_settings):
    order = place(french, shop)
    pay(stripe_settings, order, "4000000000000341")
    seen: set[str] = set()
    deliver_new(client, stripe_settings, seen)
    assert Subscription.objects.get().status == "active"
    stripe_settings.advance(32 * DAY)
    deliver_new(client, stripe_settings, seen)
    assert Subscription.objects.get().status == "past_due"
    assert len(rows("invoice_paid")) == 1
    assert Invoice.objects.filter(status="open").count() == 1


def test_billing_page_lists_subscription_and_invoices(client, paid_order, german):
    order, _ = paid_order
    client.force_login(german)
    page = client.get(reverse("billing:overview")).content.decode()
    subscription = Subscription.objects.get()
    assert order.hostname in page
    assert subscription.current_period_end.strftime("%Y-%m-%d") in page
    invoice = Invoice.objects.get()
    assert invoice.number and invoice.number in page
    assert invoice.hosted_invoice_url in page and invoice.invoice_pdf in page
    assert "€47.59" in page


def test_billing_page_shows_only_my_things(client, paid_order, french):
    client.force_login(french)
    page = client.get(reverse("billing:overview")).content.decode()
    assert "No invoices yet." in page and "no subscriptions yet" in page


def test_customer_portal_button(client, paid_order, german, stripe_settings):
    client.force_login(german)
    response = client.post(reverse("billing:customer_portal"))
    assert response.status_code == 302
    assert response["Location"].startswith(stripe_settings.url + "/p/session/")
    assert client.get(reverse("billing:customer_portal")).status_code == 405


def test_customer_portal_without_orders(client, alice):
    client.force_login(alice)
    response = client.post(reverse("billing:customer_portal"), follow=True)
    assert "after your first order" in response.content.decode()
