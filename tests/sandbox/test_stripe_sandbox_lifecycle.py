# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""A subscription's life on the Stripe sandbox as on Stripe: checkout that needs 3-D Secure
(incomplete, incomplete_expired), SEPA Direct Debit settling later, the end of the retry
schedule as an account setting, renewal invoices that stay draft for an hour."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
import stripe

from sandbox.stripe.store import StripeError as SandboxError
from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    catalog,
    client,
    event_types,
    sbx,
    session_for,
    subscribed,
)

AUTH_UNLESS_SET_UP = "4000002500003155"
AUTH_ALWAYS = "4000002760003184"
DECLINES_LATER = "4000000000000341"
IBAN_OK = "DE89370400440532013000"
IBAN_FAILS = "DE62370400440532013001"
HOUR, DAY = 3600, 86400


def new_session(client):
    _, price, _, vat, customer = catalog(client)
    return session_for(client, price, vat, customer, setup_fee=False)


def subscription_of(client, session):
    subs = client.v1.subscriptions.list({"status": "all"}).data
    assert len(subs) == 1
    return client.v1.subscriptions.retrieve(subs[0].id, {"expand": ["latest_invoice.payments"]})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def post(url, fields):
    """POST a form as a browser would; the redirect's Location, or the page."""
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.build_opener(NoRedirect).open(url, data) as page:
            return page.read().decode()
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303
        return redirect.headers["Location"]


# -- 3-D Secure at checkout -------------------------------------------------------------------


def test_a_card_that_needs_authentication_starts_the_subscription_incomplete(client, sbx):
    session = new_session(client)
    sbx.pay(session.id, AUTH_UNLESS_SET_UP, authenticate=False)
    sub = subscription_of(client, session)
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert invoice.status == "open"
    pi = client.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    assert pi.status == "requires_action"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    types = event_types(client)
    assert "invoice.payment_action_required" in types
    assert "checkout.session.completed" not in types
    sbx.authenticate(session.id)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.subscription == sub.id
    assert event_types(client)[-2:] == [
        "customer.subscription.updated",
        "checkout.session.completed",
    ]


def test_an_incomplete_subscription_expires_after_23_hours(client, sbx):
    session = new_session(client)
    sbx.pay(session.id, AUTH_ALWAYS, authenticate=False)
    sub = subscription_of(client, session)
    sbx.advance(22 * HOUR)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    sbx.advance(2 * HOUR)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.status == "incomplete_expired" and expired.ended_at
    assert client.v1.invoices.retrieve(sub.latest_invoice.id).status == "void"
    updated = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert updated.data.previous_attributes.status == "incomplete"
    with pytest.raises(SandboxError):
        sbx.authenticate(session.id)  # the session expired meanwhile (after 24 hours)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"


def test_the_hosted_checkout_page_shows_the_bank_challenge(client, sbx):
    session = new_session(client)
    card = {"card_number": AUTH_ALWAYS, "expiry": "12 / 34", "cvc": "123", "name": "A"}
    assert post(session.url, card) == f"/c/pay/{session.id}/authenticate"
    page = urllib.request.urlopen(session.url).read().decode()
    assert "Complete authentication" in page and "3184" in page
    page = post(session.url + "/authenticate", {"result": "fail"})
    assert "unable to authenticate" in page
    assert subscription_of(client, session).status == "incomplete"
    # Another card on the same session pays the same subscription's invoice.
    card["card_number"] = "4242424242424242"
    assert post(session.url, card).startswith("http://portal.test/ok")
    sub = subscription_of(client, session)
    assert sub.status == "active" and sub.latest_invoice.status == "paid"
    assert len(client.v1.invoices.list().data) == 1


def test_completing_the_challenge_on_the_page_completes_the_checkout(client, sbx):
    session = new_session(client)
    post(session.url, {"card_number": AUTH_UNLESS_SET_UP, "expiry": "1/30", "cvc": "123"})
    assert post(session.url + "/authenticate", {"result": "complete"}).startswith(
        "http://portal.test/ok"
    )
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


# -- SEPA Direct Debit -------------------------------------------------------------------------


def test_sepa_completes_the_checkout_unpaid_then_the_debit_succeeds(client, sbx):
    session = new_session(client)
    assert "sepa_debit" in session.payment_method_types
    sbx.pay_sepa(session.id, IBAN_OK)
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete" and done.payment_status == "unpaid"
    sub = subscription_of(client, session)
    assert sub.status == "active" and sub.latest_invoice.status == "open"
    pi = client.v1.payment_intents.retrieve(
        sub.latest_invoice.payments.data[0].payment.payment_intent
    )
    assert pi.status == "processing"
    assert client.v1.charges.retrieve(pi.latest_charge).status == "pending"
    assert "checkout.session.async_payment_succeeded" not in event_types(client)
    sbx.advance(5 * 60)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    assert client.v1.invoices.retrieve(sub.latest_invoice.id).status == "paid"
    assert event_types(client)[-1] == "checkout.session.async_payment_succeeded"
    pm = client.v1.payment_methods.retrieve(pi.payment_method)
    assert pm.type == "sepa_debit" and pm.sepa_debit.last4 == "3000"


def test_a_failing_sepa_debit_fails_the_checkout_later(client, sbx):
    session = new_session(client)
    sbx.pay_sepa(session.id, IBAN_FAILS)
    sbx.advance(5 * 60)
    sub = subscription_of(client, session)
    assert sub.status == "past_due" and sub.latest_invoice.status == "open"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"
    types = event_types(client)
    assert "checkout.session.async_payment_failed" in types and "invoice.payment_failed" in types


def test_the_hosted_checkout_page_takes_an_iban(client, sbx):
    session = new_session(client)
    page = urllib.request.urlopen(session.url).read().decode()
    assert 'name="iban"' in page
    assert "invalid" in post(session.url, {"iban": "DE00123", "name": "A"})
    location = post(session.url, {"iban": "DE89 3704 0044 0532 0130 00", "name": "Alice"})
    assert location.startswith("http://portal.test/ok")
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "unpaid"


# -- the end of the retry schedule ------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, status",
    [("unpaid", "unpaid"), ("cancel", "canceled"), ("past_due", "past_due")],
)
def test_the_end_of_the_retries_is_an_account_setting(client, sbx, setting, status):
    sbx.configure(subscription_retries_end=setting)
    sub, _, _ = subscribed(client, sbx, DECLINES_LATER)
    sbx.advance(32 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    sbx.advance(10 * DAY)
    ended = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert ended.status == status and ended.latest_invoice.attempt_count == 4
    if setting == "cancel":
        assert ended.cancellation_details.reason == "payment_failed"
        assert "customer.subscription.deleted" in event_types(client)


def test_the_retry_setting_is_a_control_endpoint_and_reset_restores_it(client, sbx):
    answer = client.raw_request("post", "/_sandbox/settings", subscription_retries_end="cancel")
    assert client.deserialize(answer, api_mode="V1")["subscription_retries_end"] == "cancel"
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request("post", "/_sandbox/settings", subscription_retries_end="never")
    sbx.reset()
    assert sbx.configure()["subscription_retries_end"] == "unpaid"


# -- renewal drafts ---------------------------------------------------------------------------


def test_a_renewal_invoice_stays_draft_for_an_hour_then_is_finalized_and_charged(client, sbx):
    sub, _, _ = subscribed(client, sbx)
    end = sub["items"].data[0].current_period_end
    sbx.advance(end - sbx.now() + 60)
    renewal = client.v1.invoices.list({"subscription": sub.id}).data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "draft"
    assert renewal.number is None and renewal.automatically_finalizes_at
    assert event_types(client)[-2:] == ["invoice.created", "customer.subscription.updated"]
    sbx.advance(HOUR)
    renewal = client.v1.invoices.retrieve(renewal.id)
    assert renewal.status == "paid" and renewal.number
    types = event_types(client)
    last_created = len(types) - 1 - types[::-1].index("invoice.created")
    assert types[last_created:] == [
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
