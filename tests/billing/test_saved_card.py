"""Paying an order with the saved card: a customer who paid once on Checkout pays the next order
with the card Stripe keeps for them, without a Checkout page. The subscription carries the same
items, VAT, setup fee and metadata as Checkout's; the order becomes paid through the webhook
path, with exactly one server; a declined card or one that needs 3-D Secure is refused clearly
and leaves nothing at Stripe; retries and double clicks charge once.

Real orders on the Stripe sandbox (driven by the real `stripe` package), webhooks delivered
signed; nothing in the portal is faked.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection
from django.urls import reverse

from billing import saved_card as saved
from billing.models import BillingEvent, Order
from billing.orders import OrderError, checkout_url, order_cancel
from billing.saved_card import order_pay_with_saved_card, saved_card
from billing.stripe_client import StripeError
from instances.models import Instance
from tests.billing.conftest import (
    GOOD_CARD,
    LATER_DECLINED,
    deliver_all,
    pay,
    place,
    stripe_api,
)

pytestmark = pytest.mark.django_db

AUTH_ALWAYS = "4000002760003184"  # asks for 3-D Secure on every payment


def paid_once(client, sandbox, shop, owner, card=GOOD_CARD, **paying) -> Order:
    """The customer's first order, paid on Checkout with `card`, its webhooks processed."""
    first = place(owner, shop, "vds", hostname="first")
    checkout_url(first)
    first.refresh_from_db()
    sandbox.pay(first.stripe_checkout_session_id, card, **paying)
    deliver_all(client, sandbox)
    first.refresh_from_db()
    assert first.status == Order.Status.PAID
    return first


def subscriptions_of(sandbox, order) -> list:
    found = stripe_api(sandbox).v1.subscriptions.list({"status": "all", "limit": 100}).data
    return [s for s in found if s.metadata.to_dict().get("order_id") == str(order.pk)]


def order_page(client, order) -> str:
    response = client.get(reverse("billing:order", args=[order.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_next_order_is_paid_with_the_saved_card_and_gets_exactly_one_server(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german)
    card = saved_card(german)
    assert card is not None and card.label == "Visa •••• 4242" and card.expiry == "12/34"
    order = place(german, shop, "vds", hostname="second")
    order_pay_with_saved_card(order)
    order.refresh_from_db()
    # Paid at once (the subscription was read back), its server queued.
    assert order.status == Order.Status.PAID and order.instance_id
    [subscription] = subscriptions_of(stripe_settings, order)
    assert order.stripe_subscription_id == subscription.id
    assert subscription.status == "active"
    assert subscription.default_payment_method == card.payment_method_id
    assert subscription.metadata.to_dict() == {"order_id": str(order.pk), "user_id": str(german.pk)}
    assert [item.price.id for item in subscription["items"].data] == [order.stripe_price_id]
    invoice = stripe_api(stripe_settings).v1.invoices.retrieve(subscription.latest_invoice)
    # 29.99 a month and the 10.00 setup fee, both with German VAT: what the order promised.
    assert invoice.status == "paid" and invoice.amount_paid == order.first_total_cents
    assert sorted(line.amount for line in invoice.lines.data) == [1000, 2999]
    assert sum(t.amount for t in invoice.total_taxes) == (
        order.monthly_vat_cents + order.setup_vat_cents
    )
    # The webhooks of the same payment arrive afterwards: nothing more is built.
    deliver_all(client, stripe_settings)
    assert Instance.objects.filter(external_ref=f"order:{order.pk}").count() == 1
    assert Instance.objects.filter(owner=german).count() == 2
    reasons = list(order.billing_events.values_list("field", "new"))
    assert ("saved_card", "charged") in reasons and ("status", "paid") in reasons


def test_the_order_page_offers_the_saved_card_next_to_stripe_and_then_waits_for_the_server(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    client.force_login(german)
    page = order_page(client, order)
    assert "Pay with Visa •••• 4242" in page and "Pay on Stripe" in page
    assert "expires 12/34" in page
    card = saved_card(german)
    response = client.post(
        reverse("billing:order_pay_saved", args=[order.pk]),
        {"payment_method": card.payment_method_id},
    )
    assert response["Location"] == reverse("billing:order", args=[order.pk]) + "?paid=1"
    order.refresh_from_db()
    back = client.get(response["Location"])
    # Paid: as after Checkout, the order page hands over to the server being built.
    assert back.status_code == 302
    assert back["Location"] == reverse("instances:detail", args=[order.instance_id])


def test_placing_an_order_with_a_saved_card_shows_both_ways_to_pay(
    client, stripe_settings, shop, german
):
    """With a saved card the order form leads to the order page (both buttons), not straight
    to Stripe's page as for a first order."""
    paid_once(client, stripe_settings, shop, german)
    client.force_login(german)
    form = {
        "plan": shop["vds"].pk,
        "location": shop["location"].pk,
        "os_image": shop["image"].pk,
        "hostname": "second",
        "generate_password": "on",
    }
    response = client.post(reverse("billing:order_new"), form)
    order = Order.objects.get(hostname="second")
    assert response["Location"] == reverse("billing:order", args=[order.pk])
    assert not order.stripe_checkout_session_id  # no Checkout session opened for nothing


def test_a_declined_card_is_refused_clearly_and_the_order_stays_payable(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german, LATER_DECLINED)
    order = place(german, shop, "vds", hostname="second")
    client.force_login(german)
    response = client.post(reverse("billing:order_pay_saved", args=[order.pk]), follow=True)
    page = response.content.decode()
    assert "Your card was declined; pay on the Checkout page or use another card." in page
    assert "Pay on Stripe" in page and "Pay with Visa •••• 0341" in page
    order.refresh_from_db()
    assert order.is_payable and order.instance_id is None
    assert subscriptions_of(stripe_settings, order) == []
    assert order.billing_events.filter(field="saved_card", new="declined").count() == 1
    deliver_all(client, stripe_settings)
    order.refresh_from_db()
    assert order.is_payable
    # Checkout still pays it, with another card.
    pay(stripe_settings, order, GOOD_CARD)
    deliver_all(client, stripe_settings)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and len(subscriptions_of(stripe_settings, order)) == 1


def test_a_card_that_needs_authentication_is_sent_to_checkout(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german, AUTH_ALWAYS)
    order = place(german, shop, "vds", hostname="second")
    with pytest.raises(OrderError) as refused:
        order_pay_with_saved_card(order)
    assert (
        str(refused.value) == "Your bank wants to confirm this payment: pay on the Checkout page."
    )
    order.refresh_from_db()
    assert order.is_payable and subscriptions_of(stripe_settings, order) == []
    assert order.billing_events.filter(new="needs_authentication").count() == 1


def test_a_second_try_after_a_refusal_is_a_new_attempt(client, stripe_settings, shop, german):
    """A refusal is an answer: the next try asks Stripe again (another idempotency key) rather
    than getting the refusal replayed."""
    paid_once(client, stripe_settings, shop, german, LATER_DECLINED)
    order = place(german, shop, "vds", hostname="second")
    for _ in range(2):
        with pytest.raises(OrderError, match="declined"):
            order_pay_with_saved_card(order)
    assert order.billing_events.filter(new="declined").count() == 2


def test_without_a_saved_card_there_is_no_button_no_stripe_call_and_the_service_refuses(
    client, stripe_settings, shop, german
):
    order = place(german, shop, "vds")
    client.force_login(german)
    stripe_settings.inject_fault("/v1/*", status=500, count=50)
    page = order_page(client, order)
    assert "Pay with" not in page and "Pay €47.59" in page
    assert stripe_settings.faults.pending[0].count == 50  # the page asked Stripe nothing
    stripe_settings.faults.clear()
    with pytest.raises(OrderError, match="no saved card"):
        order_pay_with_saved_card(order)
    response = client.post(reverse("billing:order_pay_saved", args=[order.pk]), follow=True)
    assert "You have no saved card that can pay this order" in response.content.decode()
    order.refresh_from_db()
    assert order.is_payable


def test_a_customer_who_paid_by_sepa_has_no_saved_card(client, stripe_settings, shop, german):
    first = place(german, shop, "vds", hostname="first")
    checkout_url(first)
    first.refresh_from_db()
    stripe_settings.pay_sepa(first.stripe_checkout_session_id, "DE89370400440532013000")
    assert saved_card(german) is None
    order = place(german, shop, "vds", hostname="second")
    client.force_login(german)
    assert "Pay with" not in order_page(client, order)


def test_an_expired_card_does_not_count(client, stripe_settings, shop, german):
    paid_once(client, stripe_settings, shop, german, expiry="01 / 30")
    assert saved_card(german, today=date(2030, 1, 31)).expiry == "01/30"
    assert saved_card(german, today=date(2030, 2, 1)) is None


def test_the_customers_invoice_default_card_comes_first(client, stripe_settings, shop, german):
    paid_once(client, stripe_settings, shop, german)
    api = stripe_api(stripe_settings)
    customer_id = german.billing_account.stripe_customer_id
    first = api.v1.customers.payment_methods.list(customer_id).data[0].id
    paid_once(client, stripe_settings, shop, german, LATER_DECLINED)
    assert saved_card(german).last4 == "0341"  # the newest card
    api.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": first}})
    assert saved_card(german).payment_method_id == first


def test_a_card_changed_since_the_page_was_shown_is_not_charged(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    with pytest.raises(OrderError, match="Your saved card is now Visa •••• 4242"):
        order_pay_with_saved_card(order, payment_method_id="pm_shown_before")
    assert subscriptions_of(stripe_settings, order) == []


def test_an_open_checkout_page_is_closed_first_so_it_cannot_pay_too(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    checkout_url(order)  # the customer opened Stripe's page, then came back
    order.refresh_from_db()
    session_id = order.stripe_checkout_session_id
    order_pay_with_saved_card(order)
    api = stripe_api(stripe_settings)
    assert api.v1.checkout.sessions.retrieve(session_id).status == "expired"
    with pytest.raises(Exception, match="no longer active"):
        stripe_settings.pay(session_id, GOOD_CARD)
    assert len(subscriptions_of(stripe_settings, order)) == 1


def test_a_paid_or_cancelled_order_and_a_changed_price_are_refused(
    client, stripe_settings, shop, german
):
    first = paid_once(client, stripe_settings, shop, german)
    with pytest.raises(OrderError, match="not awaiting payment"):
        order_pay_with_saved_card(first)
    order = place(german, shop, "vds", hostname="second")
    Order.objects.filter(pk=order.pk).update(stripe_price_id="price_old")
    with pytest.raises(OrderError, match="price of VDS S changed"):
        order_pay_with_saved_card(order)
    assert subscriptions_of(stripe_settings, order) == []


def test_a_retry_after_a_lost_answer_charges_once(client, stripe_settings, shop, german):
    """Stripe made the subscription but every answer was lost (the client retried with the same
    idempotency key, and those answers were lost too): the customer's next try finds it."""
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    stripe_settings.inject_fault(
        "/v1/subscriptions", status=0, count=3, method="POST", lose_answer=True
    )
    with pytest.raises(StripeError) as lost:
        order_pay_with_saved_card(order)
    assert lost.value.transient
    order.refresh_from_db()
    assert order.is_payable and len(subscriptions_of(stripe_settings, order)) == 1
    # Meanwhile a Checkout page would be a second subscription, and cancelling would leave a
    # paid subscription without a server: both are refused.
    with pytest.raises(OrderError, match="paid with your saved card"):
        checkout_url(order)
    with pytest.raises(OrderError, match="paid with your saved card"):
        order_cancel(order)
    order_pay_with_saved_card(order)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert len(subscriptions_of(stripe_settings, order)) == 1
    deliver_all(client, stripe_settings)
    assert Instance.objects.filter(external_ref=f"order:{order.pk}").count() == 1


def test_a_retry_whose_first_request_never_ran_reuses_the_key(
    client, stripe_settings, shop, german
):
    """Stripe answered 500 to every try (nothing ran, nothing kept under the key): the next
    try sends the same request under the same key, and it is charged once."""
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    stripe_settings.inject_fault("/v1/subscriptions", status=500, count=3, method="POST")
    with pytest.raises(StripeError):
        order_pay_with_saved_card(order)
    order_pay_with_saved_card(order)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert len(subscriptions_of(stripe_settings, order)) == 1
    assert order.billing_events.filter(field="saved_card", new="charging").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_pays_of_one_order_at_once_make_one_subscription(client, stripe_settings, shop, german):
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    # The first create is slow, so the others arrive while its idempotency key is in flight.
    stripe_settings.inject_fault("/v1/subscriptions", status=0, method="POST", delay=0.5)
    barrier = threading.Barrier(4)
    outcomes = []

    def pay_now():
        try:
            barrier.wait()
            order_pay_with_saved_card(Order.objects.get(pk=order.pk))
            outcomes.append("paid")
        except (OrderError, StripeError) as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=pay_now) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "paid" in outcomes
    assert set(outcomes) <= {
        "paid",
        "The payment service is still working on this request; please try again in a minute.",
    }
    assert len(subscriptions_of(stripe_settings, order)) == 1
    deliver_all(client, stripe_settings)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Instance.objects.filter(external_ref=f"order:{order.pk}").count() == 1


def test_the_page_reads_the_card_from_stripe_at_most_once_a_minute(
    client, stripe_settings, shop, german
):
    paid_once(client, stripe_settings, shop, german)
    order = place(german, shop, "vds", hostname="second")
    client.force_login(german)
    assert "Pay with Visa •••• 4242" in order_page(client, order)
    stripe_settings.inject_fault("/v1/*", status=500, count=50)
    assert "Pay with Visa •••• 4242" in order_page(client, order)  # from the cache
    assert stripe_settings.faults.pending[0].count == 50
    stripe_settings.faults.clear()
    assert saved.CACHE_SECONDS == 60


def test_the_attempts_are_on_the_orders_billing_events(client, stripe_settings, shop, german):
    paid_once(client, stripe_settings, shop, german, LATER_DECLINED)
    order = place(german, shop, "vds", hostname="second")
    with pytest.raises(OrderError):
        order_pay_with_saved_card(order)
    rows = list(
        BillingEvent.objects.filter(order=order).values_list("field", "new", "actor", "reason")
    )
    assert [row[:3] for row in rows] == [
        ("saved_card", "charging", "customer"),
        ("saved_card", "declined", "customer"),
    ]
    assert "Visa •••• 0341" in rows[1][3]


def test_the_card_a_first_payment_saved_is_offered_at_once(client, stripe_settings, shop, german):
    """The order page remembers "no card" for a minute; paying an order forgets that, so the
    next order page (or GET /api/v1/saved-card) offers the card just saved on Checkout."""
    first = place(german, shop, "vds", hostname="first")
    checkout_url(first)  # the customer now has a Stripe customer, without a card
    client.force_login(german)
    second = place(german, shop, "vds", hostname="second")
    assert "Pay with" not in order_page(client, second)
    first.refresh_from_db()
    stripe_settings.pay(first.stripe_checkout_session_id, GOOD_CARD)
    deliver_all(client, stripe_settings)
    assert "Pay with Visa •••• 4242" in order_page(client, second)
