"""Helpers for tests on the demo cluster (the `world` fixture in conftest.py).

`build()` drives a server's build to its end.
"""

from __future__ import annotations

from urllib.parse import unquote

from instances import provisioning
from instances.models import Instance, IPAddress, OSImage


def image(slug: str = "debian-12") -> OSImage:
    return OSImage.objects.get(slug=slug)


def build(instance_id: int, *, rounds: int = 100) -> Instance:
    """Advance the build until it settles (the fake finishes tasks at once at time scale 0)."""
    for _ in range(rounds):
        if provisioning.advance(instance_id) is None:
            instance = Instance.objects.get(pk=instance_id)
            if instance.is_settled:
                return instance
    raise AssertionError(f"build of {instance_id} did not settle in {rounds} rounds")


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
