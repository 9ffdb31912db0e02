"""Reinstall: the disk is wiped and the server built again from an OS image.

The VMID, the IPv4 and IPv6 addresses and the plan's size stay; the VM is stopped, destroyed
and cloned again from the new image's template, then configured, grown to the plan's full
disk and started, with the build's own steps.
"""

from __future__ import annotations

from instances.models import Instance, OSImage
from instances.operations import build, snapshots
from instances.operations.base import Context, Kind, Step, StepFailed, Wait
from instances.operations.firewall import apply as firewall_apply
from instances.operations.power import stop

Status = Instance.Status


def prepare(ctx: Context) -> None:
    """The new image and access go on the server's record; it is being built again. A new
    generated password can be revealed from now on (it works once the reinstall is done)."""
    image = OSImage.objects.get(pk=ctx.params["image_id"])
    ctx.offer_password()
    Instance.objects.filter(pk=ctx.instance.pk).update(
        os_image=image, ssh_keys=ctx.params.get("ssh_keys", "")
    )
    ctx.instance.os_image, ctx.instance.ssh_keys = image, ctx.params.get("ssh_keys", "")
    if ctx.instance.status != Status.PROVISIONING:
        ctx.transition(Status.PROVISIONING, f"Reinstalling with {image.name}.")


def destroy(ctx: Context) -> Wait | None:
    """Delete the VM and its disks (only ours: the VMID's description names this server)."""
    if ctx.operation.task_upid:
        return None
    found = ctx.pve.find_vm(ctx.vmid)
    if found is None:
        return None
    if not build.is_ours(ctx, found["node"]):
        raise StepFailed(f"VMID {ctx.vmid} holds a VM the portal did not create; not deleting.")
    ctx.save(task_upid=ctx.pve.destroy(found["node"], ctx.vmid, purge=True), looked_at=None)
    return None


def wait_destroyed(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid:
        waiting = ctx.task_outcome("destroy", "Wiping the disk")
        if waiting is not None:
            return waiting
    if ctx.pve.find_vm(ctx.vmid) is not None:
        return ctx.wait("destroy", "Wiping the disk")
    return None


def reinstalled(ctx: Context) -> None:
    ctx.transition(
        Status.RUNNING,
        f"Reinstalled with {ctx.instance.os_image.name}.",
        expect={Status.PROVISIONING},
    )


REINSTALL = Kind(
    name="reinstall",
    noun="a reinstall",
    steps=(
        Step("prepare", "Stopping", prepare),
        Step("stop", "Stopping", stop),
        Step("destroy", "Wiping the disk", destroy),
        Step("wait_destroyed", "Wiping the disk", wait_destroyed),
        Step("snapshots", "Wiping the disk", snapshots.forget_all),  # gone with the disks
        Step("clone", "Copying the OS image", build.clone),
        Step("wait_clone", "Copying the OS image", build.wait_clone),
        Step("configure", "Configuring", build.configure),
        # PVE dropped the VM's firewall with the VM: anti-spoofing and the rules go back on.
        Step("firewall", "Configuring", firewall_apply),
        Step("resize", "Growing the disk", build.grow_disk),
        Step("start", "Starting", build.start),
        Step("wait_running", "Booting", build.wait_running),
        Step("reinstalled", "Ready", reinstalled),
    ),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED}),
    requested="Reinstall requested.",
    done="",
    failed="The reinstall stopped while {step}. Support has been told.",
    on_failure=build.failed,
)
