"""A new password for the server's login user: through the QEMU guest agent when it runs,
else (only if the customer allowed it) through cloud-init at a reboot.

A new cloud-init configuration changes the instance-id, so cloud-init also makes new SSH host
keys at that boot: the customer is told before allowing it.
"""

from __future__ import annotations

from django.db import transaction

from instances.models import Instance
from instances.operations.base import Context, Kind, Step, StepFailed, Wait
from instances.operations.power import reboot

Status = Instance.Status
AGENT_DOWN = (
    "The QEMU guest agent in your server did not answer, so the password was not changed. "
    "Try again and allow a reboot to set it through cloud-init."
)


def _by_agent(ctx: Context) -> bool:
    return ctx.params.get("via") == "agent"


def through_agent(ctx: Context) -> None:
    if ctx.params.get("via"):
        return
    user = ctx.instance.os_image.default_user
    if ctx.pve.agent_ping(ctx.node, ctx.vmid):
        ctx.pve.agent_set_password(ctx.node, ctx.vmid, username=user, password=ctx.secret)
        ctx.save(params={**ctx.params, "via": "agent"})
    elif ctx.params.get("allow_reboot"):
        ctx.save(params={**ctx.params, "via": "cloud-init"})
    else:
        raise StepFailed("The guest agent is not running.", customer=AGENT_DOWN)


def through_cloud_init(ctx: Context) -> Wait | None:
    if _by_agent(ctx):
        return None
    if ctx.operation.task_upid:
        return ctx.task_outcome("config", "Setting the password")
    upid = ctx.pve.set_config(ctx.node, ctx.vmid, cipassword=ctx.secret)
    return ctx.task_started(upid, "config", "Setting the password")


def reboot_for_cloud_init(ctx: Context) -> Wait | None:
    return None if _by_agent(ctx) else reboot(ctx)


def changed(ctx: Context) -> None:
    """The password works now: it waits, encrypted, until the customer has seen it once."""
    how = (
        "through the guest agent, without a restart"
        if _by_agent(ctx)
        else "through cloud-init at a reboot"
    )
    with transaction.atomic():
        ctx.offer_password()
        ctx.event(f"Password of {ctx.instance.os_image.default_user} changed {how}.")


PASSWORD = Kind(
    name="password",
    noun="a password reset",
    steps=(
        Step("agent", "Setting the password", through_agent),
        Step("cloud_init", "Setting the password", through_cloud_init),
        Step("reboot", "Rebooting", reboot_for_cloud_init),
        Step("changed", "Done", changed),
    ),
    allowed_from=frozenset({Status.RUNNING}),
    requested="Password reset requested.",
    done="",
    failed="The password could not be changed. Support has been told.",
)
