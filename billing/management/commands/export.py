"""`manage.py export <report> --from YYYY-MM-DD --to YYYY-MM-DD --format csv|csv_de|xlsx`:
a finance export for scripts, written to --output (or, for CSV, to standard output)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.exports import REPORTS
from billing.exports.base import FORMATS, XLSX, ExportParams
from billing.exports.render import csv_chunks, xlsx_write


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from error


class Command(BaseCommand):
    help = "Write a finance export (reads the ledger only)."

    def add_arguments(self, parser):
        parser.add_argument("report", choices=sorted(REPORTS))
        parser.add_argument("--from", dest="date_from", required=True, type=_date)
        parser.add_argument("--to", dest="date_to", required=True, type=_date)
        parser.add_argument("--format", default="csv", choices=sorted(FORMATS))
        parser.add_argument("--currency", default=settings.CURRENCY)
        parser.add_argument("--output", type=Path, help="file to write (required for xlsx)")

    def handle(self, *args, report, date_from, date_to, format, currency, output, **options):
        report_class = REPORTS[report]
        if format not in report_class.formats:
            raise CommandError(f"{report} comes as {', '.join(report_class.formats)}")
        if date_from > date_to:
            raise CommandError("--to is before --from")
        if problem := report_class.check_range(date_from, date_to):
            raise CommandError(problem)
        exporter = report_class(ExportParams(date_from, date_to, currency.upper(), format))
        if format == XLSX:
            if output is None:
                raise CommandError("XLSX needs --output FILE")
            xlsx_write(exporter, output)
        else:
            target = output.open("wb") if output else sys.stdout.buffer
            try:
                for chunk in csv_chunks(exporter):
                    target.write(chunk)
            finally:
                if output:
                    target.close()
        for warning in exporter.warnings:
            self.stderr.write(warning)
        if output:
            self.stderr.write(f"{exporter.row_count} rows written to {output}")
