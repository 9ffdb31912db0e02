"""Helpers for tests on the demo cluster (the `world` fixture in tests/pve_world.py).

`drive()` runs an operation through the engine's public entry point until it ends; `build()`
does that for a server's build.
"""

from __future__ import annotations

import time
from urllib.parse import unquote

from instances.models import Instance, InstanceOperation, IPAddress, OSImage
from instances.operations import engine


def image(slug: str = "debian-12") -> OSImage:
    return OSImage.objects.get(slug=slug)


def live_operation(instance_id: int) -> InstanceOperation | None:
    return InstanceOperation.objects.filter(
        instance_id=instance_id, state__in=InstanceOperation.LIVE
    ).first()


def drive(operation_id: int, *, rounds: int = 100, timeout: float = 60) -> InstanceOperation:
    """Advance the operation until it ends (the fake finishes tasks at once at time scale 0).

    While another worker holds the operation, this one waits for it to let go, as a Celery
    worker's re-queued task would.
    """
    deadline = time.monotonic() + timeout
    while rounds and time.monotonic() < deadline:
        engine.advance(operation_id)
        operation = InstanceOperation.objects.get(pk=operation_id)
        if not operation.is_live or operation.waiting_reason.startswith("Our technicians"):
            return operation
        if operation.lease_token:
            time.sleep(0.01)  # held by another worker: look again shortly
        else:
            rounds -= 1
    raise AssertionError(f"operation {operation_id} did not end")


def build(instance_id: int, *, rounds: int = 100) -> Instance:
    """Drive the server's build (or its resumed build) to its end."""
    operation = (
        live_operation(instance_id)
        or InstanceOperation.objects.filter(instance_id=instance_id).first()
    )
    drive(operation.pk, rounds=rounds)
    return Instance.objects.get(pk=instance_id)


def last_operation(instance_id: int) -> InstanceOperation:
    return InstanceOperation.objects.filter(instance_id=instance_id).first()


def portal_vms(pve) -> list:
    """VMs the portal made (templates and anything else excluded)."""
    return [vm for vm in pve.vms if "portal-instance=" in str(vm.config.get("description", ""))]


def decoded_keys(vm) -> str:
    return unquote(vm.config.get("sshkeys", ""))


def assert_no_leaked_ip() -> None:
    """Every assigned address belongs to exactly one live server, and each server has one."""
    for address in IPAddress.objects.filter(state=IPAddress.State.ASSIGNED):
        holders = address.instances.exclude(status=Instance.Status.TERMINATED)
        assert holders.count() == 1, f"{address} is assigned but held by {list(holders)}"
