"""Payments, failed payment attempts, refunds and disputes, with Stripe's fee and net."""

from __future__ import annotations

from billing.exports.base import Column, Kind, Report, batches, local_date
from billing.models import LedgerEntry

TYPES = {
    Kind.PAYMENT: ("payment", "succeeded"),
    Kind.PAYMENT_FAILED: ("payment", "failed"),
    Kind.REFUND: ("refund", "succeeded"),
    Kind.DISPUTE: ("dispute", "funds withdrawn"),
}


class PaymentsAndRefunds(Report):
    identifier = "payments"
    name = "Payments and refunds"
    description = (
        "Card payments (and failed attempts), refunds and disputes. A payment's fee is "
        "Stripe's, known once the payout that carries it is in the ledger."
    )
    kinds = tuple(TYPES)
    columns = [
        Column("date", "date"),
        Column("type"),
        Column("amount", "money"),
        Column("fee", "money"),
        Column("net", "money"),
        Column("currency"),
        Column("invoice number"),
        Column("customer id", "int"),
        Column("customer name"),
        Column("Stripe payment"),
        Column("Stripe object"),
        Column("Stripe charge"),
        Column("Stripe invoice"),
        Column("status"),
        Column("failure reason"),
    ]

    def rows(self):
        entries = self.ledger().values_list(
            "kind",
            "occurred_at",
            "gross_cents",
            "fee_cents",
            "currency",
            "document_number",
            "customer_id",
            "customer_name",
            "stripe_payment_id",
            "stripe_object_id",
            "stripe_source_id",
            "stripe_invoice_id",
            "failure_reason",
        )
        for batch in batches(entries.iterator(chunk_size=2000)):
            # Stripe's fee of each payment: on its charge's balance transaction, once the
            # payout that carries it is recorded (one query per batch).
            fees = dict(
                LedgerEntry.objects.filter(
                    kind=Kind.BALANCE_TRANSACTION,
                    category="charge",
                    stripe_payment_id__in=[r[9] for r in batch if r[0] == Kind.PAYMENT],
                ).values_list("stripe_payment_id", "fee_cents")
            )
            for row in batch:
                yield self._row(row, fees)

    @staticmethod
    def _row(row, fees):
        (
            kind,
            occurred,
            gross,
            fee,
            currency,
            number,
            customer,
            name,
            payment_id,
            object_id,
            charge,
            invoice_id,
            reason,
        ) = row
        kind_name, status = TYPES[kind]
        if kind == Kind.PAYMENT:
            fee = fees.get(object_id)  # None until the payout is recorded
        elif kind == Kind.PAYMENT_FAILED:
            fee = 0
        return (
            local_date(occurred),
            kind_name,
            gross,
            fee,
            None if fee is None else gross - fee,
            currency,
            number,
            customer,
            name,
            payment_id or object_id,
            object_id,
            charge,
            invoice_id,
            status,
            reason,
        )
