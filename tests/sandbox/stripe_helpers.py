"""Shared by the Stripe sandbox tests: the sandbox emptied per test, a real `stripe` client on
it, a small catalogue, and a paid subscription. Test modules import what they use."""

from __future__ import annotations

import pytest
import stripe

VERSION = "2026-10-28.endive"


@pytest.fixture
def sbx(stripe_sandbox):
    stripe_sandbox.reset()
    stripe_sandbox.set_webhook(None, "whsec_test")
    yield stripe_sandbox
    stripe_sandbox.resume_deliveries()


@pytest.fixture
def client(sbx):
    return stripe.StripeClient(sbx.api_key, stripe_version=VERSION, base_addresses={"api": sbx.url})


def catalog(client):
    product = client.v1.products.create({"name": "VPS S", "metadata": {"plan": "s"}})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
            "tax_behavior": "exclusive",
        }
    )
    big = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
        }
    )
    vat = client.v1.tax_rates.create(
        {"display_name": "VAT", "percentage": "19", "inclusive": False, "country": "DE"}
    )
    customer = client.v1.customers.create(
        {"email": "alice@example.com", "name": "Alice", "address": {"country": "DE"}}
    )
    return product, price, big, vat, customer


def session_for(client, price, vat, customer, setup_fee=True):
    items = [{"price": price.id, "quantity": 1, "tax_rates": [vat.id]}]
    if setup_fee:
        items.append(
            {
                "price_data": {"currency": "eur", "product": price.product, "unit_amount": 200},
                "quantity": 1,
                "tax_rates": [vat.id],
            }
        )
    return client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": items,
            "subscription_data": {"metadata": {"order_id": "7"}},
            "metadata": {"order_id": "7"},
            "success_url": "http://portal.test/ok?s={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://portal.test/back",
        }
    )


def event_types(client):
    return [e.type for e in reversed(client.v1.events.list({"limit": 100}).data)]


def subscribed(client, sbx, card="4242424242424242", setup_fee=False):
    """A customer subscribed to the 5 € price (19 % VAT) with `card`: (subscription, big, vat)."""
    _, price, big, vat, customer = catalog(client)
    session = session_for(client, price, vat, customer, setup_fee=setup_fee)
    sbx.pay(session.id, card)
    sub_id = client.v1.checkout.sessions.retrieve(session.id).subscription
    return client.v1.subscriptions.retrieve(sub_id), big, vat
