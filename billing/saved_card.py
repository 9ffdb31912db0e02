"""Paying an order with the customer's saved card, without a Checkout page.

The saved card is the one Stripe would charge for this customer: their invoice default card if
they set one, otherwise the newest card attached to them (Checkout attaches the card a
subscription was paid with, so that is the card of their latest order). An expired card does
not count.

Paying creates the subscription off-session with the order's line items, tax rates, setup fee
and metadata (those Checkout sends, `orders.order_items`) and
`payment_behavior=error_if_incomplete`: a card that is declined or that the bank wants to
confirm (3-D Secure) is refused with 402 and leaves no subscription at Stripe, and the order
stays payable. A paid subscription pays the order the one way every order is paid:
`billing/mirror.py` reads its metadata and builds the server once; reading it back at once
(`events.subscription_refresh`) only spares the customer the wait for the webhook.

One idempotency key per order, card and refused attempt: a retry after an answer that never came
sends the same request again, so Stripe replays it rather than charging twice, and two requests
at once make one subscription; after a refusal the next try is a new request. Before charging,
Stripe is asked whether the order has a subscription already (an earlier try whose answer was
lost, a Checkout payment), and an open Checkout session is expired, so it cannot be paid too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date

from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from billing import stripe_client
from billing.events import subscription_refresh
from billing.models import BillingAccount, BillingEvent, Order
from billing.orders import (
    SAVED_CARD_CACHE_KEY,
    SAVED_CARD_EVENT,
    OrderError,
    customer_for,
    open_session,
    order_items,
    order_metadata,
    order_subscription,
    payable_or_refuse,
)

logger = logging.getLogger(__name__)

# The order page shows the card from the cache this long; paying always asks Stripe.
CACHE_SECONDS = 60
BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
# What a refused attempt is recorded as (BillingEvent.new), and what the customer is told.
DECLINED, NEEDS_AUTHENTICATION, CHARGING, CHARGED = (
    "declined",
    "needs_authentication",
    "charging",
    "charged",
)
REFUSED = (DECLINED, NEEDS_AUTHENTICATION)
DECLINED_MESSAGE = "Your card was declined; pay on the Checkout page or use another card."
AUTHENTICATION_MESSAGE = "Your bank wants to confirm this payment: pay on the Checkout page."
NO_CARD = "You have no saved card that can pay this order; pay on the Checkout page."
AUTHENTICATION_CODES = {"invoice_payment_intent_requires_action", "authentication_required"}
PAID = {"active", "trialing"}


@dataclass(frozen=True)
class SavedCard:
    payment_method_id: str
    brand: str  # Stripe's code: visa, mastercard ...
    last4: str
    exp_month: int
    exp_year: int

    @property
    def label(self) -> str:
        """As the Pay button names it: "Visa •••• 4242"."""
        return f"{BRANDS.get(self.brand, self.brand.title())} •••• {self.last4}"

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    def expired(self, today: date) -> bool:
        """A card is good until the end of its expiry month."""
        return (self.exp_year, self.exp_month) < (today.year, today.month)


def _card(payment_method: dict) -> SavedCard | None:
    card = payment_method.get("card") if payment_method.get("type") == "card" else None
    if not card:
        return None
    return SavedCard(
        payment_method_id=payment_method["id"],
        brand=card.get("brand") or "card",
        last4=card.get("last4") or "",
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
    )


def _card_at_stripe(customer_id: str, today: date) -> SavedCard | None:
    try:
        customer = stripe_client.customer_retrieve(
            customer_id, expand=["invoice_settings.default_payment_method"]
        )
    except stripe_client.StripeError as error:
        if error.code == "resource_missing":
            return None
        raise
    if customer.get("deleted"):
        return None
    default = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(default, dict) and (card := _card(default)) and not card.expired(today):
        return card
    for payment_method in stripe_client.customer_cards(customer_id):
        if (card := _card(payment_method)) and not card.expired(today):
            return card
    return None


def saved_card(user: User, *, cached: bool = False, today: date | None = None) -> SavedCard | None:
    """The card a payment with the saved card would charge, or None (no Stripe customer yet:
    no Stripe call). `cached`: as read up to CACHE_SECONDS ago (for pages)."""
    account = BillingAccount.objects.filter(user=user).first()
    if account is None:
        return None
    today = today or timezone.now().date()
    key = SAVED_CARD_CACHE_KEY.format(user.pk)
    if cached and (hit := cache.get(key)) is not None:
        card = SavedCard(**hit) if hit else None
        return card if card is None or not card.expired(today) else None
    card = _card_at_stripe(account.stripe_customer_id, today)
    cache.set(key, asdict(card) if card else {}, timeout=CACHE_SECONDS)
    return card


def _forget(user_id: int) -> None:
    cache.delete(SAVED_CARD_CACHE_KEY.format(user_id))


def _record(order: Order, new: str, reason: str) -> None:
    BillingEvent.objects.create(
        order=order,
        field=SAVED_CARD_EVENT,
        old=order.status,
        new=new,
        reason=reason[:300],
        actor=BillingEvent.Actor.CUSTOMER,
        actor_user=order.owner,
    )


def _refused_attempts(order: Order) -> int:
    return order.billing_events.filter(field=SAVED_CARD_EVENT, new__in=REFUSED).count()


def charged(order: Order) -> bool:
    """Whether the saved card paid the order (the order page then waits for the server)."""
    last = order.billing_events.filter(field=SAVED_CARD_EVENT).order_by("-created_at", "-pk")
    return last.values_list("new", flat=True).first() == CHARGED


def order_pay_with_saved_card(order: Order, *, payment_method_id: str | None = None) -> None:
    """Charge the order's first payment to the saved card now; the order is paid (its server
    queued) when this returns, or soon after by its webhook if Stripe could not be read back
    at once. `payment_method_id`: the card the customer was shown,
    refused if it is no longer the saved card. Raises OrderError (for the customer) or
    stripe_client.StripeError (Stripe unreachable: trying again is safe)."""
    order = Order.objects.select_related("plan", "owner").get(pk=order.pk)
    payable_or_refuse(order)
    card = saved_card(order.owner)
    if card is None:
        raise OrderError(NO_CARD)
    if payment_method_id and payment_method_id != card.payment_method_id:
        raise OrderError(
            f"Your saved card is now {card.label}; check the card on the button and pay again."
        )
    customer_id = customer_for(order.owner)
    if existing := order_subscription(order, customer_id):
        if existing.get("status") == "incomplete":
            raise OrderError(
                "A payment for this order is waiting for your bank's confirmation on the "
                "Checkout page; finish it there, or wait a day and pay again."
            )
        subscription_refresh(existing["id"])  # an earlier payment went through: it pays
        return
    _expire_checkout(order)
    key = f"order-{order.pk}-saved-card-{card.payment_method_id}-{_refused_attempts(order)}"
    _record(order, CHARGING, f"Paying with {card.label} ({card.payment_method_id}).")
    monthly, once = order_items(order)
    metadata = order_metadata(order)
    try:
        subscription = stripe_client.subscription_create(
            params={
                "customer": customer_id,
                "items": monthly,
                "add_invoice_items": once,
                "default_payment_method": card.payment_method_id,
                "off_session": True,
                "payment_behavior": "error_if_incomplete",
                "metadata": metadata,
            },
            idempotency_key=key,
        )
    except stripe_client.StripeError as error:
        if not error.card:
            raise  # no answer (or a refusal of ours): the same key is sent next time
        needs_authentication = error.code in AUTHENTICATION_CODES
        message = AUTHENTICATION_MESSAGE if needs_authentication else DECLINED_MESSAGE
        _record(
            order,
            NEEDS_AUTHENTICATION if needs_authentication else DECLINED,
            f"{card.label}: {error} ({error.code}).",
        )
        _forget(order.owner_id)
        logger.info("order %s: saved card %s refused (%s)", order.pk, card.label, error.code)
        raise OrderError(message) from error
    _record(order, CHARGED, f"Paid with {card.label} by {subscription['id']}.")
    logger.info("order %s: paid with the saved card by %s", order.pk, subscription["id"])
    if subscription.get("status") in PAID:
        try:
            subscription_refresh(subscription["id"])
        except stripe_client.StripeError as error:  # the webhook will do it
            logger.warning("order %s: reading %s failed: %s", order.pk, subscription["id"], error)


def _expire_checkout(order: Order) -> None:
    """Close the order's open Checkout page, so that it cannot be paid as well."""
    session = open_session(order)  # OrderError when it was paid meanwhile
    if session is None:
        return
    try:
        stripe_client.checkout_session_expire(session["id"])
    except stripe_client.StripeError:
        if open_session(order) is not None:  # not closed, and not paid either: a real error
            raise
