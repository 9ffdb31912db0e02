"""How PVE checks and applies a change to a VM's config, where fakepve differs.

Installed on a FakePve by sandbox.pve.install_extensions (see the table in sandbox/README.md).

Privileges: qemu-server's `check_vm_modify_config_perm` (API2/Qemu.pm) maps each config key to
the privilege it needs on /vms/<vmid>. fakepve sends every key it does not know, the cloud-init
ones included, to VM.Config.HWType; PVE asks VM.Config.Cloudinit *or* VM.Config.Network for
those, and refuses keys outside its tables to everyone but root@pam.
"""

from __future__ import annotations

import re

from fakepve import FakePve, PveError

CPU = {"cores", "cpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus", "affinity"}
MEMORY = {"memory", "balloon", "shares"}
HWTYPE = {"acpi", "hotplug", "kvm", "machine", "scsihw", "smbios1", "tablet", "vga", "watchdog"}
HWTYPE |= {"audio0"}
OPTIONS = {"agent", "autostart", "bios", "description", "keyboard", "localtime", "name"}
OPTIONS |= {"migrate_downtime", "migrate_speed", "onboot", "ostype", "protection", "reboot"}
OPTIONS |= {"startdate", "startup", "tdf", "template", "tags"}
CLOUDINIT = {"cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver"}
CLOUDINIT |= {"searchdomain", "sshkeys"}
DISK_OPTIONS = {"boot", "bootdisk", "vmstatestorage"}
# Checked elsewhere in PVE, by their value (drives, serial ports, USB, PCI passthrough).
DEVICE = re.compile(r"^(?:ide|sata|scsi|virtio|efidisk|tpmstate|unused|serial|usb|hostpci)\d+$")
ROOT_ONLY = "root"


def config_privilege(key: str) -> str | tuple[str, ...]:
    """The privilege a change of `key` needs; a tuple means any one of them will do."""
    if DEVICE.match(key) or key == "cdrom":
        return "VM.Config.Disk"  # fakepve's own checks of drives (CDROM for media=cdrom) follow
    if key in CPU or re.fullmatch(r"numa\d+", key):
        return "VM.Config.CPU"
    if key in MEMORY:
        return "VM.Config.Memory"
    if key in HWTYPE:
        return "VM.Config.HWType"
    if key in OPTIONS:
        return "VM.Config.Options"
    if key in DISK_OPTIONS:
        return "VM.Config.Disk"
    if re.fullmatch(r"net\d+", key):
        return "VM.Config.Network"
    if key in CLOUDINIT or re.fullmatch(r"ipconfig\d+", key):
        return ("VM.Config.Cloudinit", "VM.Config.Network")
    return ROOT_ONLY  # args, hookscript, lock, ...: "only root can set '<key>' config"


def install(pve: FakePve) -> None:
    require = pve.require

    def require_any(user: str, path: str, priv: str | tuple[str, ...]) -> None:
        if isinstance(priv, str):
            return require(user, path, priv)
        if not any(pve.allowed(user, path, one) for one in priv):
            # PVE names every privilege that would have done (RPCEnvironment check_any).
            raise PveError(403, f"Permission check failed ({path}, {'|'.join(priv)})")
        return None

    pve.require = require_any
    pve._config_priv = config_privilege
