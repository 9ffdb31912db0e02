"""Suspending, restoring and removing a server (billing asks when invoices go unpaid, are paid,
or the subscription ends; support can too).

A virtual server is shut down (ACPI, then stopped after the timeout) and marked suspended;
restoring starts it again; removal stops it, destroys the VM with its disks, and puts its IP
address into quarantine before another customer may get it. All records are kept. A dedicated
server goes through the same states, but our technicians do the machine's part: the operation
waits for them at that step, and they mark it done in the admin.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from instances import placement
from instances.models import DedicatedServer, Family, Instance
from instances.operations import backups, build, reinstall, snapshots
from instances.operations.base import EXTERNAL, Context, Kind, Step, Wait
from instances.operations.power import acpi_shutdown, force_stop, wait_shutdown, wait_stopped
from instances.operations.power import stop as stop_now
from instances.operations.reverse_dns import defaults_restore as reverse_dns_restore

Status = Instance.Status


def _dedicated(ctx: Context) -> bool:
    return ctx.instance.family == Family.DEDICATED


def on_the_vm(step):
    """A step on the VM; a dedicated server has none (technicians do that part)."""

    def run(ctx: Context) -> Wait | None:
        return None if _dedicated(ctx) or ctx.instance.vmid is None else step(ctx)

    return run


def by_technicians(what: str):
    """A dedicated server waits here until support marks the machine's part done."""

    def run(ctx: Context) -> Wait | None:
        if not _dedicated(ctx) or ctx.params.get("done_by_staff"):
            return None
        return Wait(EXTERNAL, f"Our technicians {what}")

    return run


def suspended(ctx: Context) -> None:
    reason = ctx.params.get("reason") or "Suspended."
    if ctx.instance.status != Status.SUSPENDED:
        ctx.transition(Status.SUSPENDED, reason, suspended_reason=reason[:300])


def restored(ctx: Context) -> None:
    reason = ctx.params.get("reason") or "Service restored."
    if ctx.instance.status == Status.SUSPENDED:
        ctx.transition(Status.RUNNING, reason, suspended_reason="")


def terminating(ctx: Context) -> None:
    if ctx.instance.status != Status.TERMINATING:
        ctx.transition(Status.TERMINATING, ctx.params.get("reason") or "Removal started.")


def released(ctx: Context) -> None:
    """The IP address rests in quarantine; a dedicated machine goes back to the inventory."""
    with transaction.atomic():
        placement.release(ctx.instance)
        DedicatedServer.objects.filter(instance=ctx.instance).update(
            state=DedicatedServer.State.AVAILABLE, instance=None
        )
        ctx.transition(
            Status.TERMINATED,
            "The server was removed. Its records are kept.",
            expect={Status.TERMINATING},
            terminated_at=timezone.now(),
        )


SUSPEND = Kind(
    name="suspend",
    noun="a suspension",
    steps=(
        Step("shutdown", "Shutting down", on_the_vm(acpi_shutdown)),
        Step("wait_shutdown", "Shutting down", on_the_vm(wait_shutdown)),
        Step("force_stop", "Stopping", on_the_vm(force_stop)),
        Step("wait_stopped", "Stopping", on_the_vm(wait_stopped)),
        Step(
            "machine",
            "Stopping",
            by_technicians("are powering the machine off"),
            deadline=False,
            external=True,
        ),
        Step("suspended", "Suspended", suspended),
    ),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED}),
    requested="",
    done="",
    failed="The server could not be suspended cleanly. Support has been told.",
)
UNSUSPEND = Kind(
    name="unsuspend",
    noun="a service restore",
    steps=(
        Step("start", "Starting", on_the_vm(build.start)),
        Step("wait_running", "Booting", on_the_vm(build.wait_running)),
        Step(
            "machine",
            "Starting",
            by_technicians("are powering the machine on"),
            deadline=False,
            external=True,
        ),
        Step("restored", "Running", restored),
    ),
    allowed_from=frozenset({Status.SUSPENDED}),
    requested="",
    done="",
    failed="The server could not be started again. Support has been told and will start it.",
)
TERMINATE = Kind(
    name="terminate",
    noun="a removal",
    steps=(
        Step("terminating", "Stopping", terminating),
        Step("stop", "Stopping", on_the_vm(stop_now)),
        Step("destroy", "Deleting the disks", on_the_vm(reinstall.destroy)),
        Step("wait_destroyed", "Deleting the disks", on_the_vm(reinstall.wait_destroyed)),
        # PVE destroyed the snapshots with the disks.
        Step("snapshots", "Deleting the disks", snapshots.forget_all),
        Step(
            "machine",
            "Deleting the disks",
            by_technicians("are wiping the machine"),
            deadline=False,
            external=True,
        ),
        Step("backups", "Deleting the backups", backups.delete_all),  # on their own storage
        Step("reverse_dns", "Removed", on_the_vm(reverse_dns_restore)),
        Step("released", "Removed", released),
    ),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED, Status.SUSPENDED, Status.FAILED}),
    requested="",
    done="",
    failed="The removal stopped. Support has been told and will finish it.",
)
