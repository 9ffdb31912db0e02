"""Last month's exports mailed once on the 1st (beat may run twice), and `manage.py export`."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.core import mail
from django.core.management import call_command

from billing.exports.services import monthly_exports_send
from billing.models import ExportRun

pytestmark = pytest.mark.django_db


def test_monthly_exports_are_mailed_once(seeded, settings, tmp_path):
    settings.FINANCE_EXPORT_EMAIL = "finance@example.com"
    settings.EXPORT_DIR = tmp_path
    settings.FINANCE_EXPORT_REPORTS = ["invoices", "datev"]
    start, _ = seeded["range"]
    month = start + datetime.timedelta(days=10)
    first_of_next = (month.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
    assert monthly_exports_send(today=first_of_next) == 2
    assert monthly_exports_send(today=first_of_next) == 0  # beat ran twice: nothing more
    assert len(mail.outbox) == 2
    names = sorted(a[0] for m in mail.outbox for a in m.attachments)
    assert names[0].startswith("datev_EUR_") and names[0].endswith(".csv")
    assert names[1].startswith("invoices_EUR_") and names[1].endswith(".xlsx")
    assert ExportRun.objects.filter(schedule_key__startswith="monthly:").count() == 2


def test_nothing_is_mailed_without_an_address(seeded, settings):
    settings.FINANCE_EXPORT_EMAIL = ""
    assert monthly_exports_send() == 0 and not mail.outbox


def test_the_command_writes_csv_and_xlsx(seeded, tmp_path, capsysbinary):
    start, end = seeded["range"]
    call_command("export", "vat", "--from", str(start), "--to", str(end), "--format", "csv")
    out = capsysbinary.readouterr().out.decode()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["month", "country"] and rows[-1][0] == "total"
    assert rows[-1][4:6] == ["79.96", "6.95"]
    target = tmp_path / "inv.xlsx"
    call_command(
        "export",
        "invoices",
        "--from",
        str(start),
        "--to",
        str(end),
        "--format",
        "xlsx",
        "--output",
        str(target),
    )
    assert target.stat().st_size > 0
