"""The Exports page in the admin (Billing → Exports), for staff with the finance permission:
pick a report, a range and a format, and download it; a big range runs on a worker and its
file appears in the list, with progress (htmx polls it; without JavaScript, reload)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django_htmx.http import HttpResponseStopPolling

from billing.exports import REPORTS, services
from billing.exports.base import XLSX, ExportForm
from billing.exports.payouts import payouts_not_reconciling
from billing.models import ExportRun

PERMISSION = "billing.export_finance"


def _finance_only(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _attachment(response, name: str):
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


def exports_page(request, admin_site):
    _finance_only(request)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        report = services.report_for(form.cleaned_data["report"], form.params())
        if services.needs_worker(report):
            run = services.export_run_create(
                report=report.identifier, params=report.params, user=request.user
            )
            messages.info(
                request,
                f"{report.name} reads about {run.rows_expected} ledger rows: a worker makes it; "
                "it appears in the list below when ready.",
            )
            return redirect(reverse("admin:billing_exportrun_changelist"))
        return _download_now(request, report)
    runs = ExportRun.objects.select_related("requested_by")[:50]
    context = {
        **admin_site.each_context(request),
        "title": "Finance exports",
        "form": form,
        "reports": REPORTS.values(),
        "runs": runs,
        "mismatches": payouts_not_reconciling(),
        "opts": ExportRun._meta,
    }
    return TemplateResponse(request, "admin/billing/exports.html", context)


def _download_now(request, report):
    run = services.export_direct_record(report=report, user=request.user)
    if report.params.format == XLSX:
        handle = services.xlsx_temporary(report, run)
        response = FileResponse(handle, content_type=services.CONTENT_TYPES[XLSX])
    else:
        response = StreamingHttpResponse(
            services.csv_download(report, run), content_type=services.CONTENT_TYPES["csv"]
        )
    return _attachment(response, report.file_name())


def export_progress(request, pk: int):
    """The run's row of the list (htmx polls it while the run is queued or running)."""
    _finance_only(request)
    run = get_object_or_404(ExportRun.objects.select_related("requested_by"), pk=pk)
    context = {"run": run}
    response = TemplateResponse(request, "admin/billing/exports.html#run-row", context)
    if run.state in (ExportRun.State.DONE, ExportRun.State.FAILED) and request.htmx:
        response.render()
        return HttpResponseStopPolling(response.content)
    return response


def export_download(request, pk: int):
    _finance_only(request)
    run = get_object_or_404(ExportRun, pk=pk)
    path = services.export_file(run)
    if path is None:
        raise Http404("This export has no file (not ready, made at once, or deleted).")
    response = FileResponse(path.open("rb"), content_type=services.CONTENT_TYPES[run.format])
    return _attachment(response, path.name.split("_", 1)[1])
