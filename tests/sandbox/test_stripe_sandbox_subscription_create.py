# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""Creating a subscription with the API on the Stripe sandbox as on Stripe: the card paid with
on Checkout is attached to the customer and listed, `POST /v1/subscriptions` charges it at once
with the same items, invoice and events as Checkout, and `payment_behavior` decides what a
declined card or one that asks for 3-D Secure leaves behind."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    catalog,
    client,
    event_types,
    sbx,
    session_for,
)

GOOD = "4242424242424242"
DECLINES_LATER = "4000000000000341"
AUTH_UNLESS_SET_UP = "4000002500003155"
AUTH_ALWAYS = "4000002760003184"
HOUR = 3600


def paid_at_checkout(client, sbx, card=GOOD, **pay):
    """A customer who paid one Checkout session with `card`: (customer, price, vat, card id)."""
    product, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(session.id, card, **pay)
    cards = client.v1.customers.payment_methods.list(customer.id, {"type": "card"}).data
    return customer, price, vat, cards[0].id


def create(client, who, price, vat, pm, key=None, **extra):
    """POST /v1/subscriptions as the portal sends it: the plan, a setup fee, the saved card."""
    params = {
        "customer": who.id,
        "items": [{"price": price.id, "quantity": 1, "tax_rates": [vat.id]}],
        "add_invoice_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "product": price.product,
                    "unit_amount": 1000,
                    "tax_behavior": "exclusive",
                },
                "quantity": 1,
                "tax_rates": [vat.id],
            }
        ],
        "off_session": True,
        "payment_behavior": "error_if_incomplete",
        "metadata": {"order_id": "8", "user_id": "3"},
        **({"default_payment_method": pm} if pm else {}),
        **extra,
    }
    options = {"idempotency_key": key} if key else {}
    return client.v1.subscriptions.create(params, options)


def all_subscriptions(client):
    return client.v1.subscriptions.list({"status": "all"}).data


# -- the card saved at checkout -----------------------------------------------------------


def test_the_card_paid_with_at_checkout_is_attached_and_listed(client, sbx):
    _, price, _, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(session.id, GOOD, expiry="08 / 31")
    listed = client.v1.customers.payment_methods.list(customer.id, {"type": "card"}).data
    assert len(listed) == 1
    card = listed[0]
    assert card.customer == customer.id
    assert (card.card.brand, card.card.last4) == ("visa", "4242")
    assert (card.card.exp_month, card.card.exp_year) == (8, 2031)
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    assert sub.default_payment_method == card.id
    # Checkout makes it the subscription's card, not the customer's invoice default.
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    same = client.v1.payment_methods.list({"customer": customer.id, "type": "card"}).data
    assert [pm.id for pm in same] == [card.id]
    one = client.v1.customers.payment_methods.retrieve(customer.id, card.id)
    assert one.id == card.id
    assert client.v1.customers.payment_methods.list(customer.id, {"type": "sepa_debit"}).data == []


def test_payment_methods_are_listed_newest_first_and_only_the_customers_own(client, sbx):
    customer, price, vat, first = paid_at_checkout(client, sbx)
    again = session_for(client, price, vat, customer, setup_fee=False)
    sbx.pay(again.id, DECLINES_LATER)
    listed = client.v1.customers.payment_methods.list(customer.id).data
    assert [pm.card.last4 for pm in listed] == ["0341", "4242"]
    other = client.v1.customers.create({"email": "mallory@example.com"})
    assert client.v1.customers.payment_methods.list(other.id).data == []
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.payment_methods.retrieve(other.id, first)
    assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.payment_methods.list(customer.id, {"typ": "card"})
    assert exc.value.code == "parameter_unknown" and exc.value.param == "typ"


# -- creating a subscription ---------------------------------------------------------------


def test_it_charges_the_saved_card_at_once_with_the_same_invoice_and_events_as_checkout(
    client, sbx
):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    before = len(event_types(client))
    sub = create(client, customer, price, vat, pm, expand=["latest_invoice"])
    assert sub.status == "active"
    assert sub.default_payment_method == pm
    assert sub.metadata.to_dict() == {"order_id": "8", "user_id": "3"}
    assert [item.price.id for item in sub["items"].data] == [price.id]
    invoice = sub.latest_invoice
    # 5.00 + 10.00 setup fee, 19 % VAT on both.
    assert (invoice.status, invoice.subtotal, invoice.total) == ("paid", 1500, 1785)
    assert invoice.billing_reason == "subscription_create"
    assert invoice.parent.subscription_details.metadata.to_dict()["order_id"] == "8"
    assert [line.amount for line in invoice.lines.data] == [500, 1000]
    assert event_types(client)[before:] == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    assert len(all_subscriptions(client)) == 2


def test_without_a_card_given_it_charges_the_customers_invoice_default(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm}})
    sub = create(client, customer, price, vat, None, expand=["latest_invoice"])
    assert sub.status == "active" and sub.latest_invoice.status == "paid"
    assert sub.default_payment_method is None  # the customer's default pays, as on Stripe


def test_save_default_payment_method_makes_the_card_the_subscriptions_default(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm}})
    sub = create(
        client,
        customer,
        price,
        vat,
        None,
        payment_settings={"save_default_payment_method": "on_subscription"},
    )
    assert sub.default_payment_method == pm
    assert sub.payment_settings.save_default_payment_method == "on_subscription"


def test_error_if_incomplete_refuses_a_declined_card_and_makes_nothing(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx, DECLINES_LATER)
    before = event_types(client)
    invoices = len(client.v1.invoices.list().data)
    with pytest.raises(stripe.CardError) as exc:
        create(client, customer, price, vat, pm)
    assert exc.value.http_status == 402
    assert exc.value.code == "card_declined" and exc.value.user_message == "Your card was declined."
    assert len(all_subscriptions(client)) == 1
    assert len(client.v1.invoices.list().data) == invoices
    assert event_types(client) == before


def test_error_if_incomplete_refuses_a_card_that_needs_authentication(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx, AUTH_ALWAYS)
    before = event_types(client)
    with pytest.raises(stripe.CardError) as exc:
        create(client, customer, price, vat, pm)
    assert exc.value.http_status == 402
    assert exc.value.code == "invoice_payment_intent_requires_action"
    assert "The subscription was not created" in exc.value.user_message
    assert len(all_subscriptions(client)) == 1 and event_types(client) == before


def test_a_3155_card_set_up_at_checkout_pays_off_session_but_asks_on_session(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx, AUTH_UNLESS_SET_UP)
    assert create(client, customer, price, vat, pm).status == "active"
    with pytest.raises(stripe.CardError) as exc:
        create(client, customer, price, vat, pm, off_session=False)
    assert exc.value.code == "invoice_payment_intent_requires_action"


def test_allow_incomplete_keeps_an_incomplete_subscription_that_expires_unpaid(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx, DECLINES_LATER)
    sub = create(
        client,
        customer,
        price,
        vat,
        pm,
        payment_behavior="allow_incomplete",
        expand=["latest_invoice"],
    )
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open"
    assert sub.latest_invoice.next_payment_attempt is None  # a first invoice is not retried
    assert event_types(client)[-1] == "invoice.payment_failed"
    sbx.advance(24 * HOUR)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.status == "incomplete_expired"
    assert client.v1.invoices.retrieve(sub.latest_invoice.id).status == "void"


def test_allow_incomplete_with_a_card_that_asks_for_authentication_waits_for_it(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx, AUTH_ALWAYS)
    sub = create(client, customer, price, vat, pm, payment_behavior="allow_incomplete")
    assert sub.status == "incomplete"
    assert event_types(client)[-1] == "invoice.payment_action_required"
    sbx.pay_invoice(sub.latest_invoice)  # the customer authenticates on the hosted page
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_default_incomplete_leaves_the_first_invoice_open_and_unattempted(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    sub = create(
        client,
        customer,
        price,
        vat,
        pm,
        payment_behavior="default_incomplete",
        expand=["latest_invoice.payments"],
    )
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert invoice.status == "open" and invoice.attempt_count == 0
    assert invoice.payments.data[0].status == "open"
    assert "invoice.paid" not in event_types(client)[-3:]


def test_the_same_idempotency_key_replays_the_subscription_and_the_refusal(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    first = create(client, customer, price, vat, pm, key="order-8-saved-card-0")
    again = create(client, customer, price, vat, pm, key="order-8-saved-card-0")
    assert again.id == first.id
    assert len(all_subscriptions(client)) == 2
    declined, price, vat, bad = paid_at_checkout(client, sbx, DECLINES_LATER)
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            create(client, declined, price, vat, bad, key="order-9-saved-card-0")


@pytest.mark.parametrize(
    "change,param,message",
    [
        ({"payment_behavior": "pending_if_incomplete"}, "payment_behavior", "only be used when"),
        ({"customer": ""}, "customer", "Missing required param: customer."),
        ({"items": []}, "items", "Missing required param: items."),
        (
            {"itemz": [{"price": "x"}]},
            "itemz",
            "Received unknown parameter: itemz",
        ),
        ({"items": [{"pricee": "price_x"}]}, "items[0][pricee]", "unknown parameter"),
        ({"default_payment_method": "pm_nothing"}, "default_payment_method", "No such"),
    ],
)
def test_it_refuses_what_stripe_refuses(client, sbx, change, param, message):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, customer, price, vat, pm, **change)
    assert exc.value.param == param and message in exc.value.user_message
    assert len(all_subscriptions(client)) == 1


def test_it_refuses_another_customers_card_a_one_time_price_and_no_card_at_all(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    other = client.v1.customers.create({"email": "mallory@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, other, price, vat, pm)
    assert exc.value.param == "default_payment_method"
    assert "must be attached to the customer" in exc.value.user_message
    one_time = client.v1.prices.create(
        {"product": price.product, "currency": "eur", "unit_amount": 300}
    )
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, customer, one_time, vat, pm)
    assert exc.value.param == "items[0][price]" and "type=recurring" in exc.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, other, price, vat, None)
    assert "no attached payment source or default payment method" in exc.value.user_message
    assert len(all_subscriptions(client)) == 1


def test_a_lost_answer_was_made_and_the_clients_retry_gets_it_replayed(client, sbx):
    customer, price, vat, pm = paid_at_checkout(client, sbx)
    retrying = stripe.StripeClient(
        sbx.api_key,
        stripe_version="2026-10-28.endive",
        base_addresses={"api": sbx.url},
        max_network_retries=1,
    )
    sbx.inject_fault("/v1/subscriptions", status=0, method="POST", lose_answer=True)
    sub = create(retrying, customer, price, vat, pm, key="order-8-saved-card-0")
    assert sub.status == "active" and len(all_subscriptions(client)) == 2
    sbx.inject_fault("/v1/subscriptions", status=0, count=2, method="POST", lose_answer=True)
    with pytest.raises(stripe.APIConnectionError):
        create(retrying, customer, price, vat, pm, key="order-8-saved-card-1")
    assert len(all_subscriptions(client)) == 3  # made, though nobody heard of it
    again = create(client, customer, price, vat, pm, key="order-8-saved-card-1")
    assert len(all_subscriptions(client)) == 3 and again.status == "active"
