"""Resizing a server: more (or fewer) vCPUs and RAM, a bigger disk, NVMe instead of bulk storage.

What the hypervisor can do live is done live: vCPUs and RAM are hot-plugged into a VM built for
it (`hotplug` with cpu and memory, NUMA on, PVE `cores` at the layout's ceiling and `vcpus` at
the size's count), the disk grows online, and a disk moves to the NVMe pool online (move_disk).
What PVE cannot apply to the running VM stays in its pending config until a reboot the customer
chooses; the server remembers which parts wait. If its node has no room for the new size, the
server is live-migrated to a node that has, first.
"""

from __future__ import annotations

from django.conf import settings

from instances import placement
from instances.models import Instance
from instances.operations.base import Context, Kind, Step, StepFailed, Wait
from instances.operations.build import disk_size_gib, grow_disk, layout_options
from instances.operations.limits import limit_options
from instances.operations.migrate import start_migration, wait_migration
from instances.operations.pending import note_pending, waiting_for_reboot
from instances.state import event_record

Status = Instance.Status
SPEC_FIELDS = ("family", "plan_name", "vcpus", "dedicated_cores", "memory_mib", "disk_gib")
SPEC_FIELDS += ("storage_class", "traffic_tb", "max_vcpus")
SPEC_FIELDS += ("net_rate_mbit", "disk_iops_rd", "disk_iops_wr", "disk_mbps_rd", "disk_mbps_wr")
SPEC_FIELDS += ("cpu_units",)
SPEC_FIELDS += ("snapshots_max", "backups_kept")


def place(ctx: Context) -> Wait | None:
    """The new size on the server's node if it has room, else on another node (moved first)."""
    if ctx.params.get("placed"):
        return None
    spec = {name: ctx.params["spec"][name] for name in SPEC_FIELDS if name in ctx.params["spec"]}
    try:
        instance = placement.reserve_move(ctx.instance.pk, spec=spec)
    except placement.NoCapacity as exc:
        if str(exc) != ctx.operation.waiting_reason:  # one entry per reason, not per look
            ctx.event(
                "Waiting for room for the new size on another host; it is applied by itself. "
                "Support has been told.",
                detail=str(exc),
            )
        return Wait(settings.OPERATION_CAPACITY_RETRY, str(exc))
    ctx.save(params={**ctx.params, "placed": True, "source_id": ctx.instance.node_id})
    ctx.instance = ctx.operation.instance = instance
    return None


def _pool(ctx: Context) -> str:
    instance = ctx.instance
    name = (
        instance.node.storages.filter(pool__storage_class=instance.storage_class)
        .values_list("pool__name", flat=True)
        .first()
    )
    if name is None:
        raise StepFailed(f"{instance.node} has no {instance.storage_class} storage.")
    return name


def move_disk(ctx: Context) -> Wait | None:
    """A disk on another class of storage (Storage VPS to NVMe VPS) moves there, online."""
    if ctx.operation.task_upid:
        return ctx.task_outcome("move_disk", "Moving the disk to NVMe")
    pool = _pool(ctx)
    disk = str(ctx.pve.vm_config(ctx.node, ctx.vmid).get("scsi0", ""))
    if disk.split(",")[0].partition(":")[0] == pool:
        return None
    upid = ctx.pve.move_disk(ctx.node, ctx.vmid, disk="scsi0", storage=pool, delete=True)
    return ctx.task_started(upid, "move_disk", "Moving the disk to NVMe")


def _features(value: object) -> set[str]:
    text = "" if value is None else str(value)
    if text in ("", "1"):
        return {"network", "disk", "usb"}
    return set() if text == "0" else set(text.split(","))


def configure(ctx: Context) -> Wait | None:
    """vCPUs and RAM: hot-plugged where the VM's layout allows, else pending until a reboot
    (an older VM gets the live-upgrade layout with it, also at that reboot)."""
    if ctx.operation.task_upid:
        return ctx.task_outcome("config", "Applying the new size")
    instance = ctx.instance
    current = ctx.pve.vm_config(ctx.node, ctx.vmid, current=True)
    features = _features(current.get("hotplug"))
    cores = int(current.get("cores") or 1) * int(current.get("sockets") or 1)
    numa = str(current.get("numa", 0)) in ("1", "True", "true")
    options: dict = {"memory": instance.memory_mib}
    if "memory" in features and not numa:
        raise StepFailed(f"VM {ctx.vmid} has memory hotplug without NUMA; fix its config.")
    if {"cpu", "memory"} <= features:
        if instance.vcpus <= cores:
            options["vcpus"] = instance.vcpus
        else:
            # More vCPUs than the layout's cores: PVE refuses to hot-plug them, so the new core
            # count waits for the reboot, with every core online (no vcpus limit).
            options.update(cores=instance.vcpus, delete="vcpus")
    else:
        layout = layout_options(instance)
        layout["cores"] = max(layout["cores"], cores)
        options.update(layout)
    options.update(limit_options(instance, current))  # the new size's limits, live
    upid = ctx.pve.set_config(ctx.node, ctx.vmid, **options)
    return ctx.task_started(upid, "config", "Applying the new size")


def resized(ctx: Context) -> None:
    instance = ctx.instance
    size = f"{instance.vcpus} vCPU, {instance.memory_mib // 1024} GiB RAM, {instance.disk_gib} GiB"
    waiting = waiting_for_reboot(instance.pending_changes)
    if waiting:
        message = f"Now {size}; {waiting} take effect at the next reboot."
    else:
        message = f"Now {size}, applied without a reboot."
    if ctx.params.get("grown"):
        message += " The file system grows at the next boot (or now with growpart and resize2fs)."
    # On the timeline as the requester's (the customer who paid for it), not the system's.
    event_record(
        instance,
        message=ctx.params.get("label", "Resized.") + " " + message,
        step=ctx.operation.step,
        actor=ctx.operation.actor,
        actor_user=ctx.operation.actor_user,
        operation=ctx.operation,
    )


def grow(ctx: Context) -> Wait | None:
    """The disk to the new size, online (noted, so the customer is told about the file system)."""
    if not ctx.operation.task_upid:
        config = ctx.pve.vm_config(ctx.node, ctx.vmid)
        if disk_size_gib(config.get("scsi0", "")) < ctx.instance.disk_gib:
            ctx.save(params={**ctx.params, "grown": True})
    return grow_disk(ctx)


def stays(ctx: Context, message: str, detail: str) -> None:
    placement.move_abandoned(ctx.instance.pk)
    ctx.event(message, detail)


RESIZE = Kind(
    name="resize",
    noun="an upgrade",
    steps=(
        Step("place", "Reserving room for the new size", place, deadline=False),
        Step("migrate", "Moving to a host with room", start_migration),
        Step("wait_migrate", "Moving to a host with room", wait_migration),
        Step("move_disk", "Moving the disk", move_disk),
        Step("configure", "Applying the new size", configure),
        Step("resize", "Growing the disk", grow),
        Step("pending", "Applying the new size", note_pending),
        Step("resized", "Done", resized),
    ),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED}),
    requested="",
    done="",
    failed="The new size could not be applied yet. Support has been told and will finish it.",
    on_failure=stays,
)
