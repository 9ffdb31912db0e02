"""Scheduled backups: daily per server inside the window, at most BACKUP_MAX_PER_NODE at once
on a node (the others wait their turn), never two for one server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from instances import backups, services
from instances.backups import Window
from instances.models import Instance, InstanceBackup, InstanceOperation, Node
from instances.operations import engine
from instances.operations.backups import WAITING_FOR_SLOT
from tests.instances.operations import CUSTOMER, SPEC, running_server
from tests.instances.world import drive, live_operation

State = InstanceOperation.State
WITH_BACKUPS = dataclasses.replace(SPEC, backups_kept=3)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def _any_time(settings):
    settings.BACKUP_WINDOW = "00:00-00:00"
    settings.BACKUP_MAX_PER_NODE = 1


def servers_on_one_node(owner, location, count: int) -> list[Instance]:
    """Servers all built on pve-a (the other nodes drain meanwhile)."""
    Node.objects.exclude(name="pve-a").update(state=Node.State.DRAINING)
    built = [
        running_server(owner, location, hostname=f"web{n}", spec=WITH_BACKUPS) for n in range(count)
    ]
    Node.objects.update(state=Node.State.ACTIVE)
    assert {server.node.name for server in built} == {"pve-a"}
    return built


def scheduled_backup(server) -> InstanceOperation | None:
    operation = live_operation(server.pk)
    assert operation is None or operation.kind == "backup"
    return operation


def test_two_scheduled_backups_on_one_node_wait_for_each_other(world, demo_location, alice):
    first, second = servers_on_one_node(alice, demo_location, 2)
    assert backups.backups_start_due() == 1
    running = [s for s in (first, second) if scheduled_backup(s)]
    assert len(running) == 1
    waiting = second if running[0] == first else first
    assert backups.backups_start_due() == 0  # the node's slot is taken: the other waits

    assert drive(live_operation(running[0].pk).pk).state == State.SUCCEEDED
    assert backups.backups_start_due() == 1
    assert drive(live_operation(waiting.pk).pk).state == State.SUCCEEDED
    assert backups.backups_start_due() == 0  # both were backed up today
    made = InstanceBackup.objects.filter(state=InstanceBackup.State.READY)
    assert sorted(b.instance_id for b in made) == sorted([first.pk, second.pk])
    assert {b.trigger for b in made} == {InstanceBackup.Trigger.SCHEDULED}


def test_backups_asked_at_once_on_one_node_take_turns(world, demo_location, alice):
    first, second = servers_on_one_node(alice, demo_location, 2)
    one = backups.backup_now(instance=first, actor=CUSTOMER, actor_user=None)
    two = backups.backup_now(instance=second, actor=CUSTOMER, actor_user=None)
    assert engine.advance(two.pk) > 0  # it must wait: the first asked first
    two.refresh_from_db()
    assert (two.step, two.waiting_reason) == ("slot", WAITING_FOR_SLOT)
    assert drive(one.pk).state == State.SUCCEEDED
    assert drive(two.pk).state == State.SUCCEEDED


def test_more_slots_per_node_let_more_run_at_once(world, demo_location, alice, settings):
    settings.BACKUP_MAX_PER_NODE = 2
    servers_on_one_node(alice, demo_location, 3)
    assert backups.backups_start_due() == 2
    assert InstanceOperation.objects.filter(kind="backup", state__in=["queued"]).count() == 2


def test_servers_on_different_nodes_back_up_at_once(world, demo_location, alice):
    first = running_server(alice, demo_location, hostname="web1", spec=WITH_BACKUPS)
    second = running_server(alice, demo_location, hostname="web2", spec=WITH_BACKUPS)
    assert first.node_id != second.node_id  # placement spreads them
    assert backups.backups_start_due() == 2


def test_a_busy_server_is_backed_up_at_a_later_run(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=WITH_BACKUPS)
    reboot = services.instance_power(
        instance=server, action="reboot", actor=CUSTOMER, actor_user=None
    )
    assert backups.backups_start_due() == 0
    assert not InstanceBackup.objects.exists()
    drive(reboot.pk)
    assert backups.backups_start_due() == 1


def test_servers_without_backups_in_their_plan_are_not_scheduled(world, demo_location, alice):
    running_server(alice, demo_location)
    assert backups.backups_start_due() == 0


def test_nothing_starts_outside_the_window(world, demo_location, alice, settings):
    settings.BACKUP_WINDOW = "01:00-06:00"
    running_server(alice, demo_location, spec=WITH_BACKUPS)
    today = datetime.now(BERLIN).date()
    noon = datetime(today.year, today.month, today.day, 12, 0, tzinfo=BERLIN)
    assert backups.backups_start_due(now=noon) == 0
    night = noon.replace(hour=2)
    assert backups.backups_start_due(now=night) == 1


@pytest.mark.parametrize(
    ("window", "at", "opened"),
    [
        ("01:00-06:00", (2, 30), (0, 1, 0)),
        ("01:00-06:00", (6, 0), None),
        ("01:00-06:00", (0, 59), None),
        ("22:00-04:00", (23, 0), (0, 22, 0)),  # (days back, hour, minute)
        ("22:00-04:00", (3, 0), (1, 22, 0)),  # after midnight: it opened yesterday
        ("22:00-04:00", (12, 0), None),
        ("00:00-00:00", (15, 0), (0, 0, 0)),  # any time: once a day
    ],
)
def test_the_window_knows_when_it_opened(window, at, opened):
    start, end = window.split("-")
    win = Window(
        datetime.strptime(start, "%H:%M").time(), datetime.strptime(end, "%H:%M").time(), BERLIN
    )
    now = datetime(2026, 3, 10, *at, tzinfo=BERLIN).astimezone(UTC)
    found = win.opened(now)
    if opened is None:
        assert found is None
    else:
        days, hour, minute = opened
        assert found == datetime(2026, 3, 10 - days, hour, minute, tzinfo=BERLIN)
