"""Snapshots: taken, rolled back to and deleted as operations on the demo cluster, within the
plan's number, and gone with the disks."""

from __future__ import annotations

import dataclasses

import pytest

from instances import services, snapshots
from instances.lifecycle import instance_terminate
from instances.models import Instance, InstanceOperation, InstanceSnapshot, OSImage
from instances.state import InstanceError
from sandbox import pve_disks
from tests.instances.operations import CUSTOMER, SPEC, running_server, vm_of
from tests.instances.world import drive

State = InstanceOperation.State
WITH_SNAPSHOTS = dataclasses.replace(SPEC, snapshots_max=2)


@pytest.fixture
def server(world, demo_location, alice) -> Instance:
    return running_server(alice, demo_location, spec=WITH_SNAPSHOTS)


def take(server, label: str = "before-upgrade") -> InstanceSnapshot:
    operation = snapshots.snapshot_take(
        instance=server, label=label, actor=CUSTOMER, actor_user=server.owner
    )
    done = drive(operation.pk)
    assert done.state == State.SUCCEEDED, done.error
    return InstanceSnapshot.objects.get(pk=operation.params["snapshot_id"])


def rollback(server, snapshot) -> InstanceOperation:
    server.refresh_from_db()
    operation = snapshots.snapshot_rollback(
        instance=server, snapshot_id=snapshot.pk, actor=CUSTOMER, actor_user=server.owner
    )
    return drive(operation.pk)


def pve_snapshot_names(world, server) -> list[str]:
    return sorted(vm_of(world, server).snapshots)


def test_a_snapshot_is_taken_on_pve_and_listed(world, server):
    snapshot = take(server)
    assert snapshot.state == InstanceSnapshot.State.READY
    assert pve_snapshot_names(world, server) == [snapshot.name]
    assert vm_of(world, server).snapshots[snapshot.name]["description"] == "before-upgrade"
    assert [s.label for s in snapshots.snapshots_of(server)] == ["before-upgrade"]
    assert server.events.filter(message="Snapshot “before-upgrade” taken.").exists()


def test_a_rollback_undoes_what_was_written_after_the_snapshot(world, server):
    pve_disks.write(world, server.vmid, "the site as it was")
    snapshot = take(server)
    pve_disks.write(world, server.vmid, "a broken update")

    done = rollback(server, snapshot)
    assert done.state == State.SUCCEEDED, done.error
    assert pve_disks.contents(world, server.vmid) == "the site as it was"
    assert vm_of(world, server).status == "running"  # it ran before, so it runs again
    server.refresh_from_db()
    assert server.status == Instance.Status.RUNNING
    assert server.events.filter(message__startswith="Rolled back to the snapshot").exists()
    assert pve_snapshot_names(world, server) == [snapshot.name]  # the snapshot stays


def test_a_stopped_server_stays_stopped_after_a_rollback(world, server):
    snapshot = take(server)
    drive(
        services.instance_power(instance=server, action="stop", actor=CUSTOMER, actor_user=None).pk
    )
    assert rollback(server, snapshot).state == State.SUCCEEDED
    assert vm_of(world, server).status == "stopped"
    server.refresh_from_db()
    assert server.status == Instance.Status.STOPPED


def test_a_rollback_keeps_the_size_and_name_the_server_has_now(world, server):
    snapshot = take(server)
    bigger = dataclasses.replace(WITH_SNAPSHOTS, vcpus=4, memory_mib=8192, disk_gib=80)
    drive(services.instance_resize(instance=server, spec=bigger, label="Upgraded.").pk)
    server.refresh_from_db()
    drive(
        services.instance_rename(
            instance=server, hostname="web-2", actor=CUSTOMER, actor_user=None
        ).pk
    )

    assert rollback(server, snapshot).state == State.SUCCEEDED
    config = vm_of(world, server).config
    assert int(config["memory"]) == 8192
    assert int(config.get("vcpus") or config["cores"]) == 4
    assert "size=80G" in config["scsi0"]
    assert config["name"] == "web-2"


def test_it_refuses_more_snapshots_than_the_plan_includes(world, server):
    take(server, "one")
    take(server, "two")
    with pytest.raises(InstanceError, match="has 2 snapshots, as many as its plan includes"):
        snapshots.snapshot_take(instance=server, label="three", actor=CUSTOMER, actor_user=None)
    assert len(pve_snapshot_names(world, server)) == 2
    assert InstanceSnapshot.objects.filter(instance=server).count() == 2


def test_a_deleted_snapshot_makes_room_for_another(world, server):
    take(server, "one")
    two = take(server, "two")
    operation = snapshots.snapshot_delete(
        instance=server, snapshot_id=two.pk, actor=CUSTOMER, actor_user=None
    )
    assert InstanceSnapshot.objects.get(pk=two.pk).state == InstanceSnapshot.State.DELETING
    assert drive(operation.pk).state == State.SUCCEEDED
    assert two.name not in pve_snapshot_names(world, server)
    assert InstanceSnapshot.objects.get(pk=two.pk).state == InstanceSnapshot.State.DELETED
    take(server, "three")
    assert [s.label for s in snapshots.snapshots_of(server)] == ["three", "one"]


def test_a_plan_without_snapshots_refuses_them(world, demo_location, alice):
    server = running_server(alice, demo_location)
    with pytest.raises(InstanceError, match="Snapshots are not included in NVMe S"):
        snapshots.snapshot_take(instance=server, label="x", actor=CUSTOMER, actor_user=None)


@pytest.mark.parametrize("label", ["", "   ", "x" * 41])
def test_it_refuses_a_snapshot_without_a_proper_name(server, label):
    with pytest.raises(InstanceError, match="Name the snapshot|at most 40 characters"):
        snapshots.snapshot_take(instance=server, label=label, actor=CUSTOMER, actor_user=None)
    assert not InstanceSnapshot.objects.exists()


def test_a_snapshot_while_another_operation_runs_is_refused(world, server):
    reboot = services.instance_power(
        instance=server, action="reboot", actor=CUSTOMER, actor_user=None
    )
    with pytest.raises(services.OperationInProgress, match="A reboot is in progress"):
        snapshots.snapshot_take(instance=server, label="now", actor=CUSTOMER, actor_user=None)
    assert not InstanceSnapshot.objects.exists()  # nothing left half made
    drive(reboot.pk)
    snapshot = take(server, "now")
    rollback_op = snapshots.snapshot_rollback(
        instance=server, snapshot_id=snapshot.pk, actor=CUSTOMER, actor_user=None
    )
    with pytest.raises(services.OperationInProgress, match="A rollback is in progress"):
        snapshots.snapshot_take(instance=server, label="later", actor=CUSTOMER, actor_user=None)
    drive(rollback_op.pk)


def test_another_servers_snapshot_is_not_there(world, server, demo_location, alice):
    snapshot = take(server)
    other = running_server(alice, demo_location, hostname="web2", spec=WITH_SNAPSHOTS)
    with pytest.raises(InstanceError, match="That snapshot is not there"):
        snapshots.snapshot_rollback(
            instance=other, snapshot_id=snapshot.pk, actor=CUSTOMER, actor_user=None
        )


def test_a_snapshot_pve_refuses_is_not_listed(world, server):
    world.snapshot_lock(server.vmid, "backup")  # someone else's backup holds the VM
    operation = snapshots.snapshot_take(
        instance=server, label="locked", actor=CUSTOMER, actor_user=None
    )
    done = drive(operation.pk)
    assert done.state == State.FAILED
    assert "VM is locked (backup)" in done.error
    assert snapshots.snapshots_of(server) == []
    world.unlock(server.vmid)


def test_a_reinstall_and_a_removal_take_the_snapshots_with_the_disks(world, server):
    take(server)
    server.refresh_from_db()
    reinstall = services.instance_reinstall(
        instance=server,
        image=OSImage.objects.get(slug="rocky-9"),
        ssh_key_ids=[],
        generate_password=True,
        confirm_hostname="web1",
        actor=CUSTOMER,
        actor_user=None,
    )
    assert drive(reinstall.pk).state == State.SUCCEEDED
    assert snapshots.snapshots_of(server) == [] and pve_snapshot_names(world, server) == []

    take(server, "after-reinstall")
    server.refresh_from_db()
    assert (
        drive(instance_terminate(instance=server, reason="Cancelled.").pk).state == State.SUCCEEDED
    )
    assert snapshots.snapshots_of(server) == []
    assert world.vm(server.vmid) is None
