"""Stripe's subscriptions and invoices into the portal's rows, from reads made beforehand.

events.py reads the objects an event is about from Stripe first, outside any lock or
transaction; the functions here write them, inside one. Two workers may read the same object
at nearly the same time: the read that started later wins, and an older one arriving second is
not written over it (StripeRead keeps, per object, when the applied read started). Ledger rows
are written whatever the read's age: each is a fact that was true (issued, paid, refunded) and
is written once per Stripe object.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction

from billing import ledger, lifecycle, notifications, transitions, upgrades
from billing.models import BillingAccount, Invoice, Order, StripeEvent, StripeRead, Subscription
from billing.orders import OrderError, order_mark_paid

logger = logging.getLogger(__name__)

# A subscription in these states has been paid for at least once.
PAID_SUBSCRIPTION = {"active", "trialing", "past_due", "unpaid"}


def read_is_fresh(key: str, started: datetime.datetime) -> bool:
    """Whether a read of `key` that started at `started` may be written (no later read was);
    locks the object's StripeRead row for the rest of the transaction."""
    row, created = StripeRead.objects.select_for_update().get_or_create(
        key=key, defaults={"started_at": started}
    )
    if created:
        return True
    if row.started_at > started:
        logger.info("%s: a later read was written already; this one is not", key)
        return False
    StripeRead.objects.filter(pk=row.pk).update(started_at=started)
    return True


def order_for(subscription: dict) -> Order | None:
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


def subscription_apply(
    subscription: dict,
    started: datetime.datetime,
    *,
    stripe_event_id: str = "",
    latest_invoice: dict | None = None,
    changed_at: datetime.datetime | None = None,
) -> None:
    """Mirror a subscription as read at `started`; one that has been paid for pays its order
    (its server is built), and the lifecycle and any upgrade in flight follow its state.
    `changed_at`: when Stripe made the change (the event's time), which dunning counts from."""
    order = order_for(subscription)
    if order is None:
        logger.info("subscription %s is not one of our orders; ignored", subscription["id"])
        return
    item = ((subscription.get("items") or {}).get("data") or [{}])[0]
    price = (item.get("price") or {}).get("id", "")
    if subscription.get("status") in PAID_SUBSCRIPTION and not order.instance_id:
        if price != order.stripe_price_id:
            # Not what the customer ordered (made outside our checkout): staff decide.
            raise OrderError(
                f"Subscription {subscription['id']} pays {price}, but order {order.pk} is for "
                f"{order.stripe_price_id}; not building."
            )
        order_mark_paid(
            order_id=order.pk,
            subscription_id=subscription["id"],
            reason="Payment received; build queued.",
            stripe_event_id=stripe_event_id,
        )
    if not read_is_fresh(subscription["id"], started):
        return
    row = (
        Subscription.objects.select_for_update()
        .filter(stripe_subscription_id=subscription["id"])
        .first()
    )
    if row is None:  # it pays for the order's plan until an upgrade is applied
        row = Subscription.objects.create(
            stripe_subscription_id=subscription["id"],
            order=order,
            owner_id=order.owner_id,
            plan_id=order.plan_id,
            status="",
        )
    old, new = transitions.subscription_mirror(
        subscription=row,
        fields={
            "stripe_price_id": price,
            "status": subscription.get("status") or "",
            "current_period_start": ledger.when(item.get("current_period_start")),
            "current_period_end": ledger.when(item.get("current_period_end")),
            "cancel_at_period_end": bool(subscription.get("cancel_at_period_end")),
            "canceled_at": ledger.when(subscription.get("canceled_at")),
        },
        stripe_event_id=stripe_event_id,
    )
    lifecycle.subscription_changed(row, old, new, now=changed_at)
    upgrades.upgrades_follow(subscription, latest_invoice=latest_invoice)


def invoice_apply(invoice: dict, started: datetime.datetime, event: StripeEvent) -> None:
    """Mirror an invoice and write its ledger rows; tell the customer about a failed payment
    (once per failed attempt: this event is processed once) and about a renewal paid."""
    fresh = read_is_fresh(invoice["id"], started)
    # Read under that lock: a worker writing the same invoice at the same moment has committed
    # by now, so its receipt is not sent a second time from a row read before it wrote.
    before = Invoice.objects.filter(stripe_invoice_id=invoice["id"]).first()
    mirrored = ledger.invoice_mirror(invoice) if fresh else before
    if event.type == "invoice.payment_failed" and mirrored and invoice.get("status") == "open":
        next_attempt = ledger.when(invoice.get("next_payment_attempt"))
        transaction.on_commit(
            lambda: notifications.send_payment_failed(mirrored, next_attempt=next_attempt)
        )
    renewed = fresh and mirrored and mirrored.status == "paid"
    renewed = renewed and (before is None or before.status != "paid")
    if renewed and invoice.get("billing_reason") == "subscription_cycle":
        transaction.on_commit(lambda: notifications.send_receipt(mirrored))
    ledger.invoice_issued(invoice, event.event_id)
    ledger.invoice_paid(invoice, event.event_id)
    ledger.invoice_voided(invoice, event.event_id)
    ledger.invoice_uncollectible(invoice, event.event_id)
