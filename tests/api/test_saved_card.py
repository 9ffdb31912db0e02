"""Paying through the API with the card Stripe keeps for the customer: `payment=saved_card` on
POST /servers, POST /orders/{id}/pay-with-saved-card, and GET /saved-card, over the same service
as the order page's "Pay with Visa •••• 4242" (billing/saved_card.py), on the Stripe sandbox."""

from __future__ import annotations

import pytest

from billing.models import Order
from instances.models import Instance
from tests.billing.conftest import GOOD_CARD, LATER_DECLINED, deliver_all


@pytest.fixture
def api(world, demo_sandbox, api_as, alice):
    return api_as(alice)


@pytest.fixture
def order(api) -> dict:
    """What POST /servers takes, from what the API offers."""
    [location] = api.get("/locations").json()
    image = api.get("/images", location=location["code"]).json()[0]
    return {
        "plan": "nvme-vps-s",
        "location": location["code"],
        "image": image["slug"],
        "generate_password": True,
    }


def first_order_paid_on_checkout(api, order, client, sandbox, card=GOOD_CARD) -> Order:
    created = api.post("/servers", order | {"hostname": "first"})
    assert created.status_code == 201, created.content
    row = Order.objects.get(pk=created.json()["order"]["id"])
    sandbox.pay(row.stripe_checkout_session_id, card)
    deliver_all(client, sandbox)
    row.refresh_from_db()
    assert row.status == Order.Status.PAID
    return row


def test_the_next_server_is_ordered_and_paid_with_the_saved_card_in_one_call(
    api, order, client, demo_sandbox, alice
):
    assert api.get("/saved-card").json() == {"card": None}
    without = api.post("/servers", order | {"hostname": "early", "payment": "saved_card"})
    assert without.status_code == 201, without.content
    assert "no saved card" in without.json()["payment_error"]
    assert without.json()["order"]["status"] == "awaiting_payment"
    first_order_paid_on_checkout(api, order, client, demo_sandbox)
    card = api.get("/saved-card").json()["card"]
    assert card["label"] == "Visa •••• 4242" and card["last4"] == "4242"
    created = api.post("/servers", order | {"hostname": "second", "payment": "saved_card"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["payment_error"] is None and body["checkout_url"] is None
    assert body["order"]["status"] == "paid" and body["order"]["server_id"]
    deliver_all(client, demo_sandbox)  # the same payment's webhooks build nothing more
    assert Instance.objects.filter(owner=alice).count() == 2
    # The order placed before the card was saved is paid with it too, once.
    early = without.json()["order"]["id"]
    paid = api.post(f"/orders/{early}/pay-with-saved-card")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    again = api.post(f"/orders/{early}/pay-with-saved-card")
    assert again.status_code == 422 and "not awaiting payment" in again.json()["message"]
    assert Instance.objects.filter(owner=alice).count() == 3


def test_a_declined_saved_card_is_a_422_and_the_order_stays_payable_on_checkout(
    api, order, client, demo_sandbox
):
    first_order_paid_on_checkout(api, order, client, demo_sandbox, LATER_DECLINED)
    created = api.post("/servers", order | {"hostname": "second", "payment": "saved_card"})
    body = created.json()
    assert body["order"]["status"] == "awaiting_payment"
    assert body["payment_error"].startswith("Your card was declined")
    refused = api.post(f"/orders/{body['order']['id']}/pay-with-saved-card")
    assert refused.status_code == 422 and refused.json()["code"] == "refused"
    assert "declined" in refused.json()["message"]
    checkout = api.post(f"/orders/{body['order']['id']}/checkout")
    assert checkout.status_code == 200 and checkout.json()["checkout_url"]


def test_stripe_unreachable_is_a_503_naming_it_and_the_order_stays(api, order, demo_sandbox):
    created = api.post("/servers", order | {"hostname": "first"}).json()
    order_id = created["order"]["id"]
    demo_sandbox.inject_fault("/v1/*", status=500, count=50)
    for path in (f"/orders/{order_id}/checkout", f"/orders/{order_id}/pay-with-saved-card"):
        response = api.post(path)
        assert response.status_code == 503, path
        assert response.json()["code"] == "stripe_unavailable"
    demo_sandbox.faults.clear()
    assert api.get(f"/orders/{order_id}").json()["status"] == "awaiting_payment"
