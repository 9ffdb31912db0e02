"""What the webhooks write into the ledger for the exports: numbers, periods, fees, the
payout with its balance transactions, the dispute."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry

pytestmark = pytest.mark.django_db


def test_the_payout_and_its_balance_transactions_are_in_the_ledger(seeded):
    (payout,) = LedgerEntry.objects.filter(kind="payout")
    assert payout.gross_cents == 6944
    txns = LedgerEntry.objects.filter(
        kind="balance_transaction", stripe_payout_id=payout.stripe_object_id
    )
    by_category = sorted((t.category, t.gross_cents, t.fee_cents) for t in txns)
    assert by_category == [
        ("charge", 499, 32),
        ("charge", 594, 34),
        ("charge", 3999, 85),
        ("charge", 4799, 97),
        ("dispute", -499, 2000),
        ("refund", -200, 0),
    ]
    assert sum(t.gross_cents - t.fee_cents for t in txns) == payout.gross_cents
    charges = [t for t in txns if t.category == "charge"]
    assert all(t.document_number and t.stripe_invoice_id for t in charges)


def test_the_dispute_withdraws_the_amount_and_the_fee(seeded):
    (dispute,) = LedgerEntry.objects.filter(kind="dispute")
    assert (dispute.gross_cents, dispute.vat_cents, dispute.fee_cents) == (-499, 0, 2000)
    assert dispute.customer == seeded["customers"]["fr_b2b"]
    assert dispute.vat_treatment == "reverse_charge"


def test_invoice_rows_carry_number_period_customer_and_recurring_amount(seeded):
    issued = LedgerEntry.objects.get(kind="invoice_issued", customer=seeded["customers"]["fr"])
    assert issued.document_number and issued.period_start < issued.period_end
    assert issued.customer_name == "marie@example.fr"
    assert issued.mrr_cents == 2999  # the setup fee is not recurring
    reverse = LedgerEntry.objects.get(kind="invoice_issued", customer=seeded["customers"]["fr_b2b"])
    assert reverse.customer_vat_id and reverse.customer_vat_id == seeded["orders"]["fr_b2b"].vat_id
    (credit,) = LedgerEntry.objects.filter(kind="credit_note")
    assert (credit.net_cents, credit.vat_cents, credit.gross_cents) == (-1000, -200, -1200)
    assert credit.corrects_number == issued.document_number
    assert credit.document_number.startswith(issued.document_number)


def test_delivering_everything_again_writes_nothing(client, seeded):
    from tests.billing.conftest import deliver, process_all, sandbox_events

    count = LedgerEntry.objects.count()
    for event in sandbox_events(seeded["sandbox"]):
        deliver(client, event)
    process_all()
    assert LedgerEntry.objects.count() == count
