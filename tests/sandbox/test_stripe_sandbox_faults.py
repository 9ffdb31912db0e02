# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""What can go wrong with Stripe, on the sandbox: webhooks out of order and at once, refunds
that stay pending and then fail or succeed, injected 429/500 answers, two requests with one
idempotency key."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    VERSION,
    client,
    event_types,
    sbx,
    subscribed,
)


class SlowReceiver:
    """A webhook endpoint that takes `pause` s per delivery and notes how many overlap."""

    def __init__(self, pause=0.0):
        self.types, self.running, self.most = [], 0, 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.running += 1
                    outer.most = max(outer.most, outer.running)
                time.sleep(pause)
                event = stripe.Webhook.construct_event(
                    body, self.headers["Stripe-Signature"], "whsec_test"
                )
                with outer.lock:
                    outer.running -= 1
                    outer.types.append(event.id)
                self.send_response(200)
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


def make_events(client, sbx, price, n):
    """`n` events (expired checkout sessions), held back until the test resumes deliveries."""
    sbx.pause_deliveries()
    for i in range(n):
        customer = client.v1.customers.create({"email": f"c{i}@example.com"})
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer.id,
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "http://portal.test/ok",
            }
        )
        client.v1.checkout.sessions.expire(session.id)
    return [e.id for e in reversed(client.v1.events.list({"limit": 100}).data)]


@pytest.fixture
def price(client):
    product = client.v1.products.create({"name": "VPS"})
    return client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
        }
    )


# -- webhooks ------------------------------------------------------------------------------


def test_webhooks_go_out_in_order_one_at_a_time_by_default(client, sbx, price):
    receiver = SlowReceiver(pause=0.02)
    try:
        sbx.set_webhook(receiver.url, "whsec_test")
        sent = make_events(client, sbx, price, 6)
        sbx.resume_deliveries()
        sbx.wait_for_deliveries(timeout=10)
    finally:
        receiver.close()
    assert receiver.types == sent and receiver.most == 1


def test_webhooks_can_come_shuffled_and_at_once(client, sbx, price):
    receiver = SlowReceiver(pause=0.2)
    try:
        sbx.set_webhook(receiver.url, "whsec_test")
        sbx.set_delivery_order(shuffle=True, concurrency=4, seed=7)
        sent = make_events(client, sbx, price, 8)
        sbx.resume_deliveries()
        sbx.wait_for_deliveries(timeout=10)
    finally:
        receiver.close()
    assert sorted(receiver.types) == sorted(sent) and receiver.types != sent
    assert 1 < receiver.most <= 4


def test_the_delivery_order_is_a_control_endpoint(client, sbx):
    client.raw_request("post", "/_sandbox/webhook_order", shuffle="true", concurrency="3")
    assert sbx.webhooks.shuffle and sbx.webhooks.concurrency == 3
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request("post", "/_sandbox/webhook_order", concurrency="99")
    sbx.reset()
    assert not sbx.webhooks.shuffle and sbx.webhooks.concurrency == 1


# -- refunds -------------------------------------------------------------------------------


def paid_intent(client, sbx):
    sub, _, _ = subscribed(client, sbx)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice, {"expand": ["payments"]})
    return invoice.payments.data[0].payment.payment_intent


def test_a_pending_refund_succeeds_later(client, sbx):
    sbx.configure(refund_outcome="pending_succeeds", refund_delay=2 * 86400)
    refund = client.v1.refunds.create({"payment_intent": paid_intent(client, sbx), "amount": 100})
    assert refund.status == "pending"
    sbx.advance(86400)
    assert client.v1.refunds.retrieve(refund.id).status == "pending"
    sbx.advance(86400)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    updated = client.v1.events.list({"type": "refund.updated"}).data[0]
    assert updated.data.object.status == "succeeded"
    assert updated.data.previous_attributes.status == "pending"


def test_a_pending_refund_can_fail_and_the_money_comes_back(client, sbx):
    client.raw_request("post", "/_sandbox/settings", refund_outcome="pending_fails")
    pi = paid_intent(client, sbx)
    refund = client.v1.refunds.create({"payment_intent": pi, "amount": 100})
    sbx.advance(2 * 3600)
    failed = client.v1.refunds.retrieve(refund.id)
    assert failed.status == "failed" and failed.failure_reason
    back = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert back.amount == 100 and back.type == "refund_failure"
    charge = client.v1.charges.retrieve(client.v1.payment_intents.retrieve(pi).latest_charge)
    assert charge.amount_refunded == 0
    assert event_types(client)[-2:] == ["refund.failed", "refund.updated"]


# -- injected failures ---------------------------------------------------------------------


def test_injected_500s_answer_the_next_requests_then_stop(client, sbx):
    sbx.inject_fault("/v1/customers", status=500, count=2, method="POST")
    quiet = stripe.StripeClient(
        sbx.api_key, stripe_version=VERSION, base_addresses={"api": sbx.url}, max_network_retries=0
    )
    for _ in range(2):
        with pytest.raises(stripe.APIError) as exc:
            quiet.v1.customers.create({"email": "a@example.com"})
        assert exc.value.http_status == 500
    assert quiet.v1.customers.create({"email": "a@example.com"}).id
    assert len(quiet.v1.customers.list().data) == 1  # the failed ones never ran


def test_an_injected_429_is_retried_by_the_client(client, sbx):
    client.raw_request("post", "/_sandbox/faults", path="/v1/customers*", status="429")
    retrying = stripe.StripeClient(
        sbx.api_key, stripe_version=VERSION, base_addresses={"api": sbx.url}, max_network_retries=2
    )
    assert retrying.v1.customers.list().data == []
    sbx.inject_fault("/v1/customers", status=429, count=1)
    quiet = stripe.StripeClient(
        sbx.api_key, stripe_version=VERSION, base_addresses={"api": sbx.url}, max_network_retries=0
    )
    with pytest.raises(stripe.RateLimitError):
        quiet.v1.customers.list()


# -- idempotency ---------------------------------------------------------------------------


def test_a_second_request_with_a_key_in_flight_gets_409(client, sbx):
    sbx.inject_fault("/v1/customers", status=0, count=1, method="POST", delay=0.5)
    quiet = stripe.StripeClient(
        sbx.api_key, stripe_version=VERSION, base_addresses={"api": sbx.url}, max_network_retries=0
    )
    first: dict = {}

    def slow():
        first["customer"] = quiet.v1.customers.create(
            {"email": "a@example.com"}, {"idempotency_key": "k-flight"}
        )

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    # Stripe answers 409 Conflict; stripe-python raises a plain APIError for it (and retries
    # it when max_network_retries allows).
    with pytest.raises(stripe.APIError) as exc:
        quiet.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-flight"})
    assert exc.value.http_status == 409
    assert exc.value.json_body["error"]["type"] == "idempotency_error"
    thread.join()
    again = quiet.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-flight"})
    assert again.id == first["customer"].id
    assert len(quiet.v1.customers.list().data) == 1


def test_a_request_refused_for_its_parameters_is_not_kept_under_its_key(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"emial": "a@example.com"}, {"idempotency_key": "k-typo"})
    fixed = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k-typo"})
    assert fixed.email == "a@example.com"
    assert fixed.last_response.headers.get("Idempotent-Replayed") is None
