"""Rename: the hostname in the portal and the VM's name in PVE."""

from __future__ import annotations

from instances.models import Instance
from instances.operations.base import Context, Kind, Step, Wait

Status = Instance.Status


def rename_vm(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        return ctx.task_outcome("config", "Renaming")
    upid = ctx.pve.set_config(ctx.node, ctx.vmid, name=ctx.params["hostname"])
    return ctx.task_started(upid, "config", "Renaming")


def renamed(ctx: Context) -> None:
    old, new = ctx.instance.hostname, ctx.params["hostname"]
    if old != new:
        Instance.objects.filter(pk=ctx.instance.pk).update(hostname=new)
        ctx.event(f"Renamed from {old} to {new}.")


RENAME = Kind(
    name="rename",
    noun="a rename",
    steps=(Step("rename", "Renaming", rename_vm), Step("renamed", "Done", renamed)),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED}),
    requested="",
    done="",
    failed="The server could not be renamed. Support has been told.",
)
