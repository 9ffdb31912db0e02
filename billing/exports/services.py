"""Running exports: now (streamed to the browser) or on a worker (kept as a file under
EXPORT_DIR), and the monthly exports mailed to finance."""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from billing.exports import REPORTS
from billing.exports.base import XLSX, ExportParams, Report
from billing.exports.render import csv_chunks, xlsx_write
from billing.models import ExportRun

logger = logging.getLogger(__name__)
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "csv_de": "text/csv; charset=utf-8",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportError(Exception):
    """An export that cannot be run as asked; the message is for the person who asked."""


def report_for(identifier: str, params: ExportParams) -> Report:
    try:
        return REPORTS[identifier](params)
    except KeyError:
        raise ExportError(f"There is no report {identifier!r}.") from None


def export_dir() -> Path:
    folder = Path(settings.EXPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def params_of(run: ExportRun) -> ExportParams:
    return ExportParams(run.date_from, run.date_to, run.currency, run.format)


def export_run_create(*, report: str, params: ExportParams, user, schedule_key=None) -> ExportRun:
    """Record an export to be run by a worker (queued once the transaction commits)."""
    from billing.tasks import run_export

    expected = report_for(report, params).rows_expected()
    run = ExportRun.objects.create(
        report=report,
        format=params.format,
        date_from=params.date_from,
        date_to=params.date_to,
        currency=params.currency,
        requested_by=user,
        rows_expected=expected,
        schedule_key=schedule_key,
    )
    transaction.on_commit(lambda: run_export.delay(run.pk))
    return run


def needs_worker(report: Report) -> bool:
    return report.rows_expected() > settings.EXPORT_SYNC_MAX_ROWS


def _progress(run_pk: int):
    def update(rows: int) -> None:
        ExportRun.objects.filter(pk=run_pk).update(rows_done=rows)

    return update


def export_run_execute(run_pk: int) -> str:
    """Write the export's file (claimed with a conditional update: one worker runs it)."""
    claimed = ExportRun.objects.filter(pk=run_pk, state=ExportRun.State.QUEUED).update(
        state=ExportRun.State.RUNNING
    )
    if not claimed:
        return "not queued"
    run = ExportRun.objects.get(pk=run_pk)
    report = report_for(run.report, params_of(run))
    target = export_dir() / f"{run.pk}_{report.file_name()}"
    try:
        count = _write_file(report, target, _progress(run.pk))
    except Exception as error:
        logger.exception("export %s failed", run.pk)
        ExportRun.objects.filter(pk=run.pk).update(
            state=ExportRun.State.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    ExportRun.objects.filter(pk=run.pk).update(
        state=ExportRun.State.DONE,
        row_count=count,
        rows_done=count,
        file_name=target.name,
        warnings="\n".join(report.warnings),
        finished_at=timezone.now(),
    )
    return f"{count} rows"


def _write_file(report: Report, target: Path, progress) -> int:
    """Write to a temporary name next to the target, then rename: a file is there whole."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(handle)
    try:
        if report.params.format == XLSX:
            count = xlsx_write(report, Path(temporary), progress)
        else:
            with open(temporary, "wb") as out:
                for chunk in csv_chunks(report, progress):
                    out.write(chunk)
            count = report.row_count
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return count


def export_file(run: ExportRun) -> Path | None:
    if run.state != ExportRun.State.DONE or not run.file_name:
        return None
    path = export_dir() / run.file_name
    return path if path.is_file() else None


def export_direct_record(*, report: Report, user) -> ExportRun:
    """A download made at once: recorded (who, when, what); its row count once it is sent."""
    p = report.params
    return ExportRun.objects.create(
        report=report.identifier,
        format=p.format,
        date_from=p.date_from,
        date_to=p.date_to,
        currency=p.currency,
        requested_by=user,
        state=ExportRun.State.RUNNING,
        rows_expected=0,
    )


def export_direct_finish(run: ExportRun, report: Report) -> None:
    ExportRun.objects.filter(pk=run.pk).update(
        state=ExportRun.State.DONE,
        row_count=report.row_count,
        rows_done=report.row_count,
        warnings="\n".join(report.warnings),
        finished_at=timezone.now(),
    )


def csv_download(report: Report, run: ExportRun) -> Iterator[bytes]:
    yield from csv_chunks(report)
    export_direct_finish(run, report)


def xlsx_temporary(report: Report, run: ExportRun):
    """The XLSX in a temporary file (deleted once closed), opened for reading."""
    handle = tempfile.NamedTemporaryFile(suffix=".xlsx", dir=export_dir())  # noqa: SIM115
    xlsx_write(report, Path(handle.name))
    export_direct_finish(run, report)
    handle.seek(0)
    return handle


# --- Monthly exports, mailed --------------------------------------------------------------------


def previous_month(today: datetime.date) -> tuple[datetime.date, datetime.date]:
    last = today.replace(day=1) - datetime.timedelta(days=1)
    return last.replace(day=1), last


def monthly_exports_send(*, today: datetime.date | None = None) -> int:
    """Make last month's exports (settings.FINANCE_EXPORT_REPORTS) and mail them to
    FINANCE_EXPORT_EMAIL. Safe to run twice: each export of a month is made once (its
    schedule_key is unique) and the mail goes once (claimed by a conditional update)."""
    address = settings.FINANCE_EXPORT_EMAIL
    if not address:
        return 0
    today = today or timezone.localdate()
    first, last = previous_month(today)
    runs = []
    for identifier in settings.FINANCE_EXPORT_REPORTS:
        report_class = REPORTS[identifier]
        chosen = settings.FINANCE_EXPORT_FORMAT
        fmt = chosen if chosen in report_class.formats else report_class.formats[0]
        params = ExportParams(first, last, settings.CURRENCY, fmt)
        run, _ = ExportRun.objects.get_or_create(
            schedule_key=f"monthly:{first:%Y-%m}:{identifier}",
            defaults={
                "report": identifier,
                "format": fmt,
                "date_from": first,
                "date_to": last,
                "currency": params.currency,
                "rows_expected": report_class(params).rows_expected(),
            },
        )
        if run.state == ExportRun.State.QUEUED:
            export_run_execute(run.pk)
            run.refresh_from_db()
        runs.append(run)
    mailed = 0
    for run in runs:
        mailed += _mail(run, address)
    return mailed


def _mail(run: ExportRun, address: str) -> int:
    path = export_file(run)
    if path is None:
        return 0
    claimed = ExportRun.objects.filter(pk=run.pk, mailed_at__isnull=True).update(
        mailed_at=timezone.now()
    )
    if not claimed:
        return 0
    name = REPORTS[run.report].name
    message = EmailMessage(
        subject=f"[{settings.SITE_NAME}] {name}, {run.date_from:%B %Y}",
        body=(
            f"{name} for {run.date_from} to {run.date_to} ({run.currency}), {run.row_count} "
            f"rows, is attached.\n" + (f"\nWarnings:\n{run.warnings}\n" if run.warnings else "")
        ),
        to=[address],
    )
    message.attach(path.name.split("_", 1)[1], path.read_bytes(), CONTENT_TYPES[run.format])
    try:
        message.send()
    except Exception:
        ExportRun.objects.filter(pk=run.pk).update(mailed_at=None)  # beat may try again
        raise
    return 1
