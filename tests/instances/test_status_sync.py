"""The portal follows PVE: power state, node and traffic from one /cluster/resources per cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from instances import services, sync
from instances.models import Instance, InstanceTraffic, Node
from sandbox import pve_guests
from tests.instances.operations import CUSTOMER, running_server, vm_of


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def test_a_server_powered_off_inside_the_guest_shows_as_stopped(world, server):
    pve_guests.power_off_from_inside(world, server.vmid)
    report = sync.cluster_sync(server.cluster)
    assert report.changed == ["web1"]
    server.refresh_from_db()
    assert server.status == Instance.Status.STOPPED
    assert server.events.filter(message__contains="stopped from inside").exists()


def test_a_server_started_on_the_host_shows_as_running(world, server, alice):
    from tests.instances.world import drive

    drive(
        services.instance_power(instance=server, action="stop", actor=CUSTOMER, actor_user=alice).pk
    )
    vm = vm_of(world, server)
    vm.status = vm.qmpstatus = "running"
    sync.cluster_sync(server.cluster)
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.RUNNING


def test_a_server_with_an_operation_running_is_left_to_it(world, server, alice):
    services.instance_power(instance=server, action="shutdown", actor=CUSTOMER, actor_user=alice)
    pve_guests.power_off_from_inside(world, server.vmid)
    assert sync.cluster_sync(server.cluster).changed == []
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.RUNNING


def test_a_vm_missing_from_pve_is_flagged_for_staff_once(world, server):
    world.vms = [vm for vm in world.vms if vm.vmid != server.vmid]
    assert sync.cluster_sync(server.cluster).missing == ["web1"]
    assert sync.cluster_sync(server.cluster).missing == [], "flagged once"
    server.refresh_from_db()
    assert server.missing_since is not None
    assert server.status == Instance.Status.RUNNING, "its status is not guessed"
    assert server.events.filter(message__contains="cannot see this server").count() == 1


def test_a_vm_moved_to_another_node_is_followed(world, server):
    other = Node.objects.exclude(pk=server.node_id).filter(cluster=server.cluster).first()
    vm_of(world, server).node = other.name
    sync.cluster_sync(server.cluster)
    assert Instance.objects.get(pk=server.pk).node == other


def test_traffic_adds_up_the_counters_across_a_restart(world, server):
    vm = vm_of(world, server)
    vm.stats.update(netin=1_000, netout=5_000, uptime=100)
    sync.cluster_sync(server.cluster)
    vm.stats.update(netin=4_000, netout=9_000, uptime=160)
    sync.cluster_sync(server.cluster)
    vm.stats.update(netin=500, netout=700, uptime=20)  # restarted: counters begin again
    sync.cluster_sync(server.cluster)
    row = InstanceTraffic.objects.get(instance=server)
    assert (row.bytes_in, row.bytes_out) == (4_000 + 500, 9_000 + 700)
    assert row.period_start <= timezone.now() < row.period_end


@pytest.mark.parametrize(
    ("created", "now", "start", "end"),
    [
        ("2026-01-15", "2026-03-20", "2026-03-15", "2026-04-15"),
        ("2026-01-15", "2026-03-10", "2026-02-15", "2026-03-15"),
        ("2026-01-31", "2026-02-28", "2026-02-28", "2026-03-31"),
        ("2025-12-20", "2026-01-05", "2025-12-20", "2026-01-20"),
    ],
)
def test_the_traffic_month_starts_on_the_servers_creation_day(created, now, start, end):
    def at(day: str) -> datetime:
        return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)

    instance = Instance(created_at=at(created))
    assert sync.traffic_period(instance, at(now) + timedelta(hours=1)) == (at(start), at(end))
