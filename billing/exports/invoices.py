"""Invoices and credit notes, as Stripe issued them (its numbering is the legal one)."""

from __future__ import annotations

from billing.exports.base import TREATMENTS, Column, Kind, Report, batches, local_date
from billing.models import LedgerEntry


class InvoicesAndCreditNotes(Report):
    identifier = "invoices"
    name = "Invoices and credit notes"
    description = "Every invoice and credit note issued in the range, with its VAT treatment."
    kinds = (Kind.INVOICE_ISSUED, Kind.CREDIT_NOTE)
    columns = [
        Column("number"),
        Column("type"),
        Column("corrects number"),
        Column("issue date", "date"),
        Column("service from", "date"),
        Column("service to", "date"),
        Column("customer id", "int"),
        Column("customer name"),
        Column("country"),
        Column("VAT ID"),
        Column("B2B"),
        Column("plan"),
        Column("net", "money"),
        Column("VAT rate %", "rate"),
        Column("VAT", "money"),
        Column("gross", "money"),
        Column("currency"),
        Column("VAT treatment"),
        Column("status"),
        Column("paid date", "date"),
        Column("Stripe invoice"),
        Column("Stripe credit note"),
        Column("Stripe customer"),
    ]

    def rows(self):
        entries = self.ledger().values_list(
            "kind",
            "document_number",
            "corrects_number",
            "occurred_at",
            "period_start",
            "period_end",
            "customer_id",
            "customer_name",
            "country",
            "customer_vat_id",
            "plan__name",
            "net_cents",
            "vat_rate",
            "vat_cents",
            "gross_cents",
            "currency",
            "vat_treatment",
            "stripe_invoice_id",
            "stripe_object_id",
            "stripe_customer_id",
        )
        for batch in batches(entries.iterator(chunk_size=2000)):
            # Paid and voided rows of this batch's invoices: one query per batch, not per row.
            later = LedgerEntry.objects.filter(
                kind__in=(Kind.INVOICE_PAID, Kind.INVOICE_VOIDED),
                stripe_object_id__in=[row[18] for row in batch if row[0] != Kind.CREDIT_NOTE],
            ).values_list("kind", "stripe_object_id", "occurred_at")
            paid, voided = {}, set()
            for kind, object_id, occurred in later:
                if kind == Kind.INVOICE_PAID:
                    paid[object_id] = occurred
                else:
                    voided.add(object_id)
            for row in batch:
                yield self._row(row, paid, voided)

    @staticmethod
    def _row(row, paid, voided):
        (
            kind,
            number,
            corrects,
            issued,
            start,
            end,
            customer,
            name,
            country,
            vat_id,
            plan,
            net,
            rate,
            vat,
            gross,
            currency,
            treatment,
            invoice_id,
            object_id,
            stripe_customer,
        ) = row
        credit_note = kind == Kind.CREDIT_NOTE
        paid_at = None if credit_note else paid.get(object_id)
        if credit_note:
            status = "issued"
        else:
            status = "void" if object_id in voided else "paid" if paid_at else "open"
        return (
            number,
            "credit note" if credit_note else "invoice",
            corrects,
            local_date(issued),
            local_date(start),
            local_date(end),
            customer,
            name,
            country,
            vat_id,
            "yes" if vat_id or treatment == "reverse_charge" else "no",
            plan or "",
            net,
            rate,
            vat,
            gross,
            currency,
            TREATMENTS.get(treatment, treatment),
            status,
            local_date(paid_at),
            invoice_id,
            object_id if credit_note else "",
            stripe_customer,
        )
