# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""The Stripe sandbox (sandbox/stripe/) driven with the real `stripe` package."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    VERSION,
    catalog,
    client,
    event_types,
    sbx,
    session_for,
)


def test_catalog_and_price_edit_refused(client):
    product, price, _, vat, customer = catalog(client)
    assert price.id.startswith("price_") and price.recurring.interval == "month"
    assert vat.percentage == 19.0
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.update(price.id, {"unit_amount": 700})
    assert exc.value.code == "parameter_unknown" and exc.value.param == "unit_amount"
    updated = client.v1.prices.update(price.id, {"nickname": "S", "metadata": {"a": "1"}})
    assert updated.nickname == "S" and updated.metadata["a"] == "1"
    found = client.v1.customers.list({"email": "alice@example.com"})
    assert [c.id for c in found.data] == [customer.id]
    assert client.v1.prices.list({"product": product.id}).data[0].id.startswith("price_")


def test_checkout_pays_and_creates_subscription_and_invoice(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer)
    assert session.amount_subtotal == 700 and session.total_details.amount_tax == 133
    assert session.amount_total == 833 and session.url.endswith(f"/c/pay/{session.id}")
    sbx.pay(session.id, "4242 4242 4242 4242")
    session = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["subscription", "invoice"]}
    )
    assert session.status == "complete" and session.payment_status == "paid"
    sub, inv = session.subscription, session.invoice
    assert sub.status == "active" and sub.metadata["order_id"] == "7"
    item = sub["items"].data[0]
    assert item.current_period_end > item.current_period_start
    assert item.tax_rates[0].id == vat.id
    assert inv.status == "paid" and inv.billing_reason == "subscription_create"
    assert inv.total == 833 and inv.total_taxes[0].amount == 133
    assert [line.amount for line in inv.lines.data] == [500, 200]
    assert inv.lines.data[0].taxes[0].tax_rate_details.tax_rate == vat.id
    assert inv.parent.subscription_details.subscription == sub.id
    assert inv.parent.subscription_details.metadata["order_id"] == "7"
    # As on Stripe since basil: an invoice's payments come only when expanded.
    assert "payments" not in client.v1.invoices.retrieve(inv.id)
    paid_with = client.v1.invoices.retrieve(inv.id, {"expand": ["payments"]}).payments
    pi_id = paid_with.data[0].payment.payment_intent
    pi = client.v1.payment_intents.retrieve(pi_id)
    assert pi.status == "succeeded"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert txn.fee == 37 and txn.net == 833 - 37
    assert inv.number == "SBX1-0001"
    assert event_types(client) == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    pdf = urllib.request.urlopen(inv.invoice_pdf).read()
    assert pdf.startswith(b"%PDF")


def test_declined_card_creates_nothing(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer)
    with pytest.raises(stripe.CardError):
        client.raw_request(
            "post", f"/_sandbox/checkout/{session.id}/pay", card_number="4000000000000002"
        )
    assert client.v1.subscriptions.list().data == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_later_declined_card_goes_past_due_then_unpaid(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(session.id, "4000000000000341")
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription
    sbx.advance(32 * 86400)
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == "past_due"
    assert sub.latest_invoice.status == "open" and sub.latest_invoice.attempt_count == 1
    sbx.advance(10 * 86400)
    sub = client.v1.subscriptions.retrieve(sub_id, {"expand": ["latest_invoice"]})
    assert sub.status == "unpaid" and sub.latest_invoice.attempt_count == 4
    assert "invoice.payment_failed" in event_types(client)


def test_renewal_and_payout(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer)
    sbx.pay(session.id, "4242424242424242")
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription
    sbx.advance(32 * 86400)
    invoices = client.v1.invoices.list({"subscription": sub_id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    assert invoices[0].status == "paid" and invoices[0].total == 595
    payouts = client.v1.payouts.list().data
    assert payouts and payouts[-1].status == "paid"
    txns = client.v1.balance_transactions.list({"payout": payouts[-1].id}).data
    assert {t.type for t in txns} >= {"charge", "payout"}
    updated = [e for e in client.v1.events.list({"type": "customer.subscription.updated"}).data]
    assert updated and "items" in updated[0].data.previous_attributes


def test_preview_and_update_with_proration(client, sbx):
    _, price, big, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(session.id, "4242424242424242")
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = sub["items"].data[0]
    half = (item.current_period_start + item.current_period_end) // 2
    details = {
        "items": [{"id": item.id, "price": big.id}],
        "proration_date": half,
        "proration_behavior": "always_invoice",
    }
    preview = client.v1.invoices.create_preview(
        {"customer": customer.id, "subscription": sub.id, "subscription_details": details}
    )
    amounts = [line.amount for line in preview.lines.data]
    assert amounts[0] < 0 < amounts[1] and abs(sum(amounts) - 250) <= 1
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": item.id, "price": big.id}],
            "proration_date": half,
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice"],
        },
    )
    assert updated.latest_invoice.total == preview.total
    assert updated["items"].data[0].price.id == big.id


def test_refund_credit_note_portal_cancel(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer)
    sbx.pay(session.id, "4242424242424242")
    session = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["invoice"]})
    pi = session.invoice.payments.data[0].payment.payment_intent
    refund = client.v1.refunds.create({"payment_intent": pi, "amount": 100})
    assert refund.status == "succeeded"
    assert client.v1.balance_transactions.retrieve(refund.balance_transaction).amount == -100
    note = client.v1.credit_notes.create(
        {
            "invoice": session.invoice.id,
            "lines": [{"type": "custom_line_item", "unit_amount": 50, "quantity": 1}],
            "refund_amount": 50,
        }
    )
    assert note.total == 50 and note.refunds[0].amount_refunded == 50
    portal = client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "return_url": "http://portal.test/"}
    )
    html = urllib.request.urlopen(portal.url).read().decode()
    assert session.invoice.number in html and "4242" in html
    form = urllib.parse.urlencode(
        {"card_number": "4000000000000341", "expiry": "12 / 34", "cvc": "123"}
    ).encode()
    assert urllib.request.urlopen(portal.url + "/card", form).status == 200
    pm_id = client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
    assert client.v1.payment_methods.retrieve(pm_id).card.last4 == "0341"
    canceled = client.v1.subscriptions.cancel(session.subscription)
    assert canceled.status == "canceled"
    assert event_types(client)[-1] == "customer.subscription.deleted"


def test_errors_and_idempotency(client, sbx):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.retrieve("cus_missing")
    assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    bad = stripe.StripeClient("sk_test_wrong", base_addresses={"api": sbx.url})
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.list()
    first = client.v1.customers.create({"email": "a@x.test"}, {"idempotency_key": "k1"})
    again = client.v1.customers.create({"email": "a@x.test"}, {"idempotency_key": "k1"})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "b@x.test"}, {"idempotency_key": "k1"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.products.create({})
    assert exc.value.param == "name"


class Receiver:
    """A tiny webhook endpoint: the first `fail` requests get 500."""

    def __init__(self, fail=0):
        self.bodies, self.fail = [], fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append((body, self.headers["Stripe-Signature"]))
                status = 500 if len(outer.bodies) <= outer.fail else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhooks_are_signed_and_retried(client, sbx):
    receiver = Receiver(fail=1)
    try:
        sbx.set_webhook(receiver.url, "whsec_test")
        client.v1.customers.create({"email": "c@x.test"})
        _, price, _, vat, customer = catalog(client)
        sbx.pay(session_for(client, price, vat, customer).id, "4242424242424242")
        sbx.wait_for_deliveries(timeout=10)
    finally:
        receiver.close()
    events = [stripe.Webhook.construct_event(b, h, "whsec_test") for b, h in receiver.bodies]
    assert events[0].type == "customer.subscription.created"
    assert [e.id for e in events].count(events[0].id) == 2
    assert "checkout.session.completed" in [e.type for e in events]
    first = [d for d in sbx.deliveries() if d["event"] == events[0].id]
    assert [(d["attempt"], d["status"]) for d in first] == [(1, 500), (2, 200)]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.bodies[0][0], receiver.bodies[0][1], "whsec_x")


def test_hosted_checkout_page(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer)
    html = urllib.request.urlopen(session.url).read().decode()
    assert "€8.33" in html and "alice@example.com" in html and "Subscribe" in html
    assert "<script" not in html and "style=" not in html
    form = {
        "card_number": "4000 0000 0000 0002",
        "expiry": "12 / 34",
        "cvc": "123",
        "name": "Alice",
    }
    with urllib.request.urlopen(session.url, urllib.parse.urlencode(form).encode()) as page:
        assert page.status == 200  # shown in place, as on Stripe's page
        assert "Your card was declined." in page.read().decode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    form["card_number"] = "4242 4242 4242 4242"
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as exc:
        opener.open(session.url, urllib.parse.urlencode(form).encode())
    assert exc.value.code == 303
    assert exc.value.headers["Location"] == f"http://portal.test/ok?s={session.id}"
    assert "complete" in urllib.request.urlopen(session.url).read().decode()
    clock = urllib.request.Request(
        sbx.url + "/_sandbox/clock", headers={"Authorization": f"Bearer {sbx.api_key}"}
    )
    assert json.loads(urllib.request.urlopen(clock).read())["now"] > 0


def test_state_file_keeps_objects_across_a_restart(tmp_path):
    """`make run` restarts the sandbox; the portal's rows must keep naming live objects."""
    from sandbox.stripe import StripeSandbox

    state = tmp_path / "stripe.pickle"
    first = StripeSandbox(state_file=state).start()
    try:
        client = stripe.StripeClient(
            first.api_key, stripe_version=VERSION, base_addresses={"api": first.url}
        )
        customer = client.v1.customers.create(params={"email": "kept@example.com"})
    finally:
        first.stop()
    second = StripeSandbox(state_file=state).start()
    try:
        client = stripe.StripeClient(
            second.api_key, stripe_version=VERSION, base_addresses={"api": second.url}
        )
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
    finally:
        second.stop()
