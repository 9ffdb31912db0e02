"""The billing lifecycle's timers and the cancellations customers and staff ask for.

Beat runs `lifecycle_tick`, which is idempotent and safe to run late or twice: reminders while a
subscription is past due (DUNNING_REMINDER_DAYS after it became so), suspension after
DUNNING_SUSPEND_AFTER_DAYS past due (Stripe's `unpaid` suspends at once, whichever comes
first), the end of a suspended subscription after SUSPENSION_GRACE_DAYS (cancelled at Stripe,
whose answer removes the server), and a retry of what could not start at once because the
server was busy. Stripe is called here outside any transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing import credits, lifecycle, notifications, stripe_client
from billing.events import subscription_refresh
from billing.models import BillingEvent, Invoice, Subscription
from billing.transitions import Actor
from instances.models import Instance

logger = logging.getLogger(__name__)


class CancelError(Exception):
    """A cancellation that cannot be done; the message is for the person who asked."""


@dataclass
class TickReport:
    reminded: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)


def _days(n: float) -> timedelta:
    return timedelta(days=n)


def lifecycle_tick(now: datetime | None = None) -> TickReport:
    now = now or timezone.now()
    report = TickReport()
    past_due = Subscription.objects.filter(status="past_due", past_due_since__isnull=False)
    for subscription in past_due.select_related("order__instance", "owner"):
        _remind(subscription, now, report)
        if subscription.past_due_since <= now - _days(settings.DUNNING_SUSPEND_AFTER_DAYS):
            with transaction.atomic():
                if subscription.suspended_at is None and lifecycle.suspend(subscription, now=now):
                    report.suspended.append(subscription.stripe_subscription_id)
    overdue = Subscription.objects.filter(
        status__in=("past_due", "unpaid"),
        suspended_at__lte=now - _days(settings.SUSPENSION_GRACE_DAYS),
    )
    for subscription in overdue:
        _end_unpaid(subscription)
        report.ended.append(subscription.stripe_subscription_id)
    _retry(report, now)
    return report


def _remind(subscription: Subscription, now: datetime, report: TickReport) -> None:
    schedule = settings.DUNNING_REMINDER_DAYS
    sent = subscription.reminders_sent
    if sent >= len(schedule) or subscription.past_due_since > now - _days(schedule[sent]):
        return
    updated = Subscription.objects.filter(pk=subscription.pk, reminders_sent=sent).update(
        reminders_sent=sent + 1
    )
    invoice = lifecycle.open_invoice(subscription)
    if updated and invoice is not None:  # once per step of the schedule, even run twice
        suspend_on = subscription.past_due_since + _days(settings.DUNNING_SUSPEND_AFTER_DAYS)
        notifications.send_reminder(invoice, suspend_on=suspend_on if suspend_on > now else None)
        report.reminded.append(subscription.stripe_subscription_id)


def _end_unpaid(subscription: Subscription) -> None:
    """The grace period is over: Stripe cancels the subscription (the open invoice stays for
    collection); its answer, mirrored, removes the server."""
    stripe_client.subscription_cancel(
        subscription.stripe_subscription_id,
        params={"cancellation_details": {"comment": "Unpaid after the grace period."}},
        idempotency_key=f"subscription-{subscription.pk}-end-unpaid",
    )
    subscription_refresh(subscription.stripe_subscription_id)


def _retry(report: TickReport, now: datetime) -> None:
    """What the state says should have happened but could not start (the server was busy)."""
    Status = Instance.Status
    with transaction.atomic():
        for subscription in Subscription.objects.filter(
            status="unpaid", order__instance__status__in=(Status.RUNNING, Status.STOPPED)
        ):
            if lifecycle.suspend(subscription, now=now):
                report.retried.append(f"suspend {subscription.stripe_subscription_id}")
        for subscription in Subscription.objects.filter(
            status__in=lifecycle.PAYING,
            suspended_at__isnull=False,
            order__instance__status=Status.SUSPENDED,
        ):
            if lifecycle.restore(subscription):
                report.retried.append(f"restore {subscription.stripe_subscription_id}")
        ended = Subscription.objects.filter(status__in=lifecycle.ENDED).exclude(
            order__instance__status__in=(Status.TERMINATED, Status.TERMINATING)
        )
        for subscription in ended.exclude(order__instance=None):
            if lifecycle.remove(
                subscription, reason="The subscription ended; the server was removed."
            ):
                report.retried.append(f"remove {subscription.stripe_subscription_id}")


# --- Cancellation -------------------------------------------------------------------------------


def _record(subscription: Subscription, reason: str, actor: str, user: User | None) -> None:
    BillingEvent.objects.create(
        subscription=subscription,
        field="cancellation",
        new=reason[:40],
        reason=reason,
        actor=actor,
        actor_user=user,
    )


def cancel_at_period_end(*, subscription: Subscription, user: User, undo: bool = False) -> None:
    """The server runs until the paid period ends and is removed then (undo until that day)."""
    if subscription.status in lifecycle.ENDED:
        raise CancelError("This subscription has ended already.")
    stripe_client.subscription_update(
        subscription.stripe_subscription_id,
        params={"cancel_at_period_end": not undo},
        idempotency_key=f"subscription-{subscription.pk}-end-at-period-{not undo}-"
        f"{subscription.billing_events.count()}",
    )
    _record(
        subscription,
        "Cancellation undone by the customer." if undo else "Cancelled for the period's end.",
        Actor.CUSTOMER,
        user,
    )
    subscription_refresh(subscription.stripe_subscription_id)
    if not undo and subscription.order.instance_id:
        sub_id, server_id = subscription.pk, subscription.order.instance_id
        transaction.on_commit(lambda: notifications.send_cancellation(sub_id, server_id))


def cancel_now(
    *,
    subscription: Subscription,
    user: User,
    actor: str = Actor.CUSTOMER,
    refund: bool = False,
) -> int:
    """End the subscription at once (the server is removed); a customer gets nothing back,
    staff may refund the unused part of the paid period. Returns the cents refunded."""
    if subscription.status in lifecycle.ENDED:
        raise CancelError("This subscription has ended already.")
    refunded = _refund_unused(subscription, user) if refund else 0
    stripe_client.subscription_cancel(
        subscription.stripe_subscription_id,
        params={"prorate": False, "invoice_now": False},
        idempotency_key=f"subscription-{subscription.pk}-cancel-now",
    )
    who = "support" if actor == Actor.STAFF else "the customer"
    note = f" ({refunded / 100:.2f} refunded)" if refunded else ""
    _record(subscription, f"Cancelled at once by {who}{note}.", actor, user)
    subscription_refresh(subscription.stripe_subscription_id)
    if subscription.order.instance_id:
        sub_id, server_id = subscription.pk, subscription.order.instance_id
        transaction.on_commit(lambda: notifications.send_cancellation(sub_id, server_id))
    return refunded


def unused_share(subscription: Subscription, now: datetime | None = None) -> Decimal:
    """The part of the paid period still ahead (0..1)."""
    now = now or timezone.now()
    start, end = subscription.current_period_start, subscription.current_period_end
    if not start or not end or end <= start:
        return Decimal(0)
    left = max(timedelta(0), end - max(now, start))
    return Decimal(left.total_seconds()) / Decimal((end - start).total_seconds())


def _refund_unused(subscription: Subscription, staff: User) -> int:
    """A credit note with a refund for the unused part of the paid period: the subscription's
    line of its last paid invoice, by that share, with its share of VAT."""
    invoice = (
        Invoice.objects.filter(
            stripe_subscription_id=subscription.stripe_subscription_id, status="paid"
        )
        .order_by("-issued_at")
        .first()
    )
    share = unused_share(subscription)
    if invoice is None or share <= 0 or subscription.current_period_end is None:
        return 0
    try:
        return credits.credit_note_issue(
            invoice=invoice,
            reason="order_change",
            method=credits.REFUND,
            memo="Unused part of the period, refunded on cancellation.",
            staff=staff,
            share=share,
            period_end=int(subscription.current_period_end.timestamp()),
        )
    except credits.CreditError as error:
        logger.info("subscription %s: no refund (%s)", subscription.pk, error)
        return 0
