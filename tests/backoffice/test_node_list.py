"""The node list: what each node's servers take of its CPU, RAM and storage (placement's own
arithmetic, overcommit included), how many servers it has, its state and its drain."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instances.models import Node
from tests.factories import make_location_with_capacity, make_operation

LIST = "admin:instances_node_changelist"


def row_of(client, node) -> str:
    page = client.get(reverse(LIST)).content.decode()
    start = page.index(reverse("admin:instances_node_change", args=[node.pk]))
    return page[start : page.index("</tr>", start)]


def test_a_node_shows_its_cpu_ram_and_storage_used_against_what_it_has(
    client, support, alice, placed_server, location
):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    placed_server(alice, "a")
    placed_server(alice, "b")
    placed_server(
        alice, "vds", family="vds", dedicated_cores=True, vcpus=4, memory_mib=16384, disk_gib=240
    )
    client.force_login(support)
    row = row_of(client, node)
    # CPU in physical cores: 4 dedicated + 4 shared vCPUs at 4:1 = 5 of 16; 12 free cores
    # take 48 shared vCPUs.
    assert "5.0 of 16 cores" in row and "4 of 48 vCPU shared (4:1), 4 dedicated" in row
    assert "24.0 of 64 GiB" in row and "8 of 48 GiB shared (1:1), 16 dedicated" in row
    assert "nvme 400 of 2,000 GiB" in row and "bulk 0 of 8,000 GiB" in row
    assert '<td class="field-servers">3</td>' in row
    assert "bo-status-active" in row


def test_a_server_being_moved_counts_on_both_nodes(client, support, alice, placed_server, location):
    source, target = Node.objects.filter(cluster__location=location).order_by("pk")
    server = placed_server(alice, "moving", node=target)
    server.moving_from = source
    server.save()
    client.force_login(support)
    assert "nvme 80 of 2,000 GiB" in row_of(client, source)
    assert "nvme 80 of 2,000 GiB" in row_of(client, target)


def test_a_draining_node_says_how_far_its_drain_got(
    client, support, alice, placed_server, location
):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    moving = placed_server(alice, "moving")
    make_operation(moving, kind="migrate", state="running", step="migrate")
    placed_server(alice, "waiting")
    Node.objects.filter(pk=node.pk).update(
        state="draining", drain_paused=True, drain_problems={"9": "no room"}
    )
    client.force_login(support)
    row = row_of(client, node)
    assert "bo-status-draining" in row
    assert "2 server(s) left, moving moving (paused); 1 could not move" in row


def test_support_drains_a_node_and_the_log_says_before_and_after(
    client, support, location, django_capture_on_commit_callbacks
):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    client.force_login(support)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse(LIST), {"action": "drain", "_selected_action": [node.pk]})
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.state == Node.State.DRAINING
    entry = LogEntry.objects.get(user=support, object_id=str(node.pk))
    assert "Drain: take no new servers" in entry.change_message
    assert "Before: state active, drain paused no." in entry.change_message
    assert "After: state draining, drain paused no." in entry.change_message


def test_support_sees_a_nodes_hardware_but_cannot_change_it(client, support, location):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    client.force_login(support)
    url = reverse("admin:instances_node_change", args=[node.pk])
    page = client.get(url).content.decode()
    assert 'name="cores"' not in page and 'name="_save"' not in page
    client.post(url, {"cores": 999, "cpu_overcommit": "40"})
    node.refresh_from_db()
    assert node.cores == 16


def test_finance_cannot_drain_a_node(client, finance, location):
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()
    client.force_login(finance)
    response = client.post(reverse(LIST), {"action": "drain", "_selected_action": [node.pk]})
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.state == Node.State.ACTIVE


def count_queries(client) -> int:
    client.get(reverse(LIST))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse(LIST)).status_code == 200
    return len(captured)


def test_the_list_runs_as_many_queries_for_1_node_as_for_20(client, support, alice, db):
    client.force_login(support)
    make_location_with_capacity(code="one", nodes=1, addresses=0)
    with_one = count_queries(client)
    for n in range(19):
        make_location_with_capacity(code=f"more-{n}", nodes=1, addresses=0)
    Node.objects.filter(cluster__location__code="more-3").update(state="draining")
    assert count_queries(client) == with_one
