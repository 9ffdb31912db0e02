"""Backups: a vzdump archive of the server on its cluster's backup storage, the retention of
its plan, and restoring the server from an archive.

A backup waits for a slot on its node first (BACKUP_MAX_PER_NODE at once; vzdump itself runs
one job per node at a time), then vzdump runs in snapshot mode (the server keeps running,
PVE locks it `backup` meanwhile) with zstd, its notes naming the backup so the archive is
found again; the portal prunes the oldest archives itself. A restore stops the server, lets
PVE replace its disks and config by the archive's (its snapshots go too), then gives it back
its current size and name and starts it if it was running.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from instances.models import Instance, InstanceBackup, InstanceOperation, Node
from instances.operations.base import Context, Kind, Step, StepFailed, Wait
from instances.operations.power import stop
from instances.operations.snapshots import AS_BEFORE, OPERABLE, forget_all, told

Status = Instance.Status
State = InstanceBackup.State
WAITING_FOR_SLOT = "Waiting for another backup on its host to finish"


def _backup(ctx: Context) -> InstanceBackup:
    return InstanceBackup.objects.get(pk=ctx.params["backup_id"], instance=ctx.instance)


def _update(backup: InstanceBackup, **fields) -> None:
    InstanceBackup.objects.filter(pk=backup.pk).update(**fields)
    for name, value in fields.items():
        setattr(backup, name, value)


def _archive(ctx: Context, backup: InstanceBackup, storage: str) -> dict | None:
    """The archive vzdump wrote for this backup (its notes carry the marker), or None."""
    mark = re.compile(rf"{re.escape(backup.marker)}(?!\d)")
    found = [
        item
        for item in ctx.pve.backups(ctx.node, storage, ctx.vmid)
        if mark.match(str(item.get("notes") or ""))
    ]
    return max(found, key=lambda item: item["ctime"], default=None)


# --- Back up -------------------------------------------------------------------------------


def slot(ctx: Context) -> Wait | None:
    """At most BACKUP_MAX_PER_NODE backups at once on one node, first come first served:
    vzdump runs one job per node at a time, so more would only wait inside PVE."""
    if ctx.params.get("slot"):
        return None
    me = (ctx.operation.created_at, ctx.operation.pk)
    with transaction.atomic():
        Node.objects.select_for_update().get(pk=ctx.instance.node_id)  # one claim at a time
        others = InstanceOperation.objects.filter(
            kind=InstanceOperation.Kind.BACKUP,
            state__in=InstanceOperation.LIVE,
            instance__node_id=ctx.instance.node_id,
        ).exclude(pk=ctx.operation.pk)
        taken = ahead = 0
        for pk, created_at, params in others.values_list("pk", "created_at", "params"):
            if params.get("slot"):
                taken += 1
            elif (created_at, pk) < me:
                ahead += 1
        if taken + ahead >= settings.BACKUP_MAX_PER_NODE:
            return Wait(settings.BACKUP_SLOT_RETRY, WAITING_FOR_SLOT)
        ctx.save(params={**ctx.params, "slot": True})
    return None


def dump(ctx: Context) -> Wait | None:
    """Start vzdump, unless its archive is there already or our vzdump still runs (the
    task's id was lost: PVE's `backup` lock on the VM says so)."""
    if ctx.operation.task_upid:
        return None
    backup = _backup(ctx)
    storage = ctx.instance.cluster.backup_storage
    if not storage:
        raise StepFailed(f"Cluster {ctx.instance.cluster} has no backup storage set.")
    if backup.state == State.RUNNING:  # asked PVE before; did it start?
        if _archive(ctx, backup, storage) is not None:
            return None
        if ctx.pve.vm_status(ctx.node, ctx.vmid).get("lock") == "backup":
            return ctx.wait(_wait_key(ctx), "Backing up")
    _update(backup, state=State.RUNNING, storage=storage, node=ctx.node)
    upid = ctx.pve.backup(
        ctx.node, ctx.vmid, storage=storage, notes=f"{backup.marker} {{{{guestname}}}}"
    )
    if upid is None:
        raise StepFailed(f"PVE did not back up VM {ctx.vmid}: it is not on {ctx.node}.")
    ctx.save(task_upid=upid, looked_at=None)
    return None


def _wait_key(ctx: Context) -> str:
    return f"backup:{ctx.instance.storage_class}:{ctx.instance.disk_gib}"


def wait_dump(ctx: Context) -> Wait | None:
    upid = ctx.operation.task_upid
    if not upid:
        return None  # the next step looks for the archive
    status = ctx.pve.task_status(upid)
    if status.running:
        return ctx.wait(_wait_key(ctx), "Backing up")
    ctx.waited(_wait_key(ctx))
    ctx.save(task_upid="")
    if not status.ok:
        # vzdump ends with "job errors"; what went wrong is in its log.
        errors = [line for line in ctx.pve.task_log(upid, limit=500) if "ERROR" in line]
        raise StepFailed(f"vzdump: {status.exitstatus}. {' '.join(errors)}".strip())
    return None


def record(ctx: Context) -> None:
    backup = _backup(ctx)
    found = _archive(ctx, backup, backup.storage)
    if found is None:
        raise StepFailed(f"vzdump ended, but no archive of {backup.marker} is on {backup.storage}.")
    _update(
        backup,
        state=State.READY,
        volid=found["volid"],
        size_bytes=int(found["size"]),
        finished_at=timezone.now(),
    )
    ctx.event(f"Backup made ({filesizeformat(backup.size_bytes)}).")


def delete_archives(ctx: Context, *, keep: int, tolerant: bool) -> Wait | None:
    """Delete the server's archives but the newest `keep`, oldest first, one at a time.

    `tolerant`: a deletion PVE refuses is left for the next backup's retention (the backup
    itself is made); otherwise it is retried, then the operation fails (a removal).
    """
    backups = InstanceBackup.objects.filter(instance=ctx.instance)
    deleting = backups.filter(state=State.DELETING)
    if ctx.operation.task_upid:
        try:
            waiting = ctx.task_outcome("backup_delete", "Deleting old backups")
        except Exception as exc:
            if not tolerant:
                raise
            return _left_for_later(ctx, deleting, exc)
        if waiting is not None:
            return waiting
        deleting.update(state=State.DELETED, deleted_at=timezone.now())
    while True:
        kept = backups.filter(state__in=(State.READY, State.DELETING))
        excess = list(kept.order_by("-created_at", "-id")[keep : keep + 1])
        if not excess:
            return None
        backup = excess[0]
        _update(backup, state=State.DELETING)
        try:
            upid = ctx.pve.volume_delete(backup.node or ctx.node, backup.storage, backup.volid)
            waiting = ctx.task_started(upid, "backup_delete", "Deleting old backups")
        except Exception as exc:
            if not tolerant:
                raise
            return _left_for_later(ctx, deleting, exc)
        if waiting is not None:
            return waiting
        _update(backup, state=State.DELETED, deleted_at=timezone.now())


def _left_for_later(ctx: Context, deleting, exc: Exception) -> None:
    deleting.update(state=State.READY)
    ctx.save(task_upid="")
    ctx.event("An older backup could not be deleted yet; the next backup tries again.", str(exc))
    return None


def retention(ctx: Context) -> Wait | None:
    """The plan's retention: the newest `backups_kept` archives stay."""
    return delete_archives(ctx, keep=ctx.instance.backups_kept, tolerant=True)


def delete_all(ctx: Context) -> Wait | None:
    """A step of the removal: every archive of the server goes."""
    return delete_archives(ctx, keep=0, tolerant=False)


def not_backed_up(ctx: Context, message: str, detail: str) -> None:
    InstanceBackup.objects.filter(
        pk=ctx.params["backup_id"], state__in=(State.QUEUED, State.RUNNING)
    ).update(state=State.FAILED, error=detail, finished_at=timezone.now())
    ctx.event(message, detail)


# --- Restore -------------------------------------------------------------------------------


def start_restore(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        return None
    backup = _backup(ctx)
    ctx.save(task_upid=ctx.pve.restore(ctx.node, ctx.vmid, archive=backup.volid), looked_at=None)
    return None


def wait_restore(ctx: Context) -> Wait | None:
    upid = ctx.operation.task_upid
    what = f"restore:{ctx.instance.storage_class}:{ctx.instance.disk_gib}"
    if not upid:
        # The task's id was lost: PVE's `create` lock is on the VM while it restores.
        if ctx.pve.vm_status(ctx.node, ctx.vmid).get("lock") == "create":
            return ctx.wait(what, "Restoring the disks")
        ctx.rewind()
        raise StepFailed("The restore's task was lost; look at the VM before retrying.")
    status = ctx.pve.task_status(upid)
    if status.running:
        return ctx.wait(what, "Restoring the disks")
    ctx.waited(what)
    ctx.save(task_upid="")
    if not status.ok:
        ctx.rewind()
        raise status.error()
    return None


def restored(ctx: Context) -> None:
    """The snapshots went with the old disks; the server runs the system it was backed up
    with."""
    backup = _backup(ctx)
    forget_all(ctx)
    if backup.os_image_id and backup.os_image_id != ctx.instance.os_image_id:
        Instance.objects.filter(pk=ctx.instance.pk).update(os_image=backup.os_image_id)
    made = timezone.localtime(backup.created_at)
    ctx.event(f"Restored from the backup of {made:%Y-%m-%d %H:%M}.")


BACKUP = Kind(
    name="backup",
    noun="a backup",
    steps=(
        Step("slot", "Waiting for a backup slot", slot, deadline=False),
        Step("dump", "Backing up", dump),
        # As long as the disks take to read; PVE's task ends by itself.
        Step("wait_dump", "Backing up", wait_dump, deadline=False),
        Step("record", "Backing up", record),
        Step("retention", "Deleting old backups", retention),
    ),
    allowed_from=OPERABLE,
    requested="",
    done="",
    failed="The backup could not be made. Support has been told.",
    on_failure=not_backed_up,
)
RESTORE = Kind(
    name="restore",
    noun="a restore",
    steps=(
        Step("stop", "Stopping", stop),
        Step("restore", "Restoring the disks", start_restore),
        Step("wait_restore", "Restoring the disks", wait_restore, deadline=False),
        *AS_BEFORE,
        Step("restored", "Done", restored),
    ),
    allowed_from=OPERABLE,
    requested="",
    done="",
    failed="The restore did not complete. Support has been told and will finish it.",
    on_failure=told,
)
