"""VAT by country and month (OSS-ready): the net base and VAT of what was invoiced, credited
and voided, by the month of the document, country, treatment and rate."""

from __future__ import annotations

from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from billing.exports.base import TREATMENTS, Column, Kind, Report, zone


class VatByCountry(Report):
    identifier = "vat"
    name = "VAT by country and month"
    description = (
        "Invoices less credit notes and voids, by month, customer country, VAT treatment and "
        "rate: the figures of an OSS return (EU B2C) and of the domestic return."
    )
    kinds = (Kind.INVOICE_ISSUED, Kind.CREDIT_NOTE, Kind.INVOICE_VOIDED)
    columns = [
        Column("month"),
        Column("country"),
        Column("VAT treatment"),
        Column("VAT rate %", "rate"),
        Column("net base", "money"),
        Column("VAT", "money"),
        Column("documents", "int"),
    ]

    def rows(self):
        groups = (
            self.ledger()
            .annotate(month=TruncMonth("occurred_at", tzinfo=zone()))
            .order_by()
            .values("month", "country", "vat_treatment", "vat_rate")
            .annotate(net=Sum("net_cents"), vat=Sum("vat_cents"), documents=Count("pk"))
            .order_by("month", "country", "vat_treatment", "vat_rate")
        )
        total_net = total_vat = total_documents = 0
        for group in groups:
            total_net += group["net"]
            total_vat += group["vat"]
            total_documents += group["documents"]
            yield (
                group["month"].strftime("%Y-%m"),
                group["country"],
                TREATMENTS.get(group["vat_treatment"], group["vat_treatment"]),
                group["vat_rate"],
                group["net"],
                group["vat"],
                group["documents"],
            )
        yield ("total", "", "", None, total_net, total_vat, total_documents)
