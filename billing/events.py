"""What a stored Stripe event does. Each handler re-reads the object from Stripe, so the end
state is Stripe's current state whatever order, or how often, the deliveries came in."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from billing import ledger, notifications, stripe_client, upgrades
from billing.models import BillingAccount, Order, StripeEvent, Subscription
from billing.orders import OrderError, order_mark_paid

logger = logging.getLogger(__name__)

PAID_SESSION = {"paid", "no_payment_required"}
# A subscription in these states has been paid for at least once.
PAID_SUBSCRIPTION = {"active", "trialing", "past_due", "unpaid"}


def _order_for(subscription: dict) -> Order | None:
    order_id = (subscription.get("metadata") or {}).get("order_id")
    order = Order.objects.filter(pk=order_id).first() if order_id else None
    if order is None:
        order = Order.objects.filter(stripe_subscription_id=subscription["id"]).first()
    if order is None:
        return None
    account = BillingAccount.objects.filter(user=order.owner_id).first()
    if account is None or account.stripe_customer_id != subscription.get("customer"):
        logger.warning(
            "subscription %s names order %s of another customer; ignored",
            subscription["id"],
            order.pk,
        )
        return None
    return order


def _serialize_on(key: str) -> None:
    """Hold a transaction-wide lock on `key`, so two workers re-reading the same Stripe object
    write their copies one after the other (the later read wins). SQLite writes are serial."""
    if connection.vendor == "postgresql":
        number = int.from_bytes(
            hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def subscription_refresh(subscription_id: str) -> None:
    """Mirror Stripe's subscription; one that has been paid for also pays its order."""
    _serialize_on(subscription_id)
    subscription = stripe_client.subscription_retrieve(subscription_id)
    order = _order_for(subscription)
    if order is None:
        logger.info("subscription %s is not one of our orders; ignored", subscription_id)
        return
    items = (subscription.get("items") or {}).get("data") or [{}]
    item = items[0]
    if subscription.get("status") in PAID_SUBSCRIPTION and not order.instance_id:
        price = item.get("price") or {}
        if price.get("id") != order.stripe_price_id:
            # Not what the customer ordered (made outside our checkout): staff decide.
            raise OrderError(
                f"Subscription {subscription_id} pays {price.get('id')}, but order {order.pk} "
                f"is for {order.stripe_price_id}; not building."
            )
        order_mark_paid(
            order_id=order.pk,
            subscription_id=subscription_id,
            reason="Payment received; build queued.",
        )
    mirror = {
        "order": order,
        "owner_id": order.owner_id,
        "stripe_price_id": (item.get("price") or {}).get("id", ""),
        "status": subscription.get("status") or "",
        "current_period_start": ledger.when(item.get("current_period_start")),
        "current_period_end": ledger.when(item.get("current_period_end")),
        "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
        "canceled_at": ledger.when(subscription.get("canceled_at")),
    }
    Subscription.objects.update_or_create(
        stripe_subscription_id=subscription_id,
        defaults=mirror,
        # It pays for the order's plan until an upgrade is applied (billing/upgrades.py).
        create_defaults={**mirror, "plan_id": order.plan_id},
    )
    upgrades.upgrades_follow(subscription)


def on_checkout_completed(obj: dict, event: StripeEvent) -> None:
    session = stripe_client.checkout_session_retrieve(obj["id"])
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return
    if session.get("status") != "complete" or session.get("payment_status") not in PAID_SESSION:
        return
    subscription_refresh(session["subscription"])


def on_invoice_changed(obj: dict, event: StripeEvent) -> None:
    _serialize_on(obj["id"])
    invoice = stripe_client.invoice_retrieve(obj["id"])
    mirrored = ledger.invoice_mirror(invoice)
    if event.type == "invoice.payment_failed" and mirrored and invoice.get("status") == "open":
        # Once per failed attempt (this event is processed once), and only once committed.
        next_attempt = ledger.when(invoice.get("next_payment_attempt"))
        transaction.on_commit(
            lambda: notifications.send_payment_failed(mirrored, next_attempt=next_attempt)
        )
    ledger.invoice_issued(invoice, event.event_id)
    ledger.invoice_paid(invoice, event.event_id)
    ledger.invoice_voided(invoice, event.event_id)
    subscription_id = ledger.subscription_of(invoice)
    if subscription_id:
        subscription_refresh(subscription_id)


def on_subscription_changed(obj: dict, event: StripeEvent) -> None:
    subscription_refresh(obj["id"])


def on_refund(obj: dict, event: StripeEvent) -> None:
    ledger.refund_recorded(stripe_client.refund_retrieve(obj["id"]), event.event_id)


def on_credit_note(obj: dict, event: StripeEvent) -> None:
    credit_note = stripe_client.credit_note_retrieve(obj["id"])
    invoice = stripe_client.invoice_retrieve(credit_note["invoice"])
    ledger.credit_note_recorded(credit_note, invoice, event.event_id)


HANDLERS: dict[str, Callable[[dict, StripeEvent], None]] = {
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.async_payment_succeeded": on_checkout_completed,
    "invoice.created": on_invoice_changed,
    "invoice.finalized": on_invoice_changed,
    "invoice.updated": on_invoice_changed,
    "invoice.paid": on_invoice_changed,
    "invoice.payment_succeeded": on_invoice_changed,
    "invoice.payment_failed": on_invoice_changed,
    "invoice.voided": on_invoice_changed,
    "invoice.marked_uncollectible": on_invoice_changed,
    "customer.subscription.created": on_subscription_changed,
    "customer.subscription.updated": on_subscription_changed,
    "customer.subscription.deleted": on_subscription_changed,
    # An upgrade's pending update: applied once its invoice is paid, or dropped unpaid.
    "customer.subscription.pending_update_applied": on_subscription_changed,
    "customer.subscription.pending_update_expired": on_subscription_changed,
    "refund.created": on_refund,
    "refund.updated": on_refund,
    "credit_note.created": on_credit_note,
    # Finance exports: payouts with their balance transactions, and disputes (billing/ledger.py).
    "payout.paid": ledger.on_payout,
    "payout.failed": ledger.on_payout,
    "charge.dispute.created": ledger.on_dispute,
    "charge.dispute.funds_withdrawn": ledger.on_dispute,
}


class EventRefused(ValueError):
    """A correctly signed delivery whose id or type is not one we can keep."""


EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]+")
EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")


def _check_shape(event: dict) -> None:
    for key, pattern, field in [
        ("id", EVENT_ID, "event_id"),
        ("type", EVENT_TYPE, "type"),
    ]:
        value = event.get(key)
        limit = StripeEvent._meta.get_field(field).max_length
        if not isinstance(value, str) or len(value) > limit or not pattern.fullmatch(value):
            raise EventRefused(f"event {key} is not a Stripe event {key} of at most {limit} chars")


def event_store(event: dict) -> tuple[StripeEvent, bool]:
    """Keep a verified delivery (once per event id); returns (row, whether it is new). Raises
    EventRefused, storing nothing, for an id or type that does not fit."""
    _check_shape(event)
    return StripeEvent.objects.get_or_create(
        event_id=event["id"],
        defaults={"type": event["type"], "payload": event},
    )


def event_process(event_pk: int) -> str:
    """Run the event's handler once. Raises (for a retry) when Stripe is unreachable."""
    try:
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().get(pk=event_pk)
            if event.processed_at:
                return "already processed"
            handler = HANDLERS.get(event.type)
            if handler is not None:
                handler(event.payload["data"]["object"], event)
            StripeEvent.objects.filter(pk=event_pk).update(
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
                last_attempt_at=timezone.now(),
                last_error="",
            )
    except Exception as error:
        StripeEvent.objects.filter(pk=event_pk).update(
            attempts=F("attempts") + 1,
            last_attempt_at=timezone.now(),
            last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        raise
    outcome = "processed" if handler else "ignored (no handler)"
    logger.info("stripe event %s (%s): %s", event.event_id, event.type, outcome)
    return outcome
