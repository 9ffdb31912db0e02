"""What a stored Stripe event does. Each handler reads the objects the event is about from
Stripe (outside any lock or transaction: a slow Stripe holds up nothing), then writes them in
one transaction (billing/mirror.py), so the end state is Stripe's current state whatever order,
or how often, the deliveries came in."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import disputes, ledger, mirror, payouts, stripe_client
from billing.models import StripeEvent

logger = logging.getLogger(__name__)

PAID_SESSION = {"paid", "no_payment_required"}


@dataclass(frozen=True)
class Handler:
    # Reads what the event is about from Stripe: {"started": when the reading began, ...}.
    fetch: Callable[[dict], dict]
    # Writes it (inside the transaction that marks the event processed).
    apply: Callable[[dict, StripeEvent], None]


def _started() -> dict:
    return {"started": timezone.now()}


def fetch_subscription(obj: dict) -> dict:
    read = _started()
    subscription = stripe_client.subscription_retrieve(obj["id"])
    read["subscription"] = subscription
    latest = subscription.get("latest_invoice")
    if subscription.get("pending_update") and isinstance(latest, str):
        read["latest_invoice"] = stripe_client.invoice_retrieve(latest)  # an upgrade's invoice
    return read


def apply_subscription(read: dict, event: StripeEvent | None) -> None:
    if read.get("subscription"):
        mirror.subscription_apply(
            read["subscription"],
            read["started"],
            stripe_event_id=event.event_id if event else "",
            latest_invoice=read.get("latest_invoice"),
            # When Stripe made the event: a webhook processed late still counts from then.
            changed_at=ledger.when(event.payload.get("created")) if event else None,
        )


def fetch_checkout(obj: dict) -> dict:
    session = stripe_client.checkout_session_retrieve(obj["id"])
    if session.get("mode") != "subscription" or not session.get("subscription"):
        return {}
    if session.get("status") != "complete" or session.get("payment_status") not in PAID_SESSION:
        return {}
    return fetch_subscription({"id": session["subscription"]})


def fetch_invoice(obj: dict) -> dict:
    read = _started()
    read["invoice"] = invoice = stripe_client.invoice_retrieve(obj["id"])
    if subscription_id := ledger.subscription_of(invoice):
        read.update(fetch_subscription({"id": subscription_id}), started=read["started"])
    return read


def apply_invoice(read: dict, event: StripeEvent) -> None:
    mirror.invoice_apply(read["invoice"], read["started"], event)
    apply_subscription(read, event)


def fetch_refund(obj: dict) -> dict:
    return {"refund": stripe_client.refund_retrieve(obj["id"])}


def apply_refund(read: dict, event: StripeEvent) -> None:
    ledger.refund_recorded(read["refund"], event.event_id)


def fetch_credit_note(obj: dict) -> dict:
    credit_note = stripe_client.credit_note_retrieve(obj["id"])
    return {
        "credit_note": credit_note,
        "invoice": stripe_client.invoice_retrieve(credit_note["invoice"]),
    }


def apply_credit_note(read: dict, event: StripeEvent) -> None:
    ledger.credit_note_recorded(read["credit_note"], read["invoice"], event.event_id)
    ledger.credit_note_voided(read["credit_note"], event.event_id)


def subscription_refresh(subscription_id: str) -> None:
    """Read a subscription from Stripe and mirror it now (beat and staff tools use this)."""
    read = fetch_subscription({"id": subscription_id})
    with transaction.atomic():
        apply_subscription(read, None)


CHECKOUT = Handler(fetch_checkout, apply_subscription)
INVOICE = Handler(fetch_invoice, apply_invoice)
SUBSCRIPTION = Handler(fetch_subscription, apply_subscription)
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": CHECKOUT,
    "checkout.session.async_payment_succeeded": CHECKOUT,
    "invoice.created": INVOICE,
    "invoice.finalized": INVOICE,
    "invoice.updated": INVOICE,
    "invoice.paid": INVOICE,
    "invoice.payment_succeeded": INVOICE,
    "invoice.payment_failed": INVOICE,
    "invoice.payment_action_required": INVOICE,
    "invoice.voided": INVOICE,
    "invoice.marked_uncollectible": INVOICE,
    "customer.subscription.created": SUBSCRIPTION,
    "customer.subscription.updated": SUBSCRIPTION,
    "customer.subscription.deleted": SUBSCRIPTION,
    # An upgrade's pending update: applied once its invoice is paid, or dropped unpaid.
    "customer.subscription.pending_update_applied": SUBSCRIPTION,
    "customer.subscription.pending_update_expired": SUBSCRIPTION,
    "refund.created": Handler(fetch_refund, apply_refund),
    "refund.updated": Handler(fetch_refund, apply_refund),
    "credit_note.created": Handler(fetch_credit_note, apply_credit_note),
    "credit_note.voided": Handler(fetch_credit_note, apply_credit_note),
    "refund.failed": Handler(fetch_refund, apply_refund),
    # Finance exports: payouts with their balance transactions, and disputes (billing/ledger.py).
    "payout.paid": Handler(payouts.payout_read, payouts.payout_apply),
    "payout.failed": Handler(payouts.payout_read, payouts.payout_apply),
    # Disputes: the customer flagged while open, the money withdrawn and given back.
    "charge.dispute.created": Handler(disputes.dispute_read, disputes.dispute_apply),
    "charge.dispute.funds_withdrawn": Handler(disputes.dispute_read, disputes.dispute_apply),
    "charge.dispute.funds_reinstated": Handler(disputes.dispute_read, disputes.dispute_apply),
    "charge.dispute.closed": Handler(disputes.dispute_read, disputes.dispute_apply),
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
    """Run the event's handler once: read from Stripe, then write and mark it processed in one
    transaction. Raises (for a retry) when Stripe is unreachable. Two workers on one event
    both read; the first to write wins and the second finds it processed."""
    event = StripeEvent.objects.get(pk=event_pk)
    if event.processed_at:
        return "already processed"
    handler = HANDLERS.get(event.type)
    try:
        read = handler.fetch(event.payload["data"]["object"]) if handler else {}
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().get(pk=event_pk)
            if event.processed_at:
                return "already processed"
            if handler is not None:
                handler.apply(read, event)
            StripeEvent.objects.filter(pk=event_pk).update(
                processed_at=timezone.now(),
                attempts=F("attempts") + 1,
                last_attempt_at=timezone.now(),
                last_error="",
            )
    except Exception as error:
        StripeEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(
            attempts=F("attempts") + 1,
            last_attempt_at=timezone.now(),
            last_error=f"{type(error).__name__}: {error}"[:2000],
        )
        raise
    outcome = "processed" if handler else "ignored (no handler)"
    logger.info("stripe event %s (%s): %s", event.event_id, event.type, outcome)
    return outcome
