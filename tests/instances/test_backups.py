"""Backups: "back up now" and restore as operations on the demo cluster, the plan's retention,
and the backups gone with the server."""

from __future__ import annotations

import dataclasses

import pytest

from instances import backups, snapshots
from instances.lifecycle import instance_terminate
from instances.models import Cluster, Instance, InstanceBackup, InstanceOperation, OSImage
from instances.services import instance_reinstall
from instances.state import InstanceError
from sandbox import pve_disks
from tests.instances.operations import CUSTOMER, SPEC, running_server, vm_of
from tests.instances.world import drive

State = InstanceOperation.State
Backup = InstanceBackup.State
WITH_BACKUPS = dataclasses.replace(SPEC, backups_kept=2, snapshots_max=1)


@pytest.fixture
def server(world, demo_location, alice) -> Instance:
    return running_server(alice, demo_location, spec=WITH_BACKUPS)


def back_up(server) -> InstanceBackup:
    operation = backups.backup_now(instance=server, actor=CUSTOMER, actor_user=server.owner)
    done = drive(operation.pk)
    assert done.state == State.SUCCEEDED, done.error
    return InstanceBackup.objects.get(pk=operation.params["backup_id"])


def restore(server, backup) -> InstanceOperation:
    server.refresh_from_db()
    operation = backups.backup_restore(
        instance=server, backup_id=backup.pk, actor=CUSTOMER, actor_user=server.owner
    )
    return drive(operation.pk)


def archives(world, server) -> list[str]:
    volumes = world.storages["local"]["volumes"]
    return sorted(
        name
        for name, volume in volumes.items()
        if volume.get("content") == "backup" and volume.get("vmid") == server.vmid
    )


def test_back_up_now_lists_the_archive_with_its_size(world, server):
    pve_disks.write(world, server.vmid, "data", grow=1024**3)
    backup = back_up(server)
    assert backup.state == Backup.READY
    assert backup.volid.startswith(f"local:backup/vzdump-qemu-{server.vmid}-")
    assert backup.volid.endswith(".vma.zst")
    volume = world.storages["local"]["volumes"][backup.volid.split(":", 1)[1]]
    assert backup.size_bytes == volume["size"] > 0
    assert volume["notes"] == f"portal-backup={backup.pk} web1"
    assert (backup.storage, backup.node) == ("local", server.node.name)
    assert backup.trigger == InstanceBackup.Trigger.MANUAL
    assert [b.pk for b in backups.backups_of(server)] == [backup.pk]
    assert vm_of(world, server).status == "running"  # snapshot mode: it ran throughout
    assert "lock" not in vm_of(world, server).config
    assert server.events.filter(message__startswith="Backup made (").exists()


def test_a_restore_brings_the_server_back_as_it_was_backed_up(world, server):
    pve_disks.write(world, server.vmid, "before the accident")
    backup = back_up(server)
    pve_disks.write(world, server.vmid, "rm -rf happened")
    snapshot_op = snapshots.snapshot_take(
        instance=server, label="after", actor=CUSTOMER, actor_user=None
    )
    drive(snapshot_op.pk)

    done = restore(server, backup)
    assert done.state == State.SUCCEEDED, done.error
    assert pve_disks.contents(world, server.vmid) == "before the accident"
    vm = vm_of(world, server)
    assert vm.status == "running" and vm.snapshots == {}
    assert snapshots.snapshots_of(server) == []  # gone with the disks they were of
    server.refresh_from_db()
    assert server.status == Instance.Status.RUNNING
    assert server.events.filter(message__startswith="Restored from the backup of").exists()
    assert InstanceBackup.objects.get(pk=backup.pk).state == Backup.READY  # still there


def test_a_restore_keeps_the_size_and_brings_back_the_system_backed_up(world, server):
    backup = back_up(server)  # Debian 12
    server.refresh_from_db()
    reinstall = instance_reinstall(
        instance=server,
        image=OSImage.objects.get(slug="rocky-9"),
        ssh_key_ids=[],
        generate_password=True,
        confirm_hostname="web1",
        actor=CUSTOMER,
        actor_user=None,
    )
    drive(reinstall.pk)
    assert restore(server, backup).state == State.SUCCEEDED
    server.refresh_from_db()
    assert server.os_image.slug == "debian-12"
    config = vm_of(world, server).config
    assert "size=40G" in config["scsi0"] and config["name"] == "web1"


def test_retention_deletes_the_oldest(world, server):
    first, second = back_up(server), back_up(server)
    third = back_up(server)
    assert [b.pk for b in backups.backups_of(server)] == [third.pk, second.pk]
    assert InstanceBackup.objects.get(pk=first.pk).state == Backup.DELETED
    assert archives(world, server) == sorted(b.volid.split(":", 1)[1] for b in (second, third))


def test_a_deletion_pve_refuses_is_left_for_the_next_backup(world, server):
    first = back_up(server)
    back_up(server)
    world.fail("DELETE", f"/content/{first.volid}", 500, "storage 'local' is not online")
    third = back_up(server)
    assert third.state == Backup.READY
    assert InstanceBackup.objects.get(pk=first.pk).state == Backup.READY  # not deleted yet
    assert server.events.filter(message__startswith="An older backup could not be").exists()
    world.failures.clear()
    back_up(server)
    assert len(backups.backups_of(server)) == 2


def test_a_removed_server_takes_its_backups_with_it(world, server):
    back_up(server)
    back_up(server)
    server.refresh_from_db()
    done = drive(instance_terminate(instance=server, reason="Cancelled.").pk)
    assert done.state == State.SUCCEEDED, done.error
    assert archives(world, server) == []
    assert backups.backups_of(server) == []


def test_a_plan_without_backups_refuses_back_up_now(world, demo_location, alice):
    server = running_server(alice, demo_location)
    with pytest.raises(InstanceError, match="Backups are not included in NVMe S"):
        backups.backup_now(instance=server, actor=CUSTOMER, actor_user=None)
    assert not InstanceBackup.objects.exists()


def test_a_cluster_without_backup_storage_refuses_back_up_now(world, server):
    Cluster.objects.update(backup_storage="")
    with pytest.raises(InstanceError, match="Backups are not offered in Frankfurt"):
        backups.backup_now(instance=server, actor=CUSTOMER, actor_user=None)


def test_a_backup_storage_without_content_backup_fails_the_backup(world, server):
    Cluster.objects.update(backup_storage="nvme")
    operation = backups.backup_now(instance=server, actor=CUSTOMER, actor_user=None)
    done = drive(operation.pk)
    assert done.state == State.FAILED
    assert "can't use storage 'nvme' for backups - wrong content type" in done.error
    backup = InstanceBackup.objects.get(pk=operation.params["backup_id"])
    assert backup.state == Backup.FAILED and "wrong content type" in backup.error


def test_a_backup_while_another_operation_runs_is_refused(world, server):
    backups.backup_now(instance=server, actor=CUSTOMER, actor_user=None)
    with pytest.raises(InstanceError, match="A backup is in progress"):
        snapshots.snapshot_take(instance=server, label="x", actor=CUSTOMER, actor_user=None)
    with pytest.raises(InstanceError, match="A backup is in progress"):
        backups.backup_now(instance=server, actor=CUSTOMER, actor_user=None)
    assert InstanceBackup.objects.count() == 1
