# ruff: noqa: F811 - the sbx and client fixtures come from tests/sandbox/stripe_helpers.py
"""Changing a subscription on the Stripe sandbox as on Stripe: unknown parameters refused,
`payment_behavior`, pending updates, 3-D Secure, the preview matching the update."""

from __future__ import annotations

import urllib.parse
import urllib.request

import pytest
import stripe

from tests.sandbox.stripe_helpers import (  # noqa: F401 - fixtures
    client,
    event_types,
    sbx,
    subscribed,
)

DECLINES_LATER = "4000000000000341"
AUTH_ALWAYS = "4000002760003184"
AUTH_UNLESS_SET_UP = "4000002500003155"
DAY = 86400


def upgrade(client, sub, big, **extra):
    item = sub["items"].data[0]
    params = {
        "items": [{"id": item.id, "price": big.id}],
        "proration_behavior": "always_invoice",
        **extra,
    }
    return client.v1.subscriptions.update(sub.id, params)


def invoices_of(client, sub):
    return client.v1.invoices.list({"subscription": sub.id}).data


def portal_card(client, customer_id, number):
    portal = client.v1.billing_portal.sessions.create({"customer": customer_id})
    form = urllib.parse.urlencode({"card_number": number, "expiry": "12 / 34", "cvc": "123"})
    urllib.request.urlopen(portal.url + "/card", form.encode()).read()


def events_of(client, type_):
    return client.v1.events.list({"type": type_}).data


# -- unknown parameters -----------------------------------------------------------------


def test_an_unknown_parameter_is_refused_with_its_name(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.create({"emial": "a@example.com"})
    error = exc.value
    assert error.http_status == 400 and error.code == "parameter_unknown"
    assert error.param == "emial"
    assert error.user_message == "Received unknown parameter: emial"
    assert client.v1.customers.list().data == []


def test_a_nested_unknown_parameter_is_named_with_brackets(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    item = sub["items"].data[0]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "pricee": big.id}]})
    assert exc.value.param == "items[0][pricee]"
    assert exc.value.user_message == "Received unknown parameter: items[0][pricee]"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.invoices.create_preview(
            {"subscription": sub.id, "subscription_details": {"proration_dat": 1}}
        )
    assert exc.value.param == "subscription_details[proration_dat]"


def test_several_unknown_parameters_are_listed_and_lists_and_reads_are_checked(client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.products.create({"name": "VPS", "colour": "red", "size": "s"})
    assert exc.value.user_message == "Received unknown parameters: colour, size"
    assert exc.value.param == "colour"
    assert exc.value.json_body["error"]["doc_url"].endswith("parameter-unknown")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.list({"emails": "a@example.com"})
    assert exc.value.param == "emails"


def test_metadata_keys_and_expand_are_always_allowed(client):
    customer = client.v1.customers.create(
        {"email": "a@example.com", "metadata": {"anything_at_all": "1"}, "expand": ["x"]}
    )
    assert customer.metadata["anything_at_all"] == "1"
    again = client.v1.customers.retrieve(customer.id, {"expand": ["invoice_settings"]})
    assert again.id == customer.id


# -- payment_behavior -------------------------------------------------------------------


def test_allow_incomplete_applies_at_once_and_goes_past_due_when_unpaid(client, sbx):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    updated = upgrade(client, sub, big, expand=["latest_invoice"])
    assert updated["items"].data[0].price.id == big.id
    assert updated.status == "past_due"
    assert updated.latest_invoice.status == "open"
    assert updated.latest_invoice.billing_reason == "subscription_update"
    assert "invoice.payment_failed" in event_types(client)


def test_error_if_incomplete_refuses_and_changes_nothing(client, sbx):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    before = len(invoices_of(client, sub))
    with pytest.raises(stripe.CardError) as exc:
        upgrade(client, sub, big, payment_behavior="error_if_incomplete")
    assert exc.value.http_status == 402 and exc.value.code == "card_declined"
    again = client.v1.subscriptions.retrieve(sub.id)
    assert again["items"].data[0].price.id == sub["items"].data[0].price.id
    assert again.status == "active" and len(invoices_of(client, sub)) == before
    assert "customer.subscription.updated" not in event_types(client)


def test_error_if_incomplete_with_a_good_card_updates(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    updated = upgrade(client, sub, big, payment_behavior="error_if_incomplete")
    assert updated["items"].data[0].price.id == big.id and updated.status == "active"


def test_pending_if_incomplete_waits_for_payment_then_applies(client, sbx):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    old_price = sub["items"].data[0].price.id
    updated = upgrade(
        client,
        sub,
        big,
        payment_behavior="pending_if_incomplete",
        metadata={"plan": "big"},
        expand=["latest_invoice"],
    )
    pending = updated.pending_update
    assert updated["items"].data[0].price.id == old_price and updated.status == "active"
    assert pending.subscription_items[0].price.id == big.id
    assert pending.metadata["plan"] == "big" and "plan" not in updated.metadata
    assert 22 * 3600 < pending.expires_at - sbx.now() <= 23 * 3600
    assert set(pending.to_dict()) >= {
        "billing_cycle_anchor",
        "expires_at",
        "subscription_items",
        "trial_end",
        "trial_from_plan",
    }
    invoice = updated.latest_invoice
    assert invoice.status == "open"
    # The customer pays on the hosted invoice page with another card.
    form = urllib.parse.urlencode(
        {"card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123"}
    )
    urllib.request.urlopen(invoice.hosted_invoice_url + "/pay", form.encode()).read()
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied["items"].data[0].price.id == big.id
    assert applied.pending_update is None and applied.metadata["plan"] == "big"
    assert event_types(client)[-2:] == [
        "customer.subscription.updated",
        "customer.subscription.pending_update_applied",
    ]
    last_update = events_of(client, "customer.subscription.updated")[0]
    assert "items" in last_update.data.previous_attributes
    assert last_update.data.previous_attributes.pending_update.subscription_items


def test_a_pending_update_expires_after_23_hours_and_its_invoice_is_voided(client, sbx):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    updated = upgrade(client, sub, big, payment_behavior="pending_if_incomplete")
    invoice_id = updated.latest_invoice
    sbx.advance(22 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).pending_update is not None
    sbx.advance(2 * 3600)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.pending_update is None
    assert expired["items"].data[0].price.id == sub["items"].data[0].price.id
    assert expired.status == "active"
    assert client.v1.invoices.retrieve(invoice_id).status == "void"
    assert "customer.subscription.pending_update_expired" in event_types(client)
    assert "invoice.voided" in event_types(client)


def test_pending_if_incomplete_with_a_good_card_applies_at_once(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    updated = upgrade(client, sub, big, payment_behavior="pending_if_incomplete")
    assert updated.pending_update is None and updated["items"].data[0].price.id == big.id
    assert "customer.subscription.pending_update_applied" not in event_types(client)


@pytest.mark.parametrize(
    "extra, named",
    [
        ({"cancel_at_period_end": True}, "cancel_at_period_end"),
        ({"default_payment_method": "pm_x"}, "default_payment_method"),
        ({"description": "x"}, "description"),
    ],
)
def test_pending_if_incomplete_refuses_what_pending_updates_do_not_support(
    client, sbx, extra, named
):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        upgrade(client, sub, big, payment_behavior="pending_if_incomplete", **extra)
    assert exc.value.http_status == 400 and exc.value.param == named
    assert named in exc.value.user_message and "pending_if_incomplete" in exc.value.user_message
    assert client.v1.subscriptions.retrieve(sub.id).pending_update is None


def test_pending_if_incomplete_refuses_item_fields_pending_updates_do_not_support(client, sbx):
    sub, big, vat = subscribed(client, sbx)
    item = sub["items"].data[0]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.subscriptions.update(
            sub.id,
            {
                "items": [{"id": item.id, "price": big.id, "tax_rates": [vat.id]}],
                "payment_behavior": "pending_if_incomplete",
                "proration_behavior": "always_invoice",
            },
        )
    assert exc.value.param == "items[0][tax_rates]"


def test_an_unknown_payment_behavior_is_refused(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        upgrade(client, sub, big, payment_behavior="whenever")
    assert exc.value.param == "payment_behavior"


# -- 3-D Secure ---------------------------------------------------------------------------


def test_a_card_that_needs_authentication_leaves_the_invoice_open_until_the_customer_confirms(
    client, sbx
):
    sub, big, _ = subscribed(client, sbx)
    portal_card(client, sub.customer, AUTH_ALWAYS)
    updated = upgrade(client, sub, big, expand=["latest_invoice.payments"])
    invoice = updated.latest_invoice
    assert invoice.status == "open" and updated.status == "past_due"
    pi = client.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    assert pi.status == "requires_action" and pi.next_action.type == "redirect_to_url"
    assert pi.latest_charge is None
    assert "invoice.payment_action_required" in event_types(client)
    page = urllib.request.urlopen(invoice.hosted_invoice_url).read().decode()
    assert "Complete authentication" in page and "3184" in page
    form = urllib.parse.urlencode({"authenticate": "1"}).encode()
    urllib.request.urlopen(invoice.hosted_invoice_url + "/pay", form).read()
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_error_if_incomplete_refuses_a_payment_that_needs_authentication(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    portal_card(client, sub.customer, AUTH_ALWAYS)
    with pytest.raises(stripe.CardError) as exc:
        upgrade(client, sub, big, payment_behavior="error_if_incomplete")
    assert exc.value.code == "invoice_payment_intent_requires_action"


def test_a_3155_card_set_up_at_checkout_pays_later_charges_without_authentication(client, sbx):
    sub, big, _ = subscribed(client, sbx, AUTH_UNLESS_SET_UP)
    updated = upgrade(client, sub, big, expand=["latest_invoice"])
    assert updated.latest_invoice.status == "paid" and updated.status == "active"


def test_the_hosted_invoice_page_shows_a_decline_in_place(client, sbx):
    sub, big, _ = subscribed(client, sbx, DECLINES_LATER)
    invoice = upgrade(client, sub, big, expand=["latest_invoice"]).latest_invoice
    form = urllib.parse.urlencode(
        {"card_number": "4000000000000002", "expiry": "12 / 34", "cvc": "123"}
    )
    page = urllib.request.urlopen(invoice.hosted_invoice_url + "/pay", form.encode())
    assert page.status == 200 and "Your card was declined." in page.read().decode()
    assert client.v1.invoices.retrieve(invoice.id).status == "open"


# -- idempotency and preview ----------------------------------------------------------------


def test_the_same_idempotency_key_replays_the_update_without_a_second_invoice(client, sbx):
    sub, big, _ = subscribed(client, sbx)
    item = sub["items"].data[0]
    params = {"items": [{"id": item.id, "price": big.id}], "proration_behavior": "always_invoice"}
    first = client.v1.subscriptions.update(sub.id, params, {"idempotency_key": "upgrade-1"})
    again = client.v1.subscriptions.update(sub.id, params, {"idempotency_key": "upgrade-1"})
    assert again.latest_invoice == first.latest_invoice
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    reasons = [i.billing_reason for i in invoices_of(client, sub)]
    assert reasons.count("subscription_update") == 1


@pytest.mark.parametrize("quantity", [1, 3])
def test_the_preview_shows_what_the_update_then_charges(client, sbx, quantity):
    sub, big, _ = subscribed(client, sbx)
    sbx.advance(9 * DAY + 3600)
    item = sub["items"].data[0]
    when = sbx.now() - 600
    items = [{"id": item.id, "price": big.id, "quantity": quantity}]
    preview = client.v1.invoices.create_preview(
        {
            "subscription": sub.id,
            "subscription_details": {
                "items": items,
                "proration_behavior": "always_invoice",
                "proration_date": when,
            },
        }
    )
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": items,
            "proration_behavior": "always_invoice",
            "proration_date": when,
            "expand": ["latest_invoice"],
        },
    )
    charged = updated.latest_invoice
    assert preview.amount_due == charged.amount_due > 0
    assert preview.total_taxes[0].amount == charged.total_taxes[0].amount > 0
    assert [line.amount for line in preview.lines.data] == [
        line.amount for line in charged.lines.data
    ]


def test_a_preview_that_changes_nothing_prorates_nothing(client, sbx):
    sub, _, _ = subscribed(client, sbx)
    item = sub["items"].data[0]
    preview = client.v1.invoices.create_preview(
        {
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": item.price.id}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    assert preview.amount_due == 0 and preview.lines.data == []
