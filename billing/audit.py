"""`manage.py audit_consistency`: money and servers must never disagree. Each check returns the
violations it found as sentences support can act on; an empty list means all is well.

- every paying subscription has exactly one live server, and one that is not suspended;
- a subscription that ended (unpaid past its grace, cancelled) has its server removed, and
  Proxmox has no VM left for it (instances/audit.py also lists orphan VMs and missing ones);
- no address is held by two servers;
- the ledger's invoice totals equal Stripe's invoices minus their credit notes;
- every stored Stripe event was processed (once: the event id is unique).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from billing import stripe_client
from billing.lifecycle import ENDED, PAYING
from billing.models import LedgerEntry, StripeEvent, Subscription
from instances import audit as server_audit
from instances.models import Instance

Status = Instance.Status


def subscription_problems() -> list[str]:
    problems = []
    for subscription in Subscription.objects.select_related("order__instance"):
        server = subscription.order.instance
        name = f"subscription {subscription.stripe_subscription_id}"
        if subscription.status in PAYING:
            if server is None or server.status == Status.TERMINATED:
                problems.append(f"{name} is {subscription.status} but has no live server")
            elif server.status == Status.SUSPENDED:
                problems.append(f"{name} is paid but server {server.hostname} is suspended")
        if subscription.status in ENDED and server is not None:
            ended = _ended_at(subscription)
            settled = ended < timezone.now() - timedelta(minutes=settings.AUDIT_SETTLE_MINUTES)
            if settled and server.status != Status.TERMINATED:
                problems.append(
                    f"{name} ended but server {server.hostname} is {server.status}, not removed"
                )
    return problems


def _ended_at(subscription: Subscription) -> datetime:
    """When the portal learned the subscription ended, by its own clock: the removal starts
    then. Stripe's canceled_at is Stripe's clock, and for a cancellation at the period's end it
    is when the customer asked, weeks before."""
    ended = (
        subscription.billing_events.filter(field="status", new__in=ENDED)
        .order_by("-created_at")
        .first()
    )
    return ended.created_at if ended else subscription.updated_at


def ledger_problems() -> list[str]:
    """The ledger's issued invoices minus credit notes against Stripe's, per currency."""
    kinds = LedgerEntry.Kind
    ledger = (
        LedgerEntry.objects.filter(kind__in=(kinds.INVOICE_ISSUED, kinds.CREDIT_NOTE))
        .values("currency")
        .annotate(total=Sum("gross_cents"))
    )
    booked = {row["currency"]: row["total"] for row in ledger}
    stripe = {}
    for invoice in stripe_client.list_all("invoices"):
        if invoice.get("status") in ("open", "paid", "uncollectible"):
            currency = (invoice.get("currency") or "eur").upper()
            credited = int(invoice.get("post_payment_credit_notes_amount") or 0)
            credited += int(invoice.get("pre_payment_credit_notes_amount") or 0)
            stripe[currency] = stripe.get(currency, 0) + int(invoice.get("total") or 0) - credited
    problems = []
    for currency in sorted(set(booked) | set(stripe)):
        ours, theirs = booked.get(currency, 0), stripe.get(currency, 0)
        if ours != theirs:
            problems.append(
                f"ledger invoices minus credit notes {ours / 100:.2f} {currency}, "
                f"Stripe {theirs / 100:.2f} {currency}"
            )
    return problems


def event_problems() -> list[str]:
    cutoff = timezone.now() - timedelta(minutes=settings.AUDIT_SETTLE_MINUTES)
    waiting = StripeEvent.objects.filter(Q(processed_at__isnull=True), received_at__lt=cutoff)
    return [
        f"Stripe event {event.event_id} ({event.type}) was never processed: "
        f"{event.last_error or 'no error kept'}"
        for event in waiting
    ]


def audit() -> dict[str, list[str]]:
    """Every check, by name."""
    return {
        "subscriptions": subscription_problems(),
        "servers on Proxmox": server_audit.vm_problems(),
        "addresses": server_audit.address_problems(),
        "ledger": ledger_problems(),
        "Stripe events": event_problems(),
    }
