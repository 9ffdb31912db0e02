"""Ledger rows from Stripe's objects, and the invoice mirror for the billing page.

Every amount here is Stripe's (the invoice is the legal document); nothing is read from orders.
A row is written once per (kind, Stripe object): replays and duplicates find it there already.
"""

from __future__ import annotations

import datetime
import logging
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.vat import EU_COUNTRIES
from billing.models import (
    BillingAccount,
    Invoice,
    LedgerEntry,
    Order,
    Plan,
    StripeEvent,
    TaxRate,
)
from billing.vat import DOMESTIC, EU_B2C, OUTSIDE_EU, REVERSE_CHARGE

logger = logging.getLogger(__name__)
Kind = LedgerEntry.Kind


def when(timestamp: int | None) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC) if timestamp else None


def _taxes(obj: dict) -> int:
    return sum(tax.get("amount") or 0 for tax in obj.get("total_taxes") or [])


def _tax_rate(obj: dict) -> Decimal | None:
    for tax in obj.get("total_taxes") or []:
        rate_id = (tax.get("tax_rate_details") or {}).get("tax_rate")
        row = TaxRate.objects.filter(stripe_tax_rate_id=rate_id).first() if rate_id else None
        if row:
            return row.percentage
    return None


def treatment_of(invoice: dict) -> tuple[str, str, Decimal | None]:
    """(treatment, country, rate) as the invoice shows them."""
    country = ((invoice.get("customer_address") or {}).get("country") or "").upper()
    if _taxes(invoice):
        rate = _tax_rate(invoice)
        return (DOMESTIC if country == settings.SELLER_COUNTRY else EU_B2C), country, rate
    if invoice.get("customer_tax_exempt") == "reverse" and country in EU_COUNTRIES:
        return REVERSE_CHARGE, country, Decimal("0")
    if country and country not in EU_COUNTRIES:
        return OUTSIDE_EU, country, Decimal("0")
    return "", country, Decimal("0")


def _owner(customer_id: str):
    account = BillingAccount.objects.filter(stripe_customer_id=customer_id).first()
    return account.user if account else None


def _plan_of(invoice: dict) -> Plan | None:
    for line in (invoice.get("lines") or {}).get("data") or []:
        details = (line.get("pricing") or {}).get("price_details") or {}
        product = details.get("product")
        if product:
            plan = Plan.objects.filter(stripe_product_id=product).first()
            if plan:
                return plan
    return None


def subscription_of(invoice: dict) -> str:
    parent = invoice.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription") or ""


def record_entry(**fields) -> LedgerEntry | None:
    """Append one row unless (kind, object) is already in the ledger (for billing's own
    bookings outside this module: a won dispute's reversal)."""
    return _record(**fields)


def _record(**fields) -> LedgerEntry | None:
    """Append one row unless (kind, object) is already in the ledger."""
    if LedgerEntry.objects.filter(
        kind=fields["kind"], stripe_object_id=fields["stripe_object_id"]
    ).exists():
        return None
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(**fields)
    except IntegrityError:  # a concurrent delivery wrote it first
        return None


def invoice_mirror(invoice: dict) -> Invoice | None:
    owner = _owner(invoice.get("customer") or "")
    if owner is None:
        logger.warning(
            "invoice %s: customer %s is not ours", invoice["id"], invoice.get("customer")
        )
        return None
    lines = (invoice.get("lines") or {}).get("data") or []
    periods = [line.get("period") or {} for line in lines]
    values = {
        "owner": owner,
        "stripe_subscription_id": subscription_of(invoice),
        "number": invoice.get("number") or "",
        "status": invoice.get("status") or "",
        "currency": (invoice.get("currency") or "eur").upper(),
        "subtotal_cents": invoice.get("total_excluding_tax") or invoice.get("subtotal") or 0,
        "tax_cents": _taxes(invoice),
        "total_cents": invoice.get("total") or 0,
        "amount_paid_cents": invoice.get("amount_paid") or 0,
        "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
        "invoice_pdf": invoice.get("invoice_pdf") or "",
        "issued_at": when(invoice.get("created")),
        "period_start": when(min((p.get("start") for p in periods if p.get("start")), default=0)),
        "period_end": when(max((p.get("end") for p in periods if p.get("end")), default=0)),
    }
    row, _ = Invoice.objects.update_or_create(stripe_invoice_id=invoice["id"], defaults=values)
    return row


def _period(invoice: dict) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    periods = [line.get("period") or {} for line in (invoice.get("lines") or {}).get("data") or []]
    starts = [p["start"] for p in periods if p.get("start")]
    ends = [p["end"] for p in periods if p.get("end")]
    return when(min(starts, default=0)), when(max(ends, default=0))


def _recurring_cents(invoice: dict) -> int:
    """What the subscription bills a month from this invoice on (net): its subscription lines
    at their price, prorated or not, without one-off items such as a setup fee."""
    total = 0
    for line in (invoice.get("lines") or {}).get("data") or []:
        parent = line.get("parent") or {}
        if parent.get("type") != "subscription_item_details" or (line.get("amount") or 0) <= 0:
            continue
        unit = (line.get("pricing") or {}).get("unit_amount_decimal")
        total += int(Decimal(unit or 0) * (line.get("quantity") or 1))
    return total


def _vat_id(invoice: dict, treatment: str) -> str:
    for tax_id in invoice.get("customer_tax_ids") or []:
        if tax_id.get("value"):
            return tax_id["value"]
    if treatment != REVERSE_CHARGE:
        return ""
    # Stripe prints the customer's tax ids on the invoice; where they are missing, the VAT ID
    # the order was placed (and the reverse charge decided) with.
    order = Order.objects.filter(stripe_subscription_id=subscription_of(invoice)).first()
    return order.vat_id if order else ""


def _invoice_fields(invoice: dict, event_id: str) -> dict:
    treatment, country, rate = treatment_of(invoice)
    vat = _taxes(invoice)
    gross = invoice.get("total") or 0
    start, end = _period(invoice)
    return {
        "document_number": invoice.get("number") or "",
        "period_start": start,
        "period_end": end,
        "customer_name": (invoice.get("customer_name") or "")[:200],
        "customer_vat_id": _vat_id(invoice, treatment),
        "stripe_subscription_id": subscription_of(invoice),
        "customer": _owner(invoice.get("customer") or ""),
        "currency": (invoice.get("currency") or "eur").upper(),
        "net_cents": gross - vat,
        "vat_cents": vat,
        "gross_cents": gross,
        "country": country,
        "vat_treatment": treatment,
        "vat_rate": rate,
        "plan": _plan_of(invoice),
        "stripe_invoice_id": invoice["id"],
        "stripe_customer_id": invoice.get("customer") or "",
        "stripe_event_id": event_id,
    }


class LedgerNotReady(Exception):
    """A row depends on one not written yet (events out of order); processing is retried."""


def invoice_issued(invoice: dict, event_id: str) -> None:
    if invoice.get("status") in (None, "draft", "void"):
        return
    transitions = invoice.get("status_transitions") or {}
    fields = _invoice_fields(invoice, event_id)
    _record(
        kind=Kind.INVOICE_ISSUED,
        stripe_object_id=invoice["id"],
        occurred_at=when(transitions.get("finalized_at") or invoice.get("created")),
        description=f"Invoice {invoice.get('number') or invoice['id']}",
        mrr_cents=_recurring_cents(invoice),
        **fields,
    )
    payment_attempt_failed(invoice, fields)


def payment_attempt_failed(invoice: dict, fields: dict) -> None:
    """An open invoice whose last payment attempt failed: one row per attempt."""
    attempts = invoice.get("attempt_count") or 0
    if invoice.get("status") != "open" or not invoice.get("attempted") or not attempts:
        return
    amount = invoice.get("amount_due") or 0
    vat = vat_share(fields["vat_cents"], amount, fields["gross_cents"])
    following = when(invoice.get("next_payment_attempt"))
    reason = f"Payment attempt {attempts} failed; " + (
        f"next attempt {following:%Y-%m-%d %H:%M} UTC" if following else "no further attempts"
    )
    payment = next(iter((invoice.get("payments") or {}).get("data") or []), {})
    _record(
        kind=Kind.PAYMENT_FAILED,
        stripe_object_id=f"{invoice['id']}#{attempts}",
        occurred_at=_event_time(fields["stripe_event_id"]),
        description=f"Payment for invoice {invoice.get('number') or invoice['id']} failed",
        failure_reason=reason,
        stripe_payment_id=(payment.get("payment") or {}).get("payment_intent") or "",
        **(fields | {"net_cents": amount - vat, "vat_cents": vat, "gross_cents": amount}),
    )


def _event_time(event_id: str) -> datetime.datetime:
    """When Stripe made the event (the invoice keeps no time per payment attempt)."""
    payload = StripeEvent.objects.filter(event_id=event_id).values_list("payload", flat=True)
    created = (payload.first() or {}).get("created")
    return when(created) or datetime.datetime.now(tz=datetime.UTC)


def invoice_paid(invoice: dict, event_id: str) -> None:
    """The issued row (if the finalized event was missed), the paid row and the payment."""
    if invoice.get("status") != "paid":
        return
    invoice_issued(invoice, event_id)
    transitions = invoice.get("status_transitions") or {}
    paid_at = when(transitions.get("paid_at") or invoice.get("created"))
    fields = _invoice_fields(invoice, event_id)
    number = invoice.get("number") or invoice["id"]
    _record(
        kind=Kind.INVOICE_PAID,
        stripe_object_id=invoice["id"],
        occurred_at=paid_at,
        description=f"Invoice {number} paid",
        mrr_cents=_recurring_cents(invoice),
        **fields,
    )
    for payment in (invoice.get("payments") or {}).get("data") or []:
        if payment.get("status") not in (None, "paid"):
            continue
        ref = payment.get("payment") or {}
        payment_id = ref.get("payment_intent") or ref.get("charge") or payment.get("id")
        amount = payment.get("amount_paid") or 0
        vat = vat_share(fields["vat_cents"], amount, fields["gross_cents"])
        _record(
            kind=Kind.PAYMENT,
            stripe_object_id=payment_id,
            occurred_at=when((payment.get("status_transitions") or {}).get("paid_at")) or paid_at,
            description=f"Card payment for invoice {number}",
            stripe_payment_id=ref.get("payment_intent") or "",
            stripe_source_id=ref.get("charge") or "",
            **(fields | {"net_cents": amount - vat, "vat_cents": vat, "gross_cents": amount}),
        )


def invoice_voided(invoice: dict, event_id: str) -> None:
    """A voided invoice that was booked as issued gets the reversing row."""
    if invoice.get("status") != "void":
        return
    issued = LedgerEntry.objects.filter(kind=Kind.INVOICE_ISSUED, stripe_object_id=invoice["id"])
    if not issued.exists():
        return
    fields = _invoice_fields(invoice, event_id)
    voided_at = (invoice.get("status_transitions") or {}).get("voided_at")
    _record(
        kind=Kind.INVOICE_VOIDED,
        stripe_object_id=invoice["id"],
        occurred_at=when(voided_at or invoice.get("created")),
        description=f"Invoice {invoice.get('number') or invoice['id']} voided",
        **(
            fields
            | {
                "net_cents": -fields["net_cents"],
                "vat_cents": -fields["vat_cents"],
                "gross_cents": -fields["gross_cents"],
            }
        ),
    )


def invoice_uncollectible(invoice: dict, event_id: str) -> None:
    """An invoice marked uncollectible: what was still owed is written off, with its VAT."""
    if invoice.get("status") != "uncollectible":
        return
    if not LedgerEntry.objects.filter(
        kind=Kind.INVOICE_ISSUED, stripe_object_id=invoice["id"]
    ).exists():
        return
    fields = _invoice_fields(invoice, event_id)
    owed = invoice.get("amount_remaining") or 0
    vat = vat_share(fields["vat_cents"], owed, fields["gross_cents"])
    marked = (invoice.get("status_transitions") or {}).get("marked_uncollectible_at")
    _record(
        kind=Kind.INVOICE_UNCOLLECTIBLE,
        stripe_object_id=invoice["id"],
        occurred_at=when(marked or invoice.get("created")),
        description=f"Invoice {invoice.get('number') or invoice['id']} written off",
        **(fields | {"net_cents": -(owed - vat), "vat_cents": -vat, "gross_cents": -owed}),
    )


def credit_note_voided(credit_note: dict, event_id: str) -> None:
    """A voided credit note that was booked gets the reversing row."""
    if credit_note.get("status") != "void":
        return
    booked = LedgerEntry.objects.filter(
        kind=Kind.CREDIT_NOTE, stripe_object_id=credit_note["id"]
    ).first()
    if booked is None:
        return
    _reverse(booked, Kind.CREDIT_NOTE_VOIDED, credit_note.get("voided_at"), event_id,
             f"Credit note {credit_note.get('number') or credit_note['id']} voided")  # fmt: skip


def _reverse(row: LedgerEntry, kind: str, at: int | None, event_id: str, text: str) -> None:
    keep = (
        "customer", "currency", "country", "vat_treatment", "vat_rate", "plan",
        "stripe_invoice_id", "stripe_customer_id", "document_number", "corrects_number",
        "customer_name", "customer_vat_id", "stripe_subscription_id", "stripe_payment_id",
        "stripe_source_id",
    )  # fmt: skip
    _record(
        kind=kind,
        stripe_object_id=row.stripe_object_id,
        occurred_at=when(at) or row.occurred_at,
        description=text,
        net_cents=-row.net_cents,
        vat_cents=-row.vat_cents,
        gross_cents=-row.gross_cents,
        stripe_event_id=event_id,
        **{name: getattr(row, name) for name in keep},
    )


def vat_share(vat: int, part: int, whole: int) -> int:
    """The VAT inside `part` of a `whole` that carried `vat` (rounded half up)."""
    if not whole:
        return 0
    return int((Decimal(vat) * part / whole).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def refund_recorded(refund: dict, event_id: str) -> None:
    if refund.get("status") == "failed":
        booked = LedgerEntry.objects.filter(kind=Kind.REFUND, stripe_object_id=refund["id"]).first()
        if booked is not None:  # it had succeeded, then the bank returned it
            _reverse(booked, Kind.REFUND_FAILED, None, event_id, f"Refund {refund['id']} failed")
        return
    if refund.get("status") != "succeeded":
        return
    paid_with = refund.get("payment_intent") or refund.get("charge") or ""
    payment = LedgerEntry.objects.filter(kind=Kind.PAYMENT, stripe_object_id=paid_with).first()
    if payment is None:
        # The refund's VAT share comes from the payment's row: wait until it is written.
        raise LedgerNotReady(f"refund {refund['id']}: payment {paid_with} not in the ledger yet")
    amount = refund.get("amount") or 0
    vat = vat_share(payment.vat_cents, amount, payment.gross_cents)
    _record(
        kind=Kind.REFUND,
        stripe_object_id=refund["id"],
        occurred_at=when(refund.get("created")),
        customer=payment.customer,
        currency=(refund.get("currency") or "eur").upper(),
        net_cents=-(amount - vat),
        vat_cents=-vat,
        gross_cents=-amount,
        country=payment.country,
        vat_treatment=payment.vat_treatment,
        vat_rate=payment.vat_rate,
        plan=payment.plan,
        description=f"Refund of {paid_with}",
        stripe_invoice_id=payment.stripe_invoice_id,
        stripe_customer_id=refund.get("customer") or "",
        stripe_event_id=event_id,
        document_number=payment.document_number,
        customer_name=payment.customer_name,
        customer_vat_id=payment.customer_vat_id,
        stripe_subscription_id=payment.stripe_subscription_id,
        stripe_payment_id=payment.stripe_payment_id or paid_with,
        stripe_source_id=refund.get("charge") or "",
    )


def credit_note_recorded(credit_note: dict, invoice: dict, event_id: str) -> None:
    if credit_note.get("status") == "void":
        return
    fields = _invoice_fields(invoice, event_id)
    vat = _taxes(credit_note)
    gross = credit_note.get("total") or 0
    _record(
        kind=Kind.CREDIT_NOTE,
        stripe_object_id=credit_note["id"],
        occurred_at=when(credit_note.get("created")),
        description=f"Credit note {credit_note.get('number') or credit_note['id']}",
        corrects_number=invoice.get("number") or "",
        **(
            fields
            | {
                "net_cents": -(gross - vat),
                "vat_cents": -vat,
                "gross_cents": -gross,
                "document_number": credit_note.get("number") or "",
            }
        ),
    )
