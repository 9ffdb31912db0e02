"""The Exports page as finance uses it: a small range downloads at once (CSV streamed, XLSX as
a file), a big one runs on a worker with progress and appears in the list; mismatched payouts
show on the page."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from billing.exports.render import xlsx_rows
from billing.models import ExportRun, LedgerEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PAGE = "admin:billing_exportrun_changelist"


@pytest.fixture
def finance_client(client, db):
    user = UserFactory(email="finance@example.com", is_staff=True, totp=True)
    user.groups.add(Group.objects.get(name="finance"))
    client.force_login(user)
    client.user = user
    return client


def form(seeded, report="invoices", fmt="csv"):
    start, end = seeded["range"]
    return {"report": report, "date_from": start, "date_to": end, "currency": "EUR", "format": fmt}


def test_a_small_range_streams_the_csv_at_once(finance_client, seeded):
    response = finance_client.post(reverse(PAGE), form(seeded))
    assert response.status_code == 200 and response.streaming
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("number,type,corrects number")
    assert len(body.splitlines()) == 1 + 5
    run = ExportRun.objects.get()
    assert (run.state, run.row_count, run.requested_by) == ("done", 5, finance_client.user)
    assert run.file_name == ""
    page = finance_client.get(reverse(PAGE)).content.decode()
    assert "downloaded at once" in page and "finance@example.com" in page


def test_xlsx_comes_as_a_file(finance_client, seeded, tmp_path):
    response = finance_client.post(reverse(PAGE), form(seeded, "payments", "xlsx"))
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    path = tmp_path / "p.xlsx"
    path.write_bytes(b"".join(response.streaming_content))
    rows = xlsx_rows(path)
    assert rows[0][0] == "date" and len(rows) == 1 + 6


def test_a_big_range_runs_on_a_worker_and_appears_in_the_list(
    finance_client, seeded, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_SYNC_MAX_ROWS = 2
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from portal.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = finance_client.post(reverse(PAGE), form(seeded, "payouts", "csv_de"))
        assert response.status_code == 302
        run = ExportRun.objects.get()
        assert run.state == "queued" and run.rows_expected == 6
        progress = reverse("admin:billing_exportrun_progress", args=[run.pk])
        row = finance_client.get(progress, headers={"HX-Request": "true"})
        assert row.status_code == 200 and b'hx-trigger="every 2s"' in row.content
        for callback in callbacks:
            callback()
    finally:
        app.conf.task_always_eager = False
    run.refresh_from_db()
    assert (run.state, run.row_count) == ("done", 7)
    row = finance_client.get(progress, headers={"HX-Request": "true"})
    assert row.status_code == 286 and b"Download" in row.content  # polling stops
    download = finance_client.get(reverse("admin:billing_exportrun_download", args=[run.pk]))
    text = b"".join(download.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[-1].split(";")[-1] == "OK"
    assert "69,44" in text


def test_a_mismatched_payout_is_flagged_on_the_page(finance_client, seeded):
    payout = LedgerEntry.objects.get(kind="payout")
    LedgerEntry.objects.create(
        kind="balance_transaction",
        stripe_object_id="txn_stray",
        occurred_at=payout.occurred_at,
        currency="EUR",
        net_cents=5,
        vat_cents=0,
        gross_cents=5,
        stripe_payout_id=payout.stripe_object_id,
    )
    page = finance_client.get(reverse(PAGE)).content.decode()
    assert "do not reconcile" in page or "does not reconcile" in page
    assert payout.stripe_object_id in page


def test_the_form_says_what_is_wrong(finance_client, seeded):
    data = form(seeded, "datev", "xlsx")
    page = finance_client.post(reverse(PAGE), data).content.decode()
    assert "DATEV bookings comes as" in page
    data = form(seeded) | {"date_from": "2026-05-01", "date_to": "2026-04-01"}
    page = finance_client.post(reverse(PAGE), data).content.decode()
    assert "before its start" in page


def test_the_page_works_without_javascript(finance_client, seeded):
    page = finance_client.get(reverse(PAGE)).content.decode()
    assert '<form method="post"' in page and 'type="submit"' in page
    assert io.StringIO(page)  # a plain form post: no script needed to export
