"""Rows that correct earlier ones, never edits: an invoice written off, a credit note voided, a
refund that never reached the card. Through the Stripe sandbox and its webhooks."""

from __future__ import annotations

import pytest

from billing import credits
from billing.models import Invoice, LedgerEntry
from tests.billing.conftest import LATER_DECLINED, stripe_api

Kind = LedgerEntry.Kind
DAY = 86400


def rows(kind) -> list[tuple[int, int]]:
    return list(LedgerEntry.objects.filter(kind=kind).values_list("gross_cents", "vat_cents"))


def test_an_invoice_written_off_books_what_it_still_owed(paid_server, german, demo_sandbox, settle):
    paid_server(german, card=LATER_DECLINED)
    demo_sandbox.advance(32 * DAY)  # the renewal is declined: its invoice stays open
    settle()
    stripe = stripe_api(demo_sandbox)
    [open_invoice] = stripe.v1.invoices.list({"status": "open"}).data
    stripe.v1.invoices.mark_uncollectible(open_invoice.id)
    settle()
    assert rows(Kind.INVOICE_UNCOLLECTIBLE) == [(-594, -95)]
    settle()
    assert len(rows(Kind.INVOICE_UNCOLLECTIBLE)) == 1


def test_a_voided_credit_note_is_reversed(paid_server, german, demo_sandbox, settle, staff):
    paid_server(german)
    settle()
    invoice = Invoice.objects.get(status="paid")
    credits.credit_note_issue(
        invoice=invoice, amount_cents=119, reason="order_change", method=credits.BALANCE,
        memo="", staff=staff,
    )  # fmt: skip
    settle()
    stripe = stripe_api(demo_sandbox)
    [note] = stripe.v1.credit_notes.list({"limit": 1}).data
    stripe.v1.credit_notes.void_credit_note(note.id)
    settle()
    assert rows(Kind.CREDIT_NOTE) == [(-119, -19)]
    assert rows(Kind.CREDIT_NOTE_VOIDED) == [(119, 19)]


def test_a_credit_note_that_refunded_money_cannot_be_voided(
    paid_server, german, demo_sandbox, staff
):
    import stripe as stripe_package

    paid_server(german)
    invoice = Invoice.objects.get(status="paid")
    credits.credit_note_issue(
        invoice=invoice, amount_cents=119, reason="duplicate", method=credits.REFUND,
        memo="", staff=staff,
    )  # fmt: skip
    [note] = stripe_api(demo_sandbox).v1.credit_notes.list({"limit": 1}).data
    with pytest.raises(stripe_package.InvalidRequestError, match="cannot be voided"):
        stripe_api(demo_sandbox).v1.credit_notes.void_credit_note(note.id)


def test_a_refund_that_fails_before_it_succeeds_books_nothing(
    paid_server, german, demo_sandbox, settle, staff
):
    paid_server(german)
    settle()
    demo_sandbox.configure(refund_outcome="pending_fails", refund_delay=60)
    invoice = Invoice.objects.get(status="paid")
    credits.credit_note_issue(
        invoice=invoice, amount_cents=119, reason="duplicate", method=credits.REFUND,
        memo="", staff=staff,
    )  # fmt: skip
    demo_sandbox.advance(120)  # the bank returns it
    settle()
    [refund] = stripe_api(demo_sandbox).v1.refunds.list({"limit": 1}).data
    assert refund.status == "failed"
    assert rows(Kind.REFUND) == [] and rows(Kind.REFUND_FAILED) == []
    assert rows(Kind.CREDIT_NOTE) == [(-119, -19)]  # the credit note stands
