"""Power: start, shut down (ACPI, then stop after a timeout), stop, reboot and reset."""

from __future__ import annotations

from django.conf import settings

from instances.models import Instance
from instances.operations.base import Context, Kind, Step, Wait
from instances.operations.build import start, wait_running
from instances.operations.firewall import nic_at_boot
from instances.operations.pending import note_pending

Status = Instance.Status


def _vm_state(ctx: Context) -> str:
    return ctx.pve.vm_status(ctx.node, ctx.vmid).get("status", "unknown")


def started(ctx: Context) -> None:
    if ctx.instance.status != Status.RUNNING:
        ctx.transition(Status.RUNNING, "Server started.")


# --- Shut down: ask the guest, and stop it if it has not stopped after a timeout -------------


def acpi_shutdown(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid or _vm_state(ctx) == "stopped":
        return None
    upid = ctx.pve.shutdown(ctx.node, ctx.vmid, timeout=settings.OPERATION_SHUTDOWN_TIMEOUT)
    ctx.save(task_upid=upid, looked_at=None)
    return None


def wait_shutdown(ctx: Context) -> Wait | None:
    """Done when the guest has powered off, or when PVE's shutdown task gave up on it."""
    if _vm_state(ctx) == "stopped":
        ctx.waited("shutdown")
        ctx.save(task_upid="")
        return None
    if ctx.operation.task_upid:
        status = ctx.pve.task_status(ctx.operation.task_upid)
        if status.running:
            return ctx.wait("shutdown", "Waiting for the system to shut down")
        ctx.save(task_upid="", params={**ctx.params, "shutdown_result": status.exitstatus or ""})
    return None  # still running: the next step stops it


def force_stop(ctx: Context) -> Wait | None:
    if ctx.operation.task_upid or _vm_state(ctx) == "stopped":
        return None
    ctx.event(
        f"The system did not shut down within {settings.OPERATION_SHUTDOWN_TIMEOUT} s; "
        "stopping the server.",
        detail=f"PVE's shutdown task: {ctx.params.get('shutdown_result') or 'no result'}",
    )
    ctx.save(task_upid=ctx.pve.stop(ctx.node, ctx.vmid), params={**ctx.params, "forced": True})
    return None


def wait_stopped(ctx: Context) -> Wait | None:
    if _vm_state(ctx) == "stopped":
        ctx.waited("stop")
        ctx.save(task_upid="")
        return None
    if ctx.operation.task_upid:
        status = ctx.pve.task_status(ctx.operation.task_upid)
        if not status.running and not status.ok:
            ctx.rewind()
            raise status.error()
    return ctx.wait("stop", "Stopping")


def stopped(ctx: Context) -> None:
    if ctx.instance.status == Status.STOPPED:
        return
    if ctx.operation.kind == "stop":
        reason = "Server stopped."
    elif ctx.params.get("forced"):
        reason = "Server stopped: it did not shut down by itself in time."
    else:
        reason = "Server shut down."
    ctx.transition(Status.STOPPED, reason)


# --- Stop, reboot and reset: one PVE task each, started and waited for in one step ----------


def task_step(what: str, reason: str, start_task):
    """A step that starts one PVE task and waits for it (a failed task is started again on a
    retry, since its id is forgotten)."""

    def step(ctx: Context) -> Wait | None:
        if ctx.operation.task_upid:
            return ctx.task_outcome(what, reason)
        upid = start_task(ctx)
        return ctx.task_started(upid, what, reason) if upid else None

    return step


def _reboot(ctx: Context) -> str:
    return ctx.pve.reboot(ctx.node, ctx.vmid, timeout=settings.OPERATION_SHUTDOWN_TIMEOUT)


def _reset(ctx: Context) -> str:
    return ctx.pve.reset(ctx.node, ctx.vmid)


def _stop(ctx: Context) -> str | None:
    return None if _vm_state(ctx) == "stopped" else ctx.pve.stop(ctx.node, ctx.vmid)


reboot = task_step("reboot", "Rebooting", _reboot)
stop = task_step("stop", "Stopping", _stop)


RUNNING = frozenset({Status.RUNNING})
STOPPED = frozenset({Status.STOPPED})

START = Kind(
    name="start",
    noun="a start",
    steps=(
        Step("nic", "Starting", nic_at_boot),
        Step("start", "Starting", start),
        Step("wait_running", "Booting", wait_running),
        Step("pending", "Booting", note_pending),
        Step("started", "Running", started),
    ),
    allowed_from=STOPPED,
    requested="Start requested.",
    done="",
    failed="The server did not start. Support has been told.",
)
SHUTDOWN = Kind(
    name="shutdown",
    noun="a shutdown",
    steps=(
        Step("shutdown", "Shutting down", acpi_shutdown),
        Step("wait_shutdown", "Shutting down", wait_shutdown),
        Step("force_stop", "Stopping", force_stop),
        Step("wait_stopped", "Stopping", wait_stopped),
        Step("stopped", "Stopped", stopped),
    ),
    allowed_from=RUNNING,
    requested="Shutdown requested.",
    done="",
    failed="The server did not shut down. Support has been told.",
)
STOP = Kind(
    name="stop",
    noun="a stop",
    steps=(
        Step("stop", "Stopping", stop),
        Step("stopped", "Stopped", stopped),
    ),
    allowed_from=RUNNING,
    requested="Stop requested.",
    done="",
    failed="The server did not stop. Support has been told.",
)
REBOOT = Kind(
    name="reboot",
    noun="a reboot",
    steps=(
        Step("nic", "Rebooting", nic_at_boot),
        Step("reboot", "Rebooting", reboot),
        Step("pending", "Rebooting", note_pending),
    ),
    allowed_from=RUNNING,
    requested="Reboot requested.",
    done="Server rebooted.",
    failed=(
        "The reboot did not complete. If the system does not react to a reboot request, "
        "Reset restarts it at once."
    ),
)
RESET = Kind(
    name="reset",
    noun="a reset",
    steps=(Step("reset", "Resetting", task_step("reset", "Resetting", _reset)),),
    allowed_from=RUNNING,
    requested="Reset requested.",
    done="Server reset.",
    failed="The reset did not complete. Support has been told.",
)
