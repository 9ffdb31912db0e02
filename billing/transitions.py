"""The one place where orders and subscriptions change state, as instance_transition is for
servers: lock the row, check the change is one that can happen, write it, and append a
BillingEvent (old, new, reason, actor, the Stripe event that caused it). The lifecycle rules
(billing/lifecycle.py) react to a subscription's transitions, not to whichever webhook came last.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.models import BillingEvent, Order, Subscription

logger = logging.getLogger(__name__)
Actor = BillingEvent.Actor


class BillingConflict(Exception):
    """The order or subscription is not in a state this change starts from."""


ORDER_ALLOWED = {
    Order.Status.AWAITING_PAYMENT: {Order.Status.PAID, Order.Status.CANCELED},
    Order.Status.PAID: set(),
    Order.Status.CANCELED: set(),
}
# Stripe's subscription statuses, and which may follow which. Stripe is the source of truth:
# the mirror follows it, but nothing leaves a final state (canceled, incomplete_expired).
SUBSCRIPTION_ALLOWED = {
    "": {"incomplete", "trialing", "active", "past_due", "unpaid", "canceled", "paused"},
    "incomplete": {"active", "trialing", "past_due", "unpaid", "incomplete_expired", "canceled"},
    "trialing": {"active", "past_due", "unpaid", "canceled", "paused"},
    "active": {"past_due", "unpaid", "canceled", "paused"},
    "past_due": {"active", "unpaid", "canceled"},
    "unpaid": {"active", "past_due", "canceled"},
    "paused": {"active", "canceled"},
    "canceled": set(),
    "incomplete_expired": set(),
}


def order_transition(
    *,
    order_id: int,
    to: str,
    reason: str,
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
    stripe_event_id: str = "",
    **fields,
) -> Order:
    """Move an order to `to` (with `fields` written alongside); raises BillingConflict."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        old = order.status
        if to not in ORDER_ALLOWED[old]:
            raise BillingConflict(f"Order {order.pk} is {old}; it cannot become {to}.")
        Order.objects.filter(pk=order.pk).update(status=to, updated_at=timezone.now(), **fields)
        BillingEvent.objects.create(
            order=order,
            old=old,
            new=to,
            reason=reason[:300],
            actor=actor,
            actor_user=actor_user,
            stripe_event_id=stripe_event_id,
        )
        order.refresh_from_db()
    logger.info("order %s: %s -> %s (%s)", order_id, old, to, reason)
    return order


def subscription_mirror(
    *,
    subscription: Subscription,
    fields: dict,
    stripe_event_id: str = "",
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
) -> tuple[str, str]:
    """Write Stripe's view of a subscription (`fields`) onto its row, which the caller holds
    locked; status and cancellation changes get a BillingEvent. Returns (old, new) status.
    Raises BillingConflict for a change that cannot happen (out of a final state)."""
    old = subscription.status
    new = fields.get("status", old)
    if new != old and new not in SUBSCRIPTION_ALLOWED.get(old, set()):
        raise BillingConflict(f"Subscription {subscription.pk} is {old}; it cannot become {new}.")
    events = []
    if new != old:
        events.append(("status", old, new, _status_reason(old, new)))
    ending = fields.get("cancel_at_period_end", subscription.cancel_at_period_end)
    if ending != subscription.cancel_at_period_end:
        reason = "Cancellation at the period's end" + (" asked for." if ending else " undone.")
        events.append(
            ("cancel_at_period_end", str(subscription.cancel_at_period_end), str(ending), reason)
        )
    for name, value in fields.items():
        setattr(subscription, name, value)
    subscription.save()
    for field, before, after, reason in events:
        BillingEvent.objects.create(
            subscription=subscription,
            field=field,
            old=before,
            new=after,
            reason=reason,
            actor=actor,
            actor_user=actor_user,
            stripe_event_id=stripe_event_id,
        )
    if new != old:
        logger.info("subscription %s: %s -> %s", subscription.pk, old or "new", new)
    return old, new


def _status_reason(old: str, new: str) -> str:
    return {
        "active": "Paid." if old in ("past_due", "unpaid", "incomplete") else "Subscribed.",
        "past_due": "A payment failed; Stripe tries again.",
        "unpaid": "Stripe's retries ended without payment.",
        "canceled": "The subscription ended.",
        "incomplete_expired": "The first payment never came.",
    }.get(new, f"Stripe says {new}.")
