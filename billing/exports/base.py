"""What every finance export shares: its parameters and form, columns, the time range in the
finance time zone, and the ledger rows it reads (never orders or subscriptions)."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.conf import settings

from billing.models import LedgerEntry
from billing.vat import DOMESTIC, EU_B2C, OUTSIDE_EU, REVERSE_CHARGE

Kind = LedgerEntry.Kind

CSV, CSV_DE, XLSX = "csv", "csv_de", "xlsx"
FORMATS = {
    CSV: "CSV (UTF-8, comma, decimal point)",
    CSV_DE: "CSV for German spreadsheets (semicolon, decimal comma)",
    XLSX: "Excel (XLSX)",
}
TREATMENTS = {
    DOMESTIC: "domestic",
    EU_B2C: "EU B2C (OSS)",
    REVERSE_CHARGE: "reverse charge",
    OUTSIDE_EU: "outside the EU",
}


def zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.EXPORT_TIME_ZONE)  # ZoneInfo keeps one per name


def local_date(moment: datetime.datetime | None) -> datetime.date | None:
    return moment.astimezone(zone()).date() if moment else None


@dataclass(frozen=True)
class ExportParams:
    date_from: datetime.date
    date_to: datetime.date  # inclusive
    currency: str
    format: str

    @property
    def start(self) -> datetime.datetime:
        return datetime.datetime.combine(self.date_from, datetime.time(), tzinfo=zone())

    @property
    def end(self) -> datetime.datetime:
        """The first moment after the range."""
        day = self.date_to + datetime.timedelta(days=1)
        return datetime.datetime.combine(day, datetime.time(), tzinfo=zone())


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"  # text, money (integer cents), int, date, rate (Decimal percent)


def batches(iterator, size: int = 2000):
    """Lists of up to `size` items: a lookup per batch instead of one per row."""
    batch = []
    for item in iterator:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Report:
    """One export: an identifier, a name, its columns and a row iterator over the ledger.

    `rows()` yields tuples in column order; money as integer cents. `warnings` holds what the
    person who asked must see (a payout that does not reconcile), filled while iterating.
    """

    identifier: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    columns: ClassVar[list[Column]]
    kinds: ClassVar[tuple[str, ...]]  # the ledger kinds it reads (row estimates)
    formats: ClassVar[tuple[str, ...]] = (CSV, CSV_DE, XLSX)

    def __init__(self, params: ExportParams):
        self.params = params
        self.warnings: list[str] = []
        self.row_count = 0

    def ledger(self, *kinds: str):
        """The report's ledger rows of the range and currency, oldest first."""
        return LedgerEntry.objects.filter(
            kind__in=kinds or self.kinds,
            occurred_at__gte=self.params.start,
            occurred_at__lt=self.params.end,
            currency=self.params.currency,
        ).order_by("occurred_at", "pk")

    @staticmethod
    def check_range(date_from: datetime.date, date_to: datetime.date) -> str:
        """Why the report cannot cover this range ("" when it can)."""
        return ""

    def rows_expected(self) -> int:
        """About how many ledger rows it reads: what decides between now and a worker."""
        return self.ledger().count()

    def rows(self) -> Iterator[tuple[Any, ...]]:
        raise NotImplementedError

    def file_name(self) -> str:
        p = self.params
        extension = "xlsx" if p.format == XLSX else "csv"
        return f"{self.identifier}_{p.currency}_{p.date_from}_{p.date_to}.{extension}"


class ExportForm(forms.Form):
    report = forms.ChoiceField(choices=())
    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    currency = forms.ChoiceField(choices=())
    format = forms.ChoiceField(choices=list(FORMATS.items()))

    def __init__(self, *args, **kwargs):
        from billing.exports import REPORTS

        super().__init__(*args, **kwargs)
        self.fields["report"].choices = [(r.identifier, r.name) for r in REPORTS.values()]
        known = set(LedgerEntry.objects.values_list("currency", flat=True).distinct()[:20])
        currencies = sorted(known | {settings.CURRENCY})
        self.fields["currency"].choices = [(c, c) for c in currencies]
        self.fields["currency"].initial = settings.CURRENCY

    def clean(self):
        from billing.exports import REPORTS

        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range is before its start.")
        report = REPORTS.get(data.get("report") or "")
        if report and data.get("format") and data["format"] not in report.formats:
            allowed = ", ".join(FORMATS[f] for f in report.formats)
            self.add_error("format", f"{report.name} comes as: {allowed}.")
        if report and start and end and (problem := report.check_range(start, end)):
            self.add_error("date_to", problem)
        return data

    def params(self) -> ExportParams:
        data = self.cleaned_data
        return ExportParams(data["date_from"], data["date_to"], data["currency"], data["format"])
