"""What a change left for the next reboot: PVE's pending config, as the portal keeps it.

A running server that cannot take a change live (no CPU or memory hotplug, a new CPU layout,
less memory) keeps it in PVE's pending config until its next start or reboot. The server
remembers which parts wait (`Instance.pending_changes`), so its page can say so.
"""

from __future__ import annotations

from instances.models import Instance
from instances.operations.base import Context

# The config keys whose pending value the customer is told about.
WATCHED = ("cores", "sockets", "vcpus", "memory", "numa", "hotplug")


def pending_keys(ctx: Context) -> list[str]:
    """The watched keys PVE still has pending for the server's VM."""
    items = ctx.pve.vm_pending(ctx.node, ctx.vmid)
    waiting = {item["key"] for item in items if "pending" in item or item.get("delete")}
    return [key for key in WATCHED if key in waiting]


def note_pending(ctx: Context) -> None:
    """A step: record what still waits for a reboot (nothing, after a start or reboot)."""
    keys = pending_keys(ctx)
    fields: dict = {"pending_changes": keys}
    if not keys:
        fields["reboot_at"] = None  # nothing left for a planned reboot to apply
    Instance.objects.filter(pk=ctx.instance.pk).update(**fields)
    for name, value in fields.items():
        setattr(ctx.instance, name, value)


def waiting_for_reboot(keys: list[str]) -> str:
    """The parts of a change PVE keeps for the next start, in words ("the vCPUs and the RAM")."""
    parts = []
    if {"cores", "sockets", "vcpus"} & set(keys):
        parts.append("the vCPUs")
    if "memory" in keys:
        parts.append("the RAM")
    if {"hotplug", "numa"} & set(keys):
        parts.append("the layout for live upgrades")
    return " and ".join(parts)
