"""The plan's noisy-neighbour limits on a VM: network `rate` on its NIC, I/O limits on its disk
(`iops_rd`, `iops_wr`, `mbps_rd`, `mbps_wr`) and its CPU weight (`cpuunits`).

Set with the rest of the config at build and at every resize. A running VM takes all of them at
once (qemu-server sets the NIC's rate on its tap device, the disk's through QMP, cpuunits in its
cgroup). The NIC also gets `firewall=1` at build, without which PVE filters nothing for it.
"""

from __future__ import annotations

from instances.models import Instance

NIC = "net0"
DISK = "scsi0"
# PVE's NIC rate is in MB/s (megabytes); plans sell Mbit/s.
BITS_PER_BYTE = 8


def property_items(value: str) -> list[tuple[str, str | None]]:
    """A PVE property string ("virtio=BC:24:…,bridge=vmbr0") as (key, value) pairs in order; a
    part without "=" (a drive's volume) has the value None."""
    items = []
    for part in str(value or "").split(","):
        if part:
            key, sep, text = part.partition("=")
            items.append((key, text if sep else None))
    return items


def with_properties(value: str, **changes: str | None) -> str:
    """The property string with `changes` set (None: removed), the others kept in place."""
    parts, seen = [], set()
    for key, text in property_items(value):
        seen.add(key)
        if text is None:
            parts.append(key)
        elif key not in changes:
            parts.append(f"{key}={text}")
        elif changes[key] is not None:
            parts.append(f"{key}={changes[key]}")
    parts += [f"{key}={text}" for key, text in changes.items() if key not in seen and text]
    return ",".join(parts)


def _number(value: float) -> str:
    return f"{value:g}"


def nic_rate(instance: Instance) -> str | None:
    """The NIC's `rate` (MB/s) for the plan's Mbit/s; None: no limit."""
    return _number(instance.net_rate_mbit / BITS_PER_BYTE) if instance.net_rate_mbit else None


def disk_limits(instance: Instance) -> dict[str, str | None]:
    values = {
        "iops_rd": instance.disk_iops_rd,
        "iops_wr": instance.disk_iops_wr,
        "mbps_rd": instance.disk_mbps_rd,
        "mbps_wr": instance.disk_mbps_wr,
    }
    return {key: str(value) if value else None for key, value in values.items()}


def limit_options(instance: Instance, config: dict, *, nic_firewall: bool = False) -> dict:
    """Config options that put the server's limits on its VM (only what differs from `config`);
    `nic_firewall` also puts its NIC on the firewall."""
    options: dict = {}
    if config.get(NIC):
        changes = {"rate": nic_rate(instance)}
        if nic_firewall:
            changes["firewall"] = "1"
        nic = with_properties(config[NIC], **changes)
        if nic != config[NIC]:
            options[NIC] = nic
    if config.get(DISK):
        disk = with_properties(config[DISK], **disk_limits(instance))
        if disk != config[DISK]:
            options[DISK] = disk
    if instance.cpu_units and str(config.get("cpuunits", "")) != str(instance.cpu_units):
        options["cpuunits"] = instance.cpu_units
    return options


def nic_filtered(config: dict) -> bool:
    """Whether the VM's NIC is on the firewall (`firewall=1`) in this config."""
    return dict(property_items(config.get(NIC, ""))).get("firewall") in ("1", "true")


def limits_of(config: dict) -> dict:
    """The limits a VM config holds (for the checker and the tests): rate, disk, cpuunits."""
    nic, disk = (
        dict(property_items(config.get(NIC, ""))),
        dict(property_items(config.get(DISK, ""))),
    )
    return {
        "rate": nic.get("rate"),
        **{key: disk.get(key) for key in ("iops_rd", "iops_wr", "mbps_rd", "mbps_wr")},
        "cpuunits": int(config["cpuunits"]) if config.get("cpuunits") else None,
    }
