"""What a subscription's changes mean for its server: a paying customer's server runs, a
non-paying one is suspended and finally removed.

`subscription_changed` is called with each status transition of a subscription (inside the
transaction that wrote it; database work only, no Stripe calls): `past_due` starts dunning,
`unpaid` suspends the server, payment restores a server billing suspended, and the end of the
subscription removes it. The timers (reminders, suspension after N days past due, removal after
the grace period) and the retries of what could not start at once are in billing/dunning.py,
run by beat. Servers are told what to do through instances' lifecycle functions, with the
reason the customer reads; instances know nothing of money.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing import notifications
from billing.models import Invoice, Subscription, money
from instances import lifecycle as servers
from instances.models import Instance
from instances.services import OperationInProgress

logger = logging.getLogger(__name__)
PAYING = {"active", "trialing"}
ENDED = {"canceled", "incomplete_expired"}


def open_invoice(subscription: Subscription) -> Invoice | None:
    """The subscription's oldest unpaid invoice (the one to pay to be in good standing)."""
    return (
        Invoice.objects.filter(
            stripe_subscription_id=subscription.stripe_subscription_id, status="open"
        )
        .order_by("issued_at")
        .first()
    )


def suspension_reason(subscription: Subscription) -> str:
    invoice = open_invoice(subscription)
    what = (
        f"invoice {invoice.number or invoice.stripe_invoice_id} "
        f"({money(invoice.total_cents - invoice.amount_paid_cents, invoice.currency)})"
        if invoice
        else "an invoice"
    )
    return (
        f"Suspended because {what} is unpaid. Pay it on the Billing page and the server starts "
        "again by itself."
    )


def server_of(subscription: Subscription) -> Instance | None:
    return subscription.order.instance if subscription.order.instance_id else None


def subscription_changed(
    subscription: Subscription, old: str, new: str, *, now: datetime | None = None
) -> None:
    """React to one status transition (old -> new) of the subscription, which happened at
    `now` (when Stripe made the change; the dunning timers count from then)."""
    if old == new:
        return
    now = now or timezone.now()
    if new == "past_due" and subscription.past_due_since is None:
        Subscription.objects.filter(pk=subscription.pk).update(past_due_since=now, reminders_sent=0)
    if new == "unpaid":
        suspend(subscription, now=now)
    if new in PAYING and old in ("past_due", "unpaid"):
        Subscription.objects.filter(pk=subscription.pk).update(
            past_due_since=None, reminders_sent=0
        )
        restore(subscription)
    if new in ENDED:
        remove(subscription, reason="The subscription ended; the server was removed.")


def suspend(subscription: Subscription, *, now: datetime | None = None) -> bool:
    """Suspend the server for non-payment (once; the grace period counts from `now`); False
    when it must be tried again later."""
    server = server_of(subscription)
    if server is None or server.status in (Instance.Status.TERMINATING, Instance.Status.TERMINATED):
        return True
    try:
        servers.instance_suspend(instance=server, reason=suspension_reason(subscription))
    except OperationInProgress:
        return False  # beat tries again when the server's current operation has ended
    if subscription.suspended_at is None:
        subscription.suspended_at = now or timezone.now()
        Subscription.objects.filter(pk=subscription.pk).update(
            suspended_at=subscription.suspended_at
        )
        server_id = server.pk
        transaction.on_commit(lambda: notifications.send_suspended(subscription.pk, server_id))
    return True


def restore(subscription: Subscription) -> bool:
    """Start again a server billing suspended; only that suspension is lifted by paying."""
    server = server_of(subscription)
    if server is None or subscription.suspended_at is None:
        return True
    try:
        servers.instance_unsuspend(
            instance=server, reason="Payment received, thank you: the server is running again."
        )
    except OperationInProgress:
        return False
    Subscription.objects.filter(pk=subscription.pk).update(suspended_at=None)
    subscription.suspended_at = None
    server_id = server.pk
    transaction.on_commit(lambda: notifications.send_restored(subscription.pk, server_id))
    return True


def remove(subscription: Subscription, *, reason: str) -> bool:
    """Remove the server of a subscription that ended (its records stay)."""
    server = server_of(subscription)
    if server is None or server.status == Instance.Status.TERMINATED:
        return True
    first = not server.operations.filter(kind="terminate").exists()
    try:
        servers.instance_terminate(instance=server, reason=reason)
    except OperationInProgress:
        return False
    if first:
        server_id = server.pk
        transaction.on_commit(lambda: notifications.send_removed(subscription.pk, server_id))
    return True
