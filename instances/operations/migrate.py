"""Moving a server to another node of its cluster without stopping it (PVE live migration).

Staff (or a node's drain) ask for it; a resize that finds no room on the server's node moves it
first with the same steps. The server occupies capacity on both nodes while it moves
(placement.reserve_move); local disks travel with it (`with-local-disks`), each onto the
target's pool of the server's storage class (`targetstorage`). Addresses, VMID and everything
the customer sees stay the same.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

from instances import placement
from instances.models import Instance, Node
from instances.operations.base import Context, Kind, Step, StepFailed, TryAgain, Wait

Status = Instance.Status
MOVABLE = frozenset({Status.RUNNING, Status.STOPPED, Status.SUSPENDED})


def reserve_target(ctx: Context) -> None:
    """Room on the target node: the one staff chose, or the least loaded other active node."""
    if ctx.params.get("source_id"):
        return None  # reserved already (this step ran before)
    source = ctx.instance.node
    try:
        instance = placement.reserve_move(
            ctx.instance.pk, target_id=ctx.params.get("target_id"), away=True
        )
    except placement.NoCapacity as exc:
        raise StepFailed(str(exc), customer="") from exc
    ctx.save(params={**ctx.params, "source_id": source.pk})
    ctx.instance.node, ctx.instance.moving_from = instance.node, instance.moving_from
    return None


def _storage_map(ctx: Context, config: dict) -> str | None:
    """`targetstorage` for the VM's disks: each storage onto the target node's pool of the
    server's storage class (None when every disk keeps its storage's name)."""
    instance = ctx.instance
    pool = (
        instance.node.storages.filter(pool__storage_class=instance.storage_class)
        .values_list("pool__name", flat=True)
        .first()
    )
    if pool is None:
        raise StepFailed(f"{instance.node} has no {instance.storage_class} storage.")
    sources = set()
    for key, value in config.items():
        if key[:4] in ("scsi", "virt", "sata") or key.startswith("ide"):
            storage = str(value).split(",")[0].partition(":")
            if storage[1]:
                sources.add(storage[0])
    pairs = [f"{source}:{pool}" for source in sorted(sources) if source != pool]
    return ",".join(pairs) or None


def start_migration(ctx: Context) -> Wait | None:
    instance = ctx.instance
    if instance.moving_from_id is None or ctx.operation.task_upid:
        return None  # nothing to move, or the move is under way
    source, target = instance.moving_from.name, instance.node.name
    found = ctx.pve.find_vm(ctx.vmid)
    if found is not None and (found["node"] == target or found.get("lock") == "migrate"):
        return None  # an earlier request went through (its reply was lost): see the next step
    upid = ctx.pve.migrate(
        source,
        ctx.vmid,
        target=target,
        online=True,
        with_local_disks=True,
        targetstorage=_storage_map(ctx, ctx.pve.vm_config(source, ctx.vmid)),
    )
    ctx.save(task_upid=upid, looked_at=None)
    return None


def wait_migration(ctx: Context) -> Wait | None:
    instance = ctx.instance
    if instance.moving_from_id is None:
        return None
    what = f"migrate:{instance.storage_class}"
    if ctx.operation.task_upid:
        status = ctx.pve.task_status(ctx.operation.task_upid)
        if status.running:
            return ctx.wait(what, "Moving to another host")
        ctx.waited(what)
        ctx.save(task_upid="")
        if not status.ok:
            ctx.goto("migrate")  # a passing problem migrates again; a lasting one fails
            raise status.error()
    found = ctx.pve.find_vm(ctx.vmid)
    if found is None:
        raise TryAgain(f"VM {ctx.vmid} is not visible on {instance.cluster} right now")
    if found.get("lock") == "migrate":
        return ctx.wait(what, "Moving to another host")
    if found["node"] == instance.moving_from.name:
        ctx.goto("migrate")
        raise TryAgain(f"VM {ctx.vmid} is still on {found['node']}")
    node = Node.objects.filter(cluster=instance.cluster_id, name=found["node"]).first()
    if node is None:
        raise StepFailed(f"VM {ctx.vmid} is on {found['node']}, a node the portal does not know.")
    placement.move_finished(instance.pk, node=node)
    ctx.event(
        "Moved to another host (no downtime).",
        detail=f"Live-migrated from {instance.moving_from.name} to {node.name}.",
    )
    ctx.instance.node, ctx.instance.moving_from = node, None
    return None


def moved(ctx: Context) -> None:
    """Done; a drain of the node it left moves on to its next server."""
    source = Node.objects.filter(pk=ctx.params.get("source_id")).first()
    if source is not None and source.state == Node.State.DRAINING:
        transaction.on_commit(
            lambda: current_app.send_task("instances.drain_node", args=(source.pk,))
        )


def stays(ctx: Context, message: str, detail: str) -> None:
    """A move that stops leaves the server where it was (staff read PVE's reason); a drain
    lists it as a server that could not move, and goes on with the next one."""
    placement.move_abandoned(ctx.instance.pk)
    ctx.event(message, detail)
    source = (
        Node.objects.select_for_update()
        .filter(pk=ctx.params.get("source_id") or ctx.instance.node_id)
        .first()
    )
    if source is not None and source.state == Node.State.DRAINING:
        problems = {
            **source.drain_problems,
            str(ctx.instance.pk): f"{ctx.instance.hostname}: {detail}",
        }
        Node.objects.filter(pk=source.pk).update(drain_problems=problems)
        ctx.params["source_id"] = source.pk
    moved(ctx)


MIGRATE = Kind(
    name="migrate",
    noun="a move to another host",
    steps=(
        Step("reserve", "Reserving room on another host", reserve_target),
        Step("migrate", "Moving to another host", start_migration),
        Step("wait_migrate", "Moving to another host", wait_migration),
        Step("moved", "Moved", moved),
    ),
    allowed_from=MOVABLE,
    requested="",
    done="",
    failed="A move to another host was stopped; the server stays where it was.",
    on_failure=stays,
)
