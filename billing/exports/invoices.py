"""Invoices and credit notes, as Stripe issued them (its numbering is the legal one)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Subquery

from billing.exports.base import TREATMENTS, Column, Kind, Report, local_date
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
        same_invoice = LedgerEntry.objects.filter(stripe_object_id=OuterRef("stripe_object_id"))
        entries = (
            self.ledger()
            .annotate(
                paid_at=Subquery(
                    same_invoice.filter(kind=Kind.INVOICE_PAID).values("occurred_at")[:1]
                ),
                voided=Exists(same_invoice.filter(kind=Kind.INVOICE_VOIDED)),
            )
            .values_list(
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
                "paid_at",
                "voided",
                "stripe_invoice_id",
                "stripe_object_id",
                "stripe_customer_id",
            )
        )
        for (
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
            paid_at,
            voided,
            invoice_id,
            object_id,
            stripe_customer,
        ) in entries.iterator(chunk_size=2000):
            credit_note = kind == Kind.CREDIT_NOTE
            if credit_note:
                status = "issued"
            else:
                status = "void" if voided else "paid" if paid_at else "open"
            yield (
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
                None if credit_note else local_date(paid_at),
                invoice_id,
                object_id if credit_note else "",
                stripe_customer,
            )
