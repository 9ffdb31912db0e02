"""Building a server on Proxmox VE: reserve, clone the OS template, configure, grow, boot.

The VM steps here (clone, configure, grow the disk, start, wait until running) are reused by
the reinstall. Each finds its work already done when run twice: a clone that exists (found by
VMID and the marker in its description), a disk already grown, a VM already running.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from instances import placement
from instances.models import Instance, OSTemplate
from instances.notifications import send_server_ready
from instances.operations.base import Context, Kind, Step, StepFailed, TryAgain, Wait
from instances.operations.firewall import apply as firewall_apply
from instances.operations.limits import limit_options
from instances.operations.reverse_dns import defaults_set as reverse_dns_defaults

Status = Instance.Status
MARKER = "portal-instance={id}"


def reserve(ctx: Context) -> Wait | None:
    """A node with room, a VMID and an IP address (kept when the build is retried)."""
    instance = ctx.instance
    if instance.node_id is None:
        try:
            placement.reserve(
                instance.pk,
                is_vmid_free=lambda cluster, vmid: ctx.client_factory(cluster).vmid_free(vmid),
            )
        except placement.NoCapacity as exc:
            if str(exc) != ctx.operation.waiting_reason:  # one entry per reason, not per try
                ctx.event(
                    "Waiting for capacity in this location; the build starts by itself.",
                    detail=str(exc),
                )
            return Wait(settings.OPERATION_CAPACITY_RETRY, str(exc))
    if instance.status == Status.QUEUED:
        ctx.transition(Status.PROVISIONING, "Build started.")
    return None


def is_ours(ctx: Context, node: str) -> bool:
    """Whether the VM with our VMID on `node` carries this server's marker (False: none there)."""
    return carries_marker(ctx, ctx.pve.vm_config_if_exists(node, ctx.vmid) or {})


def carries_marker(ctx: Context, config: dict) -> bool:
    marker = re.escape(MARKER.format(id=ctx.instance.pk))
    return re.search(rf"{marker}(?!\d)", config.get("description") or "") is not None


def _template(ctx: Context) -> OSTemplate:
    instance = ctx.instance
    templates = OSTemplate.objects.filter(image=instance.os_image, cluster=instance.cluster)
    template = templates.filter(node=instance.node).first() or templates.filter(node=None).first()
    if template is None:
        raise StepFailed(f"{instance.os_image} has no template on {instance.cluster}.")
    return template


def _storage_name(ctx: Context) -> str:
    instance = ctx.instance
    pool = instance.node.storages.filter(pool__storage_class=instance.storage_class).first()
    if pool is None:
        raise StepFailed(f"{instance.node} has no {instance.storage_class} storage.")
    return pool.pool.name


def clone(ctx: Context) -> None:
    found = ctx.pve.find_vm(ctx.vmid)
    if found is not None:
        # PVE writes a bare config locked "clone" before the copy starts and our description
        # only at its end: a locked VM is our earlier clone (its task id was lost), and
        # wait_clone checks the marker once the copy is done.
        if found.get("lock") == "clone" or is_ours(ctx, found["node"]):
            return None
        raise StepFailed(
            f"VMID {ctx.vmid} is used by a VM the portal did not create ({found.get('name')})."
        )
    template = _template(ctx)
    if template.node_id:
        source_node = template.node.name
    else:  # a cluster-wide template on shared storage: clones go from where it lives
        where = ctx.pve.find_vm(template.vmid)
        if where is None:
            raise StepFailed(f"Template VMID {template.vmid} does not exist on {template.cluster}.")
        source_node = where["node"]
    try:
        upid = ctx.pve.clone(
            node=source_node,
            template_vmid=template.vmid,
            vmid=ctx.vmid,
            name=ctx.instance.hostname,
            full=True,
            storage=_storage_name(ctx),
            target=ctx.node if source_node != ctx.node else None,
            description=MARKER.format(id=ctx.instance.pk),
        )
    except Exception as exc:  # the client's ProxmoxError (kinds do not import the client)
        if "already exists" not in getattr(exc, "message", ""):
            raise
        # Our earlier request went through after all, or the VM is there but hidden from us:
        # /cluster/resources lists only what the token may audit. Reading its config says
        # which (a token without VM.Audit gets PVE's "Permission check failed").
        if is_ours(ctx, ctx.node):
            return None
        raise TryAgain(exc.message) from exc
    ctx.save(task_upid=upid, looked_at=None)
    return None


def wait_clone(ctx: Context) -> Wait | None:
    what = f"clone:{ctx.instance.os_image_id}:{ctx.instance.storage_class}"
    if ctx.operation.task_upid:
        status = ctx.pve.task_status(ctx.operation.task_upid)
        if status.running:
            return ctx.wait(what, "Copying the OS image")
        ctx.waited(what)
        if not status.ok:
            # The failed clone left nothing behind (PVE removes it); clone again next time.
            ctx.goto("clone")
            raise status.error()
    else:  # the task's id was lost: PVE's lock says whether the copy still runs
        found = ctx.pve.find_vm(ctx.vmid)
        if found is not None and found.get("lock") == "clone":
            return ctx.wait(what, "Copying the OS image")
    # The copy is done: the VM's config on its node says whether it is ours (and a token that
    # may not read it learns so here, not by cloning again).
    config = ctx.pve.vm_config_if_exists(ctx.node, ctx.vmid)
    if config is None:
        ctx.goto("clone")
        raise TryAgain("the cloned VM is not there yet")
    if not carries_marker(ctx, config):
        raise StepFailed(f"VMID {ctx.vmid} holds a VM the portal did not create.")
    ctx.save(task_upid="")
    return None


# The hotplug features of a VM built for live upgrades (PVE's default is network,disk,usb).
HOTPLUG = "network,disk,usb,cpu,memory"


def layout_options(instance: Instance) -> dict:
    """The CPU and memory layout that takes vCPUs and RAM live: PVE `cores` at the ceiling of
    the sizes the server may grow to, `vcpus` at its own count, NUMA on (memory hotplug)."""
    return {
        "hotplug": HOTPLUG,
        "numa": 1,
        "sockets": 1,
        "cores": max(instance.max_vcpus, instance.vcpus),
        "vcpus": instance.vcpus,
    }


def configure(ctx: Context) -> Wait | None:
    """CPU, memory, name, tags and cloud-init: user, SSH keys, password, addresses, DNS."""
    if ctx.operation.task_upid:
        waiting = ctx.task_outcome("config", "Configuring")
        if waiting is None:
            ctx.forget_secret()  # PVE keeps only a hash of the password now
        return waiting
    instance = ctx.instance
    address = instance.ipv4
    options = {
        "name": instance.hostname,
        **layout_options(instance),
        "memory": instance.memory_mib,
        "ciuser": instance.os_image.default_user,
        "ipconfig0": f"ip={address.address}/{address.pool.prefix_length},gw={address.pool.gateway}",
        "nameserver": address.pool.dns_servers,
        "tags": ["portal", instance.family.replace("_", "-"), f"customer-{instance.owner_id}"],
        "description": MARKER.format(id=instance.pk),
        "onboot": True,
        # The plan's limits, and the NIC on the firewall (PVE filters nothing without it).
        **limit_options(instance, ctx.pve.vm_config(ctx.node, ctx.vmid), nic_firewall=True),
    }
    if instance.ipv6:
        options["ipconfig0"] += f",ip6={instance.ipv6}"
        if address.pool.ipv6_gateway:
            options["ipconfig0"] += f",gw6={address.pool.ipv6_gateway}"
    if instance.ssh_keys:
        options["sshkeys"] = instance.ssh_keys + "\n"
    if password := ctx.secret:
        options["cipassword"] = password
    upid = ctx.pve.set_config(ctx.node, ctx.vmid, **options)
    if waiting := ctx.task_started(upid, "config", "Configuring"):
        return waiting
    ctx.forget_secret()
    return None


_SIZE = re.compile(r"size=(\d+(?:\.\d+)?)([KMGT]?)")
_UNIT_GIB = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024, "": 1 / 1024**3}


def disk_size_gib(drive: str) -> float:
    """The size= of a PVE drive line in GiB (0 when it has none)."""
    match = _SIZE.search(drive or "")
    return float(match.group(1)) * _UNIT_GIB[match.group(2)] if match else 0.0


def grow_disk(ctx: Context) -> Wait | None:
    """The disk to the plan's full size (disks never shrink)."""
    if ctx.operation.task_upid:
        return ctx.task_outcome("resize", "Growing the disk")
    config = ctx.pve.vm_config(ctx.node, ctx.vmid)
    if disk_size_gib(config.get("scsi0", "")) >= ctx.instance.disk_gib:
        return None  # already grown (or the template is big enough)
    upid = ctx.pve.resize_disk(ctx.node, ctx.vmid, "scsi0", f"{ctx.instance.disk_gib}G")
    return ctx.task_started(upid, "resize", "Growing the disk")


def start(ctx: Context) -> None:
    if ctx.pve.vm_status(ctx.node, ctx.vmid).get("status") == "running":
        return None
    ctx.save(task_upid=ctx.pve.start(ctx.node, ctx.vmid), looked_at=None)
    return None


def wait_running(ctx: Context) -> Wait | None:
    what = f"boot:{ctx.instance.os_image_id}"
    # A running VM wins over a start task's exit status: a repeated start (after a lost reply)
    # ends in "already running", which is success for us.
    if ctx.pve.vm_status(ctx.node, ctx.vmid).get("status") == "running":
        ctx.waited(what)
        ctx.save(task_upid="")
        return None
    if ctx.operation.task_upid:
        status = ctx.pve.task_status(ctx.operation.task_upid)
        if not status.running and not status.ok:
            ctx.rewind()
            raise status.error()
    return ctx.wait(what, "Booting")


def ready(ctx: Context) -> None:
    instance = ctx.transition(
        Status.RUNNING,
        "Your server is ready.",
        expect={Status.PROVISIONING},
        ready_at=timezone.now(),
    )
    transaction.on_commit(lambda: send_server_ready(instance.pk))
    return None


def failed(ctx: Context, message: str, detail: str) -> None:
    """A build that stops leaves the server failed, for staff to retry (same VM and IP)."""
    ctx.transition(
        Status.FAILED, message, detail=detail, expect={Status.QUEUED, Status.PROVISIONING}
    )


BUILD = Kind(
    name="build",
    noun="a build",
    steps=(
        Step("reserve", "Reserving capacity", reserve, deadline=False),
        Step("clone", "Copying the OS image", clone),
        Step("wait_clone", "Copying the OS image", wait_clone),
        Step("configure", "Configuring", configure),
        Step("firewall", "Configuring", firewall_apply),
        Step("resize", "Growing the disk", grow_disk),
        Step("start", "Starting", start),
        Step("wait_running", "Booting", wait_running),
        Step("reverse_dns", "Setting up reverse DNS", reverse_dns_defaults),
        Step("ready", "Ready", ready),
    ),
    allowed_from=frozenset({Status.PENDING, Status.FAILED}),
    requested="",
    done="",
    failed="The build stopped while {step}. Support has been told.",
    on_failure=failed,
)
