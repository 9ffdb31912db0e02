"""Payments, failed payment attempts, refunds and disputes, with Stripe's fee and net."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from billing.exports.base import Column, Kind, Report, local_date
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
        charge_fee = LedgerEntry.objects.filter(
            kind=Kind.BALANCE_TRANSACTION,
            stripe_payment_id=OuterRef("stripe_object_id"),
            category="charge",
        ).values("fee_cents")[:1]
        entries = (
            self.ledger()
            .annotate(charge_fee=Subquery(charge_fee))
            .values_list(
                "kind",
                "occurred_at",
                "gross_cents",
                "fee_cents",
                "charge_fee",
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
        )
        for (
            kind,
            occurred,
            gross,
            fee,
            charge_fee,
            currency,
            number,
            customer,
            name,
            payment_id,
            object_id,
            charge,
            invoice_id,
            reason,
        ) in entries.iterator(chunk_size=2000):
            kind_name, status = TYPES[kind]
            if kind == Kind.PAYMENT:
                fee = charge_fee  # None until the payout is recorded
            elif kind == Kind.PAYMENT_FAILED:
                fee = 0
            yield (
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
