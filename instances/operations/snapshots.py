"""Snapshots: taken, rolled back to and deleted on PVE (`snapshot`, `rollback`, `DELETE`).

A snapshot keeps the server's disks (not its RAM) on its host. A rollback stops the VM (PVE
does) and puts its disks and config back as the snapshot kept them; then the server gets its
current size and name again (an upgrade paid for since the snapshot stays), and it is started
if it was running. The steps for that are shared with a restore from a backup (backups.py).
"""

from __future__ import annotations

from django.utils import timezone

from instances.models import Instance, InstanceSnapshot
from instances.operations import build, resize
from instances.operations.base import Context, Kind, Step, StepFailed, Wait
from instances.operations.pending import note_pending

Status = Instance.Status
Snap = InstanceSnapshot.State
OPERABLE = frozenset({Status.RUNNING, Status.STOPPED})


def _snapshot(ctx: Context) -> InstanceSnapshot:
    return InstanceSnapshot.objects.get(pk=ctx.params["snapshot_id"], instance=ctx.instance)


def _on_pve(ctx: Context, name: str) -> bool:
    return any(item["name"] == name for item in ctx.pve.snapshots(ctx.node, ctx.vmid))


def forget_all(ctx: Context) -> None:
    """A step: the VM's snapshots went with its disks (destroyed, or replaced by a restore)."""
    InstanceSnapshot.objects.filter(instance=ctx.instance, state__in=InstanceSnapshot.SHOWN).update(
        state=Snap.DELETED, deleted_at=timezone.now()
    )


# --- Take ------------------------------------------------------------------------------------


def take(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        return ctx.task_outcome("snapshot", "Taking the snapshot")
    snapshot = _snapshot(ctx)
    if _on_pve(ctx, snapshot.name):  # taken already (the task's id was lost)
        return None
    upid = ctx.pve.snapshot_create(
        ctx.node, ctx.vmid, name=snapshot.name, description=snapshot.label
    )
    return ctx.task_started(upid, "snapshot", "Taking the snapshot")


def taken(ctx: Context) -> None:
    snapshot = _snapshot(ctx)
    InstanceSnapshot.objects.filter(pk=snapshot.pk).update(state=Snap.READY)
    ctx.event(f"Snapshot “{snapshot.label}” taken.")


def not_taken(ctx: Context, message: str, detail: str) -> None:
    InstanceSnapshot.objects.filter(pk=ctx.params["snapshot_id"], state=Snap.CREATING).update(
        state=Snap.DELETED, deleted_at=timezone.now()
    )
    ctx.event(message, detail)


# --- Roll back, and what a restore shares with it ------------------------------------------


def roll_back(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        return ctx.task_outcome("rollback", "Rolling back")
    snapshot = _snapshot(ctx)
    if not _on_pve(ctx, snapshot.name):
        raise StepFailed(
            f"Snapshot {snapshot.name} is not on VM {ctx.vmid}.",
            customer=f"The snapshot “{snapshot.label}” is not there any more; nothing changed.",
        )
    upid = ctx.pve.snapshot_rollback(ctx.node, ctx.vmid, snapshot.name)
    return ctx.task_started(upid, "rollback", "Rolling back")


def name_back(ctx: Context) -> Wait | None:
    """The VM's name as the portal has it (the snapshot or backup may have an older one)."""
    if ctx.operation.task_upid:
        return ctx.task_outcome("config", "Restoring the name")
    if ctx.pve.vm_config(ctx.node, ctx.vmid).get("name") == ctx.instance.hostname:
        return None
    upid = ctx.pve.set_config(ctx.node, ctx.vmid, name=ctx.instance.hostname)
    return ctx.task_started(upid, "config", "Restoring the name")


def if_it_was_running(step):
    """A step run only for a server that was running when the operation was asked for."""

    def run(ctx: Context) -> Wait | None:
        return step(ctx) if ctx.params.get("was_running") else None

    return run


# The server as the portal knows it again, after its disks came back from elsewhere: its size
# (vCPUs, RAM, a disk grown since), its name, and running if it was.
AS_BEFORE = (
    Step("size", "Restoring the current size", resize.configure),
    Step("name", "Restoring the current size", name_back),
    Step("resize", "Restoring the current size", build.grow_disk),
    Step("start", "Starting", if_it_was_running(build.start)),
    Step("wait_running", "Starting", if_it_was_running(build.wait_running)),
    Step("pending", "Done", note_pending),
)


def rolled_back(ctx: Context) -> None:
    snapshot = _snapshot(ctx)
    taken_at = timezone.localtime(snapshot.created_at)
    ctx.event(f"Rolled back to the snapshot “{snapshot.label}” of {taken_at:%Y-%m-%d %H:%M}.")


# --- Delete ----------------------------------------------------------------------------------


def delete(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        return ctx.task_outcome("snapshot_delete", "Deleting the snapshot")
    snapshot = _snapshot(ctx)
    if not _on_pve(ctx, snapshot.name):  # gone already
        return None
    upid = ctx.pve.snapshot_delete(ctx.node, ctx.vmid, snapshot.name)
    return ctx.task_started(upid, "snapshot_delete", "Deleting the snapshot")


def deleted(ctx: Context) -> None:
    snapshot = _snapshot(ctx)
    InstanceSnapshot.objects.filter(pk=snapshot.pk).update(
        state=Snap.DELETED, deleted_at=timezone.now()
    )
    ctx.event(f"Snapshot “{snapshot.label}” deleted.")


def not_deleted(ctx: Context, message: str, detail: str) -> None:
    InstanceSnapshot.objects.filter(pk=ctx.params["snapshot_id"], state=Snap.DELETING).update(
        state=Snap.READY
    )
    ctx.event(message, detail)


def told(ctx: Context, message: str, detail: str) -> None:
    ctx.event(message, detail)


SNAPSHOT = Kind(
    name="snapshot",
    noun="a snapshot",
    steps=(Step("take", "Taking the snapshot", take), Step("taken", "Done", taken)),
    allowed_from=OPERABLE,
    requested="",
    done="",
    failed="The snapshot could not be taken. Support has been told.",
    on_failure=not_taken,
)
ROLLBACK = Kind(
    name="rollback",
    noun="a rollback",
    steps=(
        Step("rollback", "Rolling back", roll_back),
        *AS_BEFORE,
        Step("rolled_back", "Done", rolled_back),
    ),
    allowed_from=OPERABLE,
    requested="",
    done="",
    failed="The rollback did not complete. Support has been told and will finish it.",
    on_failure=told,
)
SNAPSHOT_DELETE = Kind(
    name="snapshot_delete",
    noun="a snapshot deletion",
    steps=(Step("delete", "Deleting the snapshot", delete), Step("deleted", "Done", deleted)),
    allowed_from=OPERABLE,
    requested="",
    done="",
    failed="The snapshot could not be deleted. Support has been told.",
    on_failure=not_deleted,
)
