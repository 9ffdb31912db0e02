"""The documented PVE role (instances/proxmox.py PRIVILEGES) covers snapshots and backups, and
each privilege they add is needed: without it PVE refuses and the portal says so."""

from __future__ import annotations

import dataclasses

from instances import backups, snapshots
from instances.lifecycle import instance_terminate
from instances.models import InstanceBackup, InstanceOperation, InstanceSnapshot
from instances.proxmox import PRIVILEGES
from tests.instances.operations import CUSTOMER, SPEC, running_server
from tests.instances.test_pve_role import use_token_with
from tests.instances.world import drive

State = InstanceOperation.State
WITH_BOTH = dataclasses.replace(SPEC, snapshots_max=1, backups_kept=1)


def without(*dropped: str) -> list[str]:
    return [priv for priv in PRIVILEGES if priv not in dropped]


def test_exactly_the_documented_role_runs_snapshots_backups_and_restores(
    world, demo_location, alice
):
    use_token_with(world, PRIVILEGES)
    server = running_server(alice, demo_location, spec=WITH_BOTH)

    def run(call, **kwargs):
        server.refresh_from_db()
        done = drive(call(instance=server, actor=CUSTOMER, actor_user=alice, **kwargs).pk)
        assert done.state == State.SUCCEEDED, (done.kind, done.error)
        return done

    snapshot_id = run(snapshots.snapshot_take, label="s").params["snapshot_id"]
    run(snapshots.snapshot_rollback, snapshot_id=snapshot_id)
    run(snapshots.snapshot_delete, snapshot_id=snapshot_id)
    first = run(backups.backup_now).params["backup_id"]
    run(backups.backup_now)  # the first one is deleted: the plan keeps one
    assert InstanceBackup.objects.get(pk=first).state == InstanceBackup.State.DELETED
    run(backups.backup_restore, backup_id=InstanceBackup.objects.get(state="ready").pk)
    server.refresh_from_db()
    done = drive(instance_terminate(instance=server, reason="Cancelled.").pk)
    assert done.state == State.SUCCEEDED, done.error


def test_without_vm_backup_a_backup_fails_with_pves_refusal(world, demo_location, alice):
    use_token_with(world, without("VM.Backup"))
    server = running_server(alice, demo_location, spec=WITH_BOTH)
    done = drive(backups.backup_now(instance=server, actor=CUSTOMER, actor_user=alice).pk)
    assert done.state == State.FAILED
    assert "Permission check failed" in done.error and "VM.Backup" in done.error
    assert InstanceBackup.objects.get().state == InstanceBackup.State.FAILED


def test_without_vm_snapshot_a_snapshot_fails_with_pves_refusal(world, demo_location, alice):
    use_token_with(world, without("VM.Snapshot"))
    server = running_server(alice, demo_location, spec=WITH_BOTH)
    operation = snapshots.snapshot_take(
        instance=server, label="s", actor=CUSTOMER, actor_user=alice
    )
    done = drive(operation.pk)
    assert done.state == State.FAILED
    assert "Permission check failed" in done.error and "VM.Snapshot" in done.error
    assert not InstanceSnapshot.objects.exclude(state="deleted").exists()
