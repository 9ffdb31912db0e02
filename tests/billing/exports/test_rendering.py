"""CSV, the German CSV and XLSX carry the same rows; formulas are neutralised in all three."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest

from billing.exports import REPORTS
from billing.exports.render import csv_chunks, neutralise, xlsx_rows, xlsx_write
from billing.models import LedgerEntry
from tests.billing.exports.conftest import params

pytestmark = pytest.mark.django_db


def _csv(report) -> list[list[str]]:
    text = b"".join(csv_chunks(report)).decode("utf-8-sig")
    delimiter = ";" if report.params.format == "csv_de" else ","
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _as_csv_text(report, rows) -> list[list[str]]:
    """XLSX values written as the CSV writes them, to compare the two."""
    out = []
    for row in rows[1:]:
        cells = []
        for column, value in zip(report.columns, row, strict=True):
            if value is None:
                cells.append("")
            elif column.type in ("money", "rate"):
                cells.append(f"{Decimal(str(value)):.2f}")
            elif isinstance(value, datetime.date):
                cells.append(value.isoformat())
            else:
                cells.append(str(value))
        out.append(cells)
    return out


@pytest.mark.parametrize("identifier", ["invoices", "payments", "payouts", "vat", "revenue"])
def test_csv_and_xlsx_parse_back_to_the_same_rows(seeded, tmp_path, identifier):
    csv_rows = _csv(REPORTS[identifier](params(seeded, "csv")))
    report = REPORTS[identifier](params(seeded, "xlsx"))
    xlsx_write(report, tmp_path / "out.xlsx")
    back = xlsx_rows(tmp_path / "out.xlsx")
    assert back[0] == csv_rows[0] == [c.name for c in report.columns]
    assert _as_csv_text(report, back) == csv_rows[1:]
    assert report.row_count == len(csv_rows) - 1 > 0


def test_the_german_csv_has_semicolons_decimal_commas_and_german_dates(seeded):
    english = _csv(REPORTS["invoices"](params(seeded, "csv")))
    german = _csv(REPORTS["invoices"](params(seeded, "csv_de")))
    assert len(english) == len(german)
    net = english[0].index("net")
    for en, de in zip(english[1:], german[1:], strict=True):
        assert de[net] == en[net].replace(".", ",")
        day = datetime.date.fromisoformat(en[3])
        assert de[3] == day.strftime("%d.%m.%Y")
    raw = b"".join(csv_chunks(REPORTS["invoices"](params(seeded, "csv_de"))))
    assert raw.startswith("\ufeff".encode())


@pytest.mark.parametrize("text", ['=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_text_is_neutralised(text):
    assert neutralise(text) == "'" + text
    assert neutralise("Marie " + text) == "Marie " + text


def test_a_customer_name_that_is_a_formula_is_text_in_every_format(seeded, tmp_path):
    payment = LedgerEntry.objects.filter(kind="payment").first()
    LedgerEntry.objects.create(
        **{
            f.name: getattr(payment, f.name)
            for f in LedgerEntry._meta.concrete_fields
            if f.name not in ("id", "recorded_at", "kind", "stripe_object_id", "customer_name")
        },
        kind="refund",
        stripe_object_id="re_formula",
        customer_name='=cmd|" /C calc"!A0',
    )
    rows = _csv(REPORTS["payments"](params(seeded, "csv")))
    names = [r[8] for r in rows]
    assert '\'=cmd|" /C calc"!A0' in names
    report = REPORTS["payments"](params(seeded, "xlsx"))
    xlsx_write(report, tmp_path / "p.xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "p.xlsx").worksheets[0]
    cells = [row[8] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type != "f" for cell in cells)
    assert '\'=cmd|" /C calc"!A0' in [cell.value for cell in cells]
