"""The server list answers "where is it": customer, status, node, VMID, address, what runs on
it and for how long, the last error; failed, stuck and missing servers are one filter away."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from instances.models import InstanceOperation
from tests.factories import make_operation

LIST = "admin:instances_instance_changelist"


def listed(client, **params) -> list[str]:
    response = client.get(reverse(LIST), params)
    assert response.status_code == 200
    return [server.hostname for server in response.context["cl"].result_list]


def test_a_row_says_who_where_what_runs_and_what_failed(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    make_operation(server, kind="reinstall", state="failed", step="clone", error="storage offline")
    make_operation(server, kind="reboot", state="running", step="reboot")
    client.force_login(support)
    page = client.get(reverse(LIST)).content.decode()
    assert reverse("admin:accounts_user_change", args=[alice.pk]) in page
    assert "alice@example.com" in page and "bo-status-running" in page
    assert "pve-0" in page and str(server.vmid) in page and server.ipv4.address in page
    assert "reboot · reboot (0" in page  # kind, step and how long it has run
    assert "storage offline" in page


def test_an_operation_that_stopped_making_progress_says_so(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    operation = make_operation(server, kind="reboot", state="running", step="reboot")
    long_ago = timezone.now() - timedelta(seconds=settings.OPERATION_STUCK_AFTER + 120)
    InstanceOperation.objects.filter(pk=operation.pk).update(updated_at=long_ago)
    client.force_login(support)
    page = client.get(reverse(LIST)).content.decode()
    assert "stuck: no progress for 1" in page


def test_support_filters_failed_stuck_and_missing_servers(client, support, alice, placed_server):
    fine = placed_server(alice, "fine")
    make_operation(fine, state="succeeded", step="ready")
    placed_server(alice, "broken-build", status="failed")
    failed_reboot = placed_server(alice, "failed-reboot")
    make_operation(failed_reboot, kind="reboot", state="failed", step="reboot", error="timeout")
    stuck = placed_server(alice, "stuck")
    old = make_operation(stuck, kind="reinstall", state="running", step="clone")
    long_ago = timezone.now() - timedelta(seconds=settings.OPERATION_STUCK_AFTER + 5)
    InstanceOperation.objects.filter(pk=old.pk).update(updated_at=long_ago)
    busy = placed_server(alice, "busy")
    make_operation(busy, kind="reboot", state="running", step="reboot")
    missing = placed_server(alice, "missing")
    missing.missing_since = timezone.now()
    missing.save()
    client.force_login(support)
    assert sorted(listed(client, attention="failed")) == ["broken-build", "failed-reboot"]
    assert listed(client, attention="stuck") == ["stuck"]
    assert listed(client, attention="missing") == ["missing"]
    assert len(listed(client)) == 6


def test_a_later_success_leaves_the_server_out_of_the_failed_filter(
    client, support, alice, placed_server
):
    server = placed_server(alice, "recovered")
    make_operation(server, kind="reboot", state="failed", step="reboot", error="timeout")
    make_operation(server, kind="reboot", state="succeeded", step="reboot")
    client.force_login(support)
    assert listed(client, attention="failed") == []


def test_support_finds_a_server_by_vmid_address_or_hostname(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    placed_server(alice, "web1")
    client.force_login(support)
    assert listed(client, q=str(server.vmid)) == ["db1"]
    assert listed(client, q=server.ipv4.address) == ["db1"]
    assert listed(client, q="db1") == ["db1"]


def count_queries(client) -> int:
    client.get(reverse(LIST))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse(LIST)).status_code == 200
    return len(captured)


def test_the_list_runs_as_many_queries_for_1_server_as_for_20(
    client, support, alice, bob, placed_server
):
    client.force_login(support)
    first = placed_server(alice, "s0")
    make_operation(first, kind="reboot", state="running", step="reboot")
    with_one = count_queries(client)
    for n in range(1, 20):
        server = placed_server(bob if n % 2 else alice, f"s{n}")
        make_operation(server, kind="reinstall", state="failed", step="clone", error="x")
        make_operation(server, kind="reboot", state="running", step="reboot")
    assert count_queries(client) == with_one
