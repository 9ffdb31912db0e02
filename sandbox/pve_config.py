"""How PVE checks, applies and shows a VM's config, where fakepve differs.

Installed on a FakePve by sandbox.pve.install_extensions (see the table in sandbox/README.md).

Privileges: qemu-server's `check_vm_modify_config_perm` (API2/Qemu.pm) maps each config key to
the privilege it needs on /vms/<vmid>. fakepve sends every key it does not know, the cloud-init
ones included, to VM.Config.HWType; PVE asks VM.Config.Cloudinit *or* VM.Config.Network for
those, and refuses keys outside its tables to everyone but root@pam.
"""

from __future__ import annotations

import re

from fakepve import FakePve, PveError
from fakepve import schema as pve_schema
from fakepve.server import ok

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
    _hotplug(pve)
    _cpus_from_vcpus(pve)
    _config_reads(pve)


# --- hotplug: what a running VM takes at once, and what waits for its next start ------------

# PVE's default when `hotplug` is unset (or "1"); "0" turns hotplug off.
DEFAULT_HOTPLUG = frozenset({"network", "disk", "usb"})


def hotplug_features(value: object) -> frozenset[str]:
    """The features of a `hotplug` value (qemu-server parse_hotplug_features)."""
    text = "" if value is None else str(value).strip()
    if text in ("", "1"):
        return DEFAULT_HOTPLUG
    if text == "0":
        return frozenset()
    return frozenset(part for part in text.split(",") if part)


def memory_mib(value: object) -> int:
    """MiB from a `memory` value: `2048` or the property string `current=2048`."""
    text = str(value if value is not None else 512)
    for part in text.split(","):
        key, _, number = part.rpartition("=")
        if key in ("", "current"):
            return int(number)
    return 512


def _flag(value: object) -> bool:
    return str(value) in ("1", "true", "True")


def hotplug_pending(vm) -> dict[str, str]:
    """Apply to a running VM what its pending changes allow, as qemu-server's
    vmconfig_hotplug_pending does after every config write; returns the per-key problems.

    The features come from the config as it was before this round (PVE parses them once).
    vcpus: live with `cpu` hotplug, up to cores × sockets. memory: live with `memory` hotplug
    and NUMA on; hot-unplug (less memory) is left for the next start. cpuunits and cpulimit
    are cgroup settings, live. `hotplug` itself changes live unless memory hotplug is on
    already. Everything else (cores, sockets, numa, ...) waits for the next start.
    """
    features = hotplug_features(vm.config.get("hotplug"))
    problems: dict[str, str] = {}
    for key in sorted(vm.pending):
        value = vm.pending[key]
        if value is None:
            continue  # a pending delete: applied at the next start
        if key == "hotplug":
            if "memory" in features:
                continue
        elif key == "vcpus":
            if "cpu" not in features:
                continue
            most = int(vm.config.get("cores", 1)) * int(vm.config.get("sockets", 1))
            if int(value) > most:
                problems[key] = "hotplug problem - you can't add more vcpus than maxcpus"
                continue
        elif key == "memory":
            if "memory" not in features:
                continue
            if not _flag(vm.config.get("numa")):
                problems[key] = "hotplug problem - NUMA needs to be enabled for memory hotplug"
                continue
            if memory_mib(value) < memory_mib(vm.config.get("memory")):
                continue
        elif key not in ("cpuunits", "cpulimit"):
            continue
        vm.config[key] = value
        del vm.pending[key]
    return problems


def _hotplug(pve: FakePve) -> None:
    apply_config = pve._apply_config

    async def hotplugging_apply_config(vm, user, p):
        await apply_config(vm, user, p)
        if vm.status == "running" and vm.pending:
            problems = hotplug_pending(vm)
            if problems:
                raise PveError(400, "Parameter verification failed.", problems)

    pve._apply_config = hotplugging_apply_config


def _cpus_from_vcpus(pve: FakePve) -> None:
    """status/current `cpus` and /cluster/resources `maxcpu`: the vCPUs the VM runs with
    (`vcpus` when set, else cores × sockets), as PVE's vmstatus reports them."""
    usage = pve._vm_usage

    def usage_with_vcpus(vm):
        data = usage(vm)
        if vm.config.get("vcpus"):
            data["maxcpu"] = int(vm.config["vcpus"])
        return data

    pve._vm_usage = usage_with_vcpus


# --- GET .../config as PVE answers it -------------------------------------------------------

CONFIG_PATH = re.compile(r"^/api2/json/nodes/(?P<node>[^/]+)/qemu/(?P<vmid>\d+)/config$")
CONFIG_TEMPLATE = "/nodes/{node}/qemu/{vmid}/config"


def _config_types() -> dict[str, str]:
    returns = pve_schema.load().paths[CONFIG_TEMPLATE]["GET"].get("returns") or {}
    return {
        key: (spec or {}).get("type", "") for key, spec in returns.get("properties", {}).items()
    }


def config_view(vm, *, current: bool, types: dict[str, str]) -> dict:
    """The config with pending changes applied (unless `current`), typed as PVE sends it:
    integers and booleans as numbers (1/0), `memory` a string, the cloud-init password masked."""
    config = dict(vm.config)
    if not current:
        for key, value in vm.pending.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
    for key, value in config.items():
        kind = types.get(re.sub(r"\d+$", "[n]", key)) or types.get(key)
        try:
            if kind in ("integer", "boolean"):
                config[key] = int(_flag(value)) if kind == "boolean" else int(value)
            elif kind == "number":
                config[key] = float(value)
        except (TypeError, ValueError):
            pass  # left as stored: the fake keeps what was sent
    if "memory" in config:
        config["memory"] = str(config["memory"])
    if config.get("cipassword"):
        config["cipassword"] = "**********"
    config["digest"] = vm.digest()
    return config


def _config_reads(pve: FakePve) -> None:
    """fakepve's GET config shows the current values as they were sent (strings); PVE merges
    the pending ones in unless `current=1`. fakepve binds its routes when it starts, so this
    answers the request in front of its route, in the hook every request passes through."""
    answer = pve._answer
    types = _config_types()

    async def config_get(request):
        vm = pve._vm(request, "VM.Audit")
        current = _flag(request.query.get("current", "0"))
        return ok(config_view(vm, current=current, types=types))

    async def answering(request, handler, generic, path_node):
        if request.method == "GET" and CONFIG_PATH.match(request.path):
            handler = config_get
        return await answer(request, handler, generic, path_node)

    pve._answer = answering
