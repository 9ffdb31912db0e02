"""Credit notes (with a refund, or credited to the customer's balance) for issued invoices.

An issued invoice is never edited: a correction is a credit note on it, issued through Stripe,
which the ledger then books (credit_note.created, refund.created). Each line of the invoice is
credited by the same share, with its share of VAT, so the credit note carries the invoice's VAT
treatment. Staff issue them from the admin; a cancellation with a refund uses one too.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import User
from billing import stripe_client
from billing.models import BillingEvent, Invoice, Subscription

logger = logging.getLogger(__name__)
REFUND, BALANCE = "refund", "balance"
REASONS = {
    "duplicate": "Charged twice",
    "fraudulent": "Fraudulent",
    "order_change": "Order changed",
    "product_unsatisfactory": "Service not as promised",
}


class CreditError(Exception):
    """A credit note that cannot be issued; the message is for the staff member."""


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _line_tax(line: dict, net: int) -> int:
    """The VAT Stripe credits with `net` of a line: each of its taxes by the same share."""
    amount = line.get("amount") or 1
    return sum(_cents(Decimal(t["amount"]) * net / amount) for t in line.get("taxes") or [])


def _net_for(line: dict, gross: int) -> int:
    """The line's biggest net credit whose VAT keeps it at `gross` or below (exactly `gross`
    when the cents allow: VAT is rounded per line, so some totals cannot be reached)."""
    amount = line.get("amount") or 0
    taxes = sum(t["amount"] for t in line.get("taxes") or [])
    estimate = int(Decimal(gross) * amount / (amount + taxes)) if amount + taxes else 0
    fitting = [
        n for n in range(max(0, estimate - 2), estimate + 3) if n + _line_tax(line, n) <= gross
    ]
    return max(fitting, default=0)


def lines_for_amount(stripe_invoice: dict, gross: int) -> tuple[list[dict], int]:
    """Credit lines for `gross` cents VAT included, spread over the lines by their share."""
    lines = [
        line for line in (stripe_invoice.get("lines") or {}).get("data") or [] if line.get("amount")
    ]
    whole = sum(
        line["amount"] + sum(t["amount"] for t in line.get("taxes") or []) for line in lines
    )
    result, total = [], 0
    for n, line in enumerate(lines):
        line_gross = line["amount"] + sum(t["amount"] for t in line.get("taxes") or [])
        part = gross - total if n == len(lines) - 1 else _cents(Decimal(gross) * line_gross / whole)
        net = min(_net_for(line, part), line["amount"])
        if net <= 0:
            continue
        result.append({"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": net})
        total += net + _line_tax(line, net)
    return result, total


def credit_lines(stripe_invoice: dict, share: Decimal, *, period_end: int | None = None):
    """Each line credited by `share` (0..1) and the credit's total with VAT. With `period_end`,
    only lines of the period that ends then (not a setup fee, not an earlier period)."""
    lines, total = [], 0
    for line in (stripe_invoice.get("lines") or {}).get("data") or []:
        if period_end is not None and (line.get("period") or {}).get("end") != period_end:
            continue
        amount = line.get("amount") or 0
        part = _cents(Decimal(amount) * share)
        if part <= 0:
            continue
        lines.append({"type": "invoice_line_item", "invoice_line_item": line["id"], "amount": part})
        total += part + _line_tax(line, part)
    return lines, total


def credit_note_issue(
    *,
    invoice: Invoice,
    reason: str,
    method: str,
    memo: str,
    staff: User | None,
    amount_cents: int | None = None,
    share: Decimal | None = None,
    period_end: int | None = None,
) -> int:
    """Credit a paid invoice, refunded to the card or credited to the customer's balance:
    `amount_cents` of it (VAT included), or `share` of each line (of the period ending at
    `period_end`, when given). Returns the cents the credit note is for."""
    if invoice.status != "paid":
        raise CreditError(
            f"Invoice {invoice.number} is {invoice.status}; only a paid one is credited."
        )
    if reason not in REASONS:
        raise CreditError("Choose a reason.")
    stripe_invoice = stripe_client.invoice_retrieve(invoice.stripe_invoice_id)
    available = invoice.amount_paid_cents - int(
        stripe_invoice.get("post_payment_credit_notes_amount") or 0
    )
    if share is None:
        if amount_cents is None or not 0 < amount_cents <= available:
            raise CreditError(
                f"Credit between 0.01 and {available / 100:.2f} {invoice.currency} of "
                f"{invoice.number}."
            )
        lines, total = lines_for_amount(stripe_invoice, amount_cents)
    else:
        lines, total = credit_lines(stripe_invoice, share, period_end=period_end)
    if not lines or total > available:
        raise CreditError(f"Nothing (more) on {invoice.number} to credit.")
    money = {"refund_amount": total} if method == REFUND else {"credit_amount": total}
    stripe_client.credit_note_create(
        params={
            "invoice": invoice.stripe_invoice_id,
            "lines": lines,
            "reason": reason,
            "memo": memo[:500] or REASONS[reason],
            **money,
        },
        idempotency_key=f"credit-{invoice.stripe_invoice_id}-{total}-{_count(invoice)}",
    )
    subscription = Subscription.objects.filter(
        stripe_subscription_id=invoice.stripe_subscription_id
    ).first()
    if subscription is not None:
        how = "refunded" if method == REFUND else "to the balance"
        BillingEvent.objects.create(
            subscription=subscription,
            field="credit_note",
            new=str(total),
            reason=f"Credit note on {invoice.number}: {total / 100:.2f} {how} ({REASONS[reason]}).",
            actor=BillingEvent.Actor.STAFF if staff else BillingEvent.Actor.SYSTEM,
            actor_user=staff,
        )
    logger.info("credit note on %s for %s cents (%s) by %s", invoice.number, total, method, staff)
    return total


def _count(invoice: Invoice) -> int:
    return BillingEvent.objects.filter(
        field="credit_note", reason__startswith=f"Credit note on {invoice.number}:"
    ).count()
