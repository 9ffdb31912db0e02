"""Rendering a report as it is read: CSV in chunks (StreamingHttpResponse), XLSX through
openpyxl's write-only mode into a file. Memory stays flat whatever the number of rows.

Text that a spreadsheet would read as a formula (it begins with =, +, -, @, a tab or a carriage
return) gets a leading apostrophe in every format, so the same text comes back from each.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from billing.exports.base import CSV_DE, Report

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 2000


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def money_text(cents: int, decimal: str = ".") -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}{decimal}{rest:02d}"


def _text_converters(report: Report, german: bool) -> list[Callable[[Any], str]]:
    decimal = "," if german else "."

    def text(value):
        return "" if value is None else neutralise(str(value))

    def money(value):
        return "" if value is None else money_text(value, decimal)

    def number(value):
        return "" if value is None else str(value)

    def rate(value):
        return "" if value is None else str(value).replace(".", decimal)

    def date(value):
        if value is None:
            return ""
        return value.strftime("%d.%m.%Y") if german else value.isoformat()

    kinds = {"text": text, "money": money, "int": number, "rate": rate, "date": date}
    return [kinds[column.type] for column in report.columns]


class _Line:
    """A file-like object csv.writer writes one line into, handed out as it is written."""

    def __init__(self):
        self.value = ""

    def write(self, text: str) -> None:
        self.value = text


def csv_chunks(report: Report, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The report as UTF-8 CSV, in chunks of a few hundred rows. The German variant has a BOM
    (so spreadsheets read it as UTF-8), semicolons and decimal commas."""
    german = report.params.format == CSV_DE
    line = _Line()
    writer = csv.writer(line, delimiter=";" if german else ",", lineterminator="\r\n")
    converters = _text_converters(report, german)
    writer.writerow([neutralise(column.name) for column in report.columns])
    buffer = ["\ufeff" + line.value if german else line.value]
    count = 0
    for row in report.rows():
        writer.writerow([convert(value) for convert, value in zip(converters, row, strict=True)])
        buffer.append(line.value)
        count += 1
        if len(buffer) >= 500:
            yield "".join(buffer).encode()
            buffer.clear()
        if progress and count % PROGRESS_EVERY == 0:
            progress(count)
    yield "".join(buffer).encode()
    if progress:
        progress(count)
    report.row_count = count


def xlsx_write(report: Report, path: Path, progress: Callable[[int], None] | None = None) -> int:
    """Write the report to an XLSX file at `path` (openpyxl write-only); returns the rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(report.name[:31])
    header = []
    for column in report.columns:
        cell = WriteOnlyCell(sheet, value=neutralise(column.name))
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    money_columns = [n for n, c in enumerate(report.columns) if c.type == "money"]
    text_columns = [n for n, c in enumerate(report.columns) if c.type == "text"]
    hundred = Decimal(100)
    count = 0
    for row in report.rows():
        values = list(row)
        for n in money_columns:
            if values[n] is not None:
                values[n] = Decimal(values[n]) / hundred
        for n in text_columns:
            if values[n] is not None:
                values[n] = neutralise(str(values[n]))
        sheet.append(values)
        count += 1
        if progress and count % PROGRESS_EVERY == 0:
            progress(count)
    workbook.save(path)
    if progress:
        progress(count)
    report.row_count = count
    return count


def xlsx_rows(path: Path) -> list[list[Any]]:
    """An XLSX file's rows as values (dates as dates): what tests and checks compare."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
    workbook.close()
    return [
        [value.date() if isinstance(value, datetime.datetime) else value for value in row]
        for row in rows
    ]
