"""What a running VM takes at once of a change to its NIC or disk: the firewall flag, the network
rate limit and the disk's I/O limits. fakepve (and sandbox/pve_config.py's hotplug rules) left
every NIC and disk change of a running VM pending until its next start.

Installed on a FakePve by sandbox.pve.install_extensions (see the table in sandbox/README.md).
It follows qemu-server's vmconfig_hotplug_pending, which hands `net<n>` and disk keys to
vmconfig_update_net and vmconfig_update_disk "without hotplug" first:

- NIC: with the same model, MAC, queues and MTU (and a bridge before and after), a change of
  `bridge`, `tag`, `trunks` or `firewall` re-plugs the tap device (tap_unplug/tap_plug), a change
  of `rate` alone sets the limit on it (tap_rate_limit), `link_down` sets the link: all live.
  Anything else needs `network` in `hotplug` (the device is unplugged and plugged again);
  without it the change waits for the next start.
- Disk: on the same volume, a change of the I/O limits (`iops*`, `mbps*` and their `_max` and
  `_max_length`) is set live through QMP (qemu_block_set_io_throttle), and so is any other
  option that only the config holds (`backup`, `replicate`, `size`, ...); a change of `aio`,
  `cache`, `discard`, `iothread`, `queues`, `ro`, `ssd`, `product` or `vendor` waits for the next
  start. A different volume is not extended here (it stays pending, as before).
"""

from __future__ import annotations

import re

from fakepve import FakePve, PveError
from fakepve.qemu import split_drive

from sandbox.pve_config import hotplug_features
from sandbox.pve_firewall import nic

NET_KEY = re.compile(r"^net\d+$")
DISK_KEY = re.compile(r"^(?:scsi|virtio|sata|ide)\d+$")
# Differences that need the NIC unplugged and plugged again (`network` hotplug).
NIC_REPLUG = ("model", "macaddr", "queues", "mtu")
# Disk options QEMU cannot change on a running drive.
DISK_FIXED = ("aio", "cache", "discard", "iothread", "queues", "ro", "ssd", "product", "vendor")
DISK_FIXED += ("media",)


def nic_change_is_live(old: str, new: str, features: frozenset[str]) -> bool:
    """qemu-server vmconfig_update_net: whether the running VM takes `new` for its NIC now."""
    before, after = nic(old), nic(new)
    same_device = all(
        before.get(key, "").upper() == after.get(key, "").upper() for key in NIC_REPLUG
    )
    if same_device and before.get("bridge") and after.get("bridge"):
        return True
    return "network" in features


def disk_change_is_live(old: str, new: str) -> bool:
    """qemu-server vmconfig_update_disk: whether the running VM takes `new` for a disk now."""
    (old_volume, before), (new_volume, after) = split_drive(old), split_drive(new)
    if old_volume != new_volume or before.get("media") == "cdrom":
        return False
    return all(before.get(key) == after.get(key) for key in DISK_FIXED)


def apply_live_device_changes(vm) -> None:
    """Move what the running VM takes at once from its pending config into its config."""
    features = hotplug_features(vm.config.get("hotplug"))
    for key in sorted(vm.pending):
        value = vm.pending[key]
        if value is None or key not in vm.config:
            continue  # a pending delete, or a new device: as before
        if NET_KEY.match(key):
            live = nic_change_is_live(str(vm.config[key]), str(value), features)
        elif DISK_KEY.match(key):
            live = disk_change_is_live(str(vm.config[key]), str(value))
        else:
            continue
        if live:
            vm.config[key] = value
            del vm.pending[key]


def install(pve: FakePve) -> None:
    apply_config = pve._apply_config

    async def applying_device_changes(vm, user, p):
        problem = None
        try:
            await apply_config(vm, user, p)
        except PveError as exc:
            # PVE reports a hotplug problem per key and still applies the other keys.
            if exc.status != 400 or not getattr(exc, "errors", None):
                raise
            problem = exc
        if vm.status == "running" and vm.pending:
            apply_live_device_changes(vm)
        if problem is not None:
            raise problem

    pve._apply_config = applying_device_changes
