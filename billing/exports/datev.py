"""DATEV booking export (Buchungsstapel columns) for German accounting: one booking line per
invoice, credit note, void, payment, refund, dispute, Stripe fee and payout, on the accounts
of settings.DATEV_ACCOUNTS and the tax keys of settings.DATEV_TAX_KEYS.

Amounts are positive with S (Soll, the account is debited) or H (Haben); the document date is
DDMM as DATEV takes it within a fiscal year, so a range may not span two calendar years. The
EXTF header line (adviser and client numbers) is left to the import dialog.
"""

from __future__ import annotations

from django.conf import settings

from billing.exports.base import CSV_DE, Column, Kind, Report, zone

TEXT_LIMIT = 60
DOCUMENT_LIMIT = 36


class DatevBookings(Report):
    identifier = "datev"
    name = "DATEV bookings"
    description = (
        "The Buchungsstapel columns (Umsatz, Soll/Haben, Konto, Gegenkonto, BU-Schlüssel, "
        "Belegdatum, Belegfeld 1, Buchungstext) as a semicolon CSV with decimal commas."
    )
    kinds = (
        Kind.INVOICE_ISSUED,
        Kind.CREDIT_NOTE,
        Kind.INVOICE_VOIDED,
        Kind.PAYMENT,
        Kind.REFUND,
        Kind.DISPUTE,
        Kind.BALANCE_TRANSACTION,
        Kind.PAYOUT,
        Kind.PAYOUT_FAILED,
    )
    formats = (CSV_DE,)
    columns = [
        Column("Umsatz (ohne Soll/Haben-Kz)", "money"),
        Column("Soll/Haben-Kennzeichen"),
        Column("WKZ Umsatz"),
        Column("Konto"),
        Column("Gegenkonto (ohne BU-Schlüssel)"),
        Column("BU-Schlüssel"),
        Column("Belegdatum"),
        Column("Belegfeld 1"),
        Column("Buchungstext"),
    ]

    @staticmethod
    def check_range(date_from, date_to) -> str:
        if date_from.year != date_to.year:
            return "A DATEV batch covers one fiscal year: keep the range within one year."
        return ""

    def bookings(self, kind, category, amount, fee, treatment):
        """(amount, S/H, account, contra account, tax key, text prefix) lines for one row."""
        accounts = settings.DATEV_ACCOUNTS
        debtors, transit = accounts["debtors"], accounts["stripe_transit"]
        if kind in (Kind.INVOICE_ISSUED, Kind.CREDIT_NOTE, Kind.INVOICE_VOIDED):
            revenue = accounts[f"revenue_{treatment or 'domestic'}"]
            key = settings.DATEV_TAX_KEYS.get(treatment or "domestic", "")
            label = {Kind.INVOICE_ISSUED: "Rechnung", Kind.CREDIT_NOTE: "Gutschrift"}
            yield amount, debtors, revenue, key, label.get(kind, "Storno")
        elif kind in (Kind.PAYMENT, Kind.REFUND, Kind.DISPUTE):
            label = {Kind.PAYMENT: "Zahlung", Kind.REFUND: "Erstattung"}.get(kind, "Rückbelastung")
            yield amount, transit, debtors, "", label
            if kind == Kind.DISPUTE and fee:
                yield -fee, transit, accounts["fees"], "", "Gebühr Rückbelastung"
        elif kind == Kind.BALANCE_TRANSACTION:
            # The money moved for payments, refunds and disputes is booked from their own rows
            # (a dispute's fee too); the payout's transactions add Stripe's processing fees.
            if fee and category != "dispute":
                yield -fee, transit, accounts["fees"], "", "Stripe-Gebühr"
        elif kind in (Kind.PAYOUT, Kind.PAYOUT_FAILED):
            yield amount, accounts["bank"], transit, "", "Auszahlung"

    def rows(self):
        entries = self.ledger().values_list(
            "kind",
            "category",
            "occurred_at",
            "gross_cents",
            "fee_cents",
            "vat_treatment",
            "currency",
            "document_number",
            "stripe_object_id",
            "customer_name",
        )
        local = zone()
        for (
            kind,
            category,
            occurred,
            gross,
            fee,
            treatment,
            currency,
            number,
            object_id,
            name,
        ) in entries.iterator(chunk_size=2000):
            day = occurred.astimezone(local).strftime("%d%m")
            document = (number or object_id)[:DOCUMENT_LIMIT]
            for amount, account, contra, key, label in self.bookings(
                kind, category, gross, fee, treatment
            ):
                if not amount:
                    continue
                text = f"{label} {number or object_id} {name}".strip()[:TEXT_LIMIT]
                yield (
                    abs(amount),
                    "S" if amount > 0 else "H",
                    currency,
                    account,
                    contra,
                    key,
                    day,
                    document,
                    text,
                )
