"""The demo Proxmox VE cluster: fakepve with our nodes, storages, templates and API token.

    python -m sandbox.pve prepare   # TLS cert/key and var/fakepve/cluster.json (for seed_demo)
    python -m sandbox.pve serve     # https://127.0.0.1:$FAKEPVE_PORT (default 8006)

Tests use populate() and install_extensions() on fakepve's `fakepve` fixture. Development only:
the portal's apps never import this module, and fakepve is in the dev extra. The README next
to this file lists every extension made to fakepve and the PVE behaviour it follows.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import secrets
import signal
import string
import time
import uuid
import warnings
from collections import namedtuple
from pathlib import Path

from fakepve import FakePve, PveError, TaskError
from fakepve.lxc import SIZE_UNITS, format_size
from fakepve.qemu import drives_of, join_drive, split_drive

from sandbox import (
    pve_backups,
    pve_config,
    pve_console,
    pve_disks,
    pve_firewall,
    pve_guests,
    pve_limits,
    pve_migrate,
)

# ------------------------------------------------------------------------ the demo cluster

CLUSTER_NAME = "fra1"
LOCATION = {"code": "eu-central-1", "name": "Frankfurt", "country": "DE"}
HOST = "127.0.0.1"
DEFAULT_PORT = 8006
TOKEN_ID = "root@pam!portal"
GIB = 1024**3
MIB = 1024**2

NodeSpec = namedtuple("NodeSpec", "name cores memory_mib")
# capacity_gib is per node: both pools are node-local LVM-thin pools.
StorageSpec = namedtuple("StorageSpec", "name type storage_class capacity_gib")
# template_disk: the cloud image's own size, as PVE writes it in size=.
ImageSpec = namedtuple("ImageSpec", "slug name family default_user min_disk_gib template_disk")
TemplateSpec = namedtuple("TemplateSpec", "image node vmid storage")

# Identical nodes: fakepve reports one size for every node (see _node_stats below).
NODES = tuple(
    NodeSpec(name, cores=32, memory_mib=128 * 1024) for name in ("pve-a", "pve-b", "pve-c")
)
STORAGES = (
    StorageSpec("nvme", "lvmthin", "nvme", capacity_gib=3_500),
    StorageSpec("bulk", "lvmthin", "bulk", capacity_gib=14_000),
)
# Backups go to PVE's own `local` (a directory storage with content backup).
BACKUP_STORAGE = "local"
IMAGES = (
    ImageSpec("debian-12", "Debian 12", "debian", "debian", 10, "3G"),
    ImageSpec("ubuntu-24-04", "Ubuntu 24.04", "ubuntu", "ubuntu", 10, "3584M"),
    ImageSpec("almalinux-9", "AlmaLinux 9", "almalinux", "almalinux", 10, "10G"),
    ImageSpec("rocky-9", "Rocky Linux 9", "rocky", "rocky", 10, "10G"),
)
# The NVMe pool is node-local, so every node keeps its own copy of each template (9001-9004 on
# pve-a, 9101-9104 on pve-b, ...): a linked clone needs the template's base volume on the same
# storage, and PVE only clones to another node through shared storage.
TEMPLATE_STORAGE = "nvme"
TEMPLATES = tuple(
    TemplateSpec(image.slug, node.name, 9001 + 100 * n + i, TEMPLATE_STORAGE)
    for n, node in enumerate(NODES)
    for i, image in enumerate(IMAGES)
)

# PVE seconds (time_scale turns them into real ones). Task types without a knob of their own in
# fakepve take their time here; guests get start/shutdown/stop times when they are created.
TASK_SECS = {"qmclone": 4.0, "resize": 1.0, "qmdestroy": 2.0}
START_SECS = 12.0  # QEMU up, then the guest boots and runs cloud-init
SHUTDOWN_SECS = 6.0
STOP_SECS = 1.0
CLOUDINIT_SIZE = 4 * MIB
SIZE = re.compile(r"(\+)?(\d+(?:\.\d+)?)([KMGT])?")
# What an idle demo node uses itself (PVE, ZFS ARC limits, ...), in /nodes and node status.
NODE_USED_MEMORY = 6 * GIB

# -------------------------------------------------------------------------- populate


def populate(pve: FakePve, *, token_secret: str) -> None:
    """Build the demo cluster into a fresh FakePve: nodes, storages, templates and the token."""
    pve.cluster_name = CLUSTER_NAME
    pve.nodes.clear()
    for node in NODES:
        pve.add_node(node.name)
    # A real node keeps `local` for ISOs and backups; `local-lvm` is replaced by our pools.
    pve.storages.pop("local-lvm", None)
    for spec in STORAGES:
        pve.storages[spec.name] = {
            "type": spec.type,
            "vgname": spec.name,
            "thinpool": "data",
            "content": "images,rootdir",
            "active": 1,
            "files": set(),
            "volumes": {},
            "total": spec.capacity_gib * GIB,
        }
    images = {image.slug: image for image in IMAGES}
    for template in TEMPLATES:
        _add_template(pve, template, images[template.image])
    pve.apitokens[TOKEN_ID] = token_secret
    pve_firewall.datacenter_firewall_on(pve)  # as the README tells operators to


def _add_template(pve: FakePve, template: TemplateSpec, image: ImageSpec) -> None:
    """A cloud-init template as `qm template` leaves it: a base volume and a cloud-init drive."""
    vmid, sid = template.vmid, template.storage
    volumes = pve.storages[sid]["volumes"]
    disk, cloudinit = f"base-{vmid}-disk-0", f"vm-{vmid}-cloudinit"
    now = int(time.time())
    volumes[disk] = _volume(vmid, _bytes(image.template_disk), now)
    volumes[cloudinit] = _volume(vmid, CLOUDINIT_SIZE, now)
    config = {
        "name": f"tpl-{image.slug}",
        "ostype": "l26",
        "cpu": "x86-64-v2-AES",
        "cores": 1,
        "sockets": 1,
        "memory": "2048",
        "scsihw": "virtio-scsi-single",
        "scsi0": f"{sid}:{disk},discard=on,iothread=1,size={image.template_disk}",
        "ide2": f"{sid}:{cloudinit},media=cdrom",
        "boot": "order=scsi0",
        "net0": f"virtio={_mac(vmid)},bridge=vmbr0",
        "agent": "1",
        "serial0": "socket",
        "vga": "serial0",
        "smbios1": f"uuid={uuid.uuid4()}",
        "vmgenid": str(uuid.uuid4()),
        "template": 1,
    }
    pve.add_vm(vmid, config["name"], node=template.node, config=config, template=True)


def _volume(vmid: int, size: int, ctime: int) -> dict:
    return {"content": "images", "format": "raw", "size": size, "vmid": vmid, "ctime": ctime}


def _mac(vmid: int) -> str:
    # BC:24:11 is Proxmox's own OUI, the prefix PVE gives generated MACs.
    return f"BC:24:11:10:{vmid // 256 % 256:02X}:{vmid % 256:02X}"


def _bytes(size: str, current: int = 0) -> int:
    """Bytes in a PVE size (32G, 3584M); a leading + adds to current, as resize takes it."""
    found = SIZE.fullmatch(size)
    if not found:
        raise ValueError(f"not a PVE size: {size!r}")
    requested = float(found[2]) * SIZE_UNITS.get(found[3] or "", 1)
    return int(requested + current if found[1] else requested)


# ------------------------------------------------------------------------ extensions

RESIZE = "/nodes/{node}/qemu/{vmid}/resize"
NODE_STATUS = "/nodes/{node}/status"
# PVE leaves a cipassword that already is a crypt hash alone (Qemu.pm, update_vm_api).
CRYPT_HASH = re.compile(r"^\$(?:[156]|2[ay])(\$.+){2}")
CRYPT_SALT = string.ascii_letters + string.digits + "./"


def install_extensions(pve: FakePve) -> None:
    """Teach a FakePve (started or not) what PVE does and fakepve 0.5 does not: see README.md.

    Every hook is a method fakepve calls through `self` at request time, so wrapping it on the
    instance works after the routes are built (the pytest fixture starts the fake first).
    """
    if getattr(pve, "sandbox_extensions", False):
        return
    pve.sandbox_extensions = True
    _extend_generic_answers(pve)
    _extend_tasks(pve)
    _extend_config_writes(pve)
    _extend_node_stats(pve)
    pve_config.install(pve)
    pve_guests.install(pve)
    pve_migrate.install(pve)
    pve_disks.install(pve)
    pve_backups.install(pve)
    pve_firewall.install(pve)
    pve_limits.install(pve)
    pve_console.install(pve)


def _extend_generic_answers(pve: FakePve) -> None:
    # fakepve answers these from the schema alone: resize gives a UPID and changes nothing,
    # node status shows 0 CPUs and 0 bytes of RAM.
    synthesise = pve.synthesise

    async def answer(match, method, info, user, values):
        if method == "PUT" and match.template == RESIZE:
            return await _resize(pve, user, values)
        data = await synthesise(match, method, info, user, values)
        if method == "GET" and match.template == NODE_STATUS:
            _describe_node(data, values["node"])
        return data

    pve.synthesise = answer


def _extend_tasks(pve: FakePve) -> None:
    task = pve.task

    async def timed_task(node, ttype, tid, user, body, vm=None, lock=True, log=()):
        if ttype in ("qmclone", "qmcreate") and vm is not None:  # a new guest: how it boots
            vm.start_secs, vm.shutdown_secs, vm.stop_secs = START_SECS, SHUTDOWN_SECS, STOP_SECS

        async def timed_body():
            await pve.pause(TASK_SECS.get(ttype, 0))
            note = await body()
            if ttype == "qmclone" and vm is not None:
                _own_cloudinit_drive(pve, vm)
            return note

        return await task(node, ttype, tid, user, timed_body, vm=vm, lock=lock, log=log)

    pve.task = timed_task


def _own_cloudinit_drive(pve: FakePve, vm) -> None:
    """PVE copies a cloud-init drive on every clone (vm-<newid>-cloudinit); fakepve shares the
    template's, whose volume the first destroyed clone would then free."""
    disks = [volume for _key, volume, _props in drives_of(vm.config, skip_cdrom=True)]
    for key, value in list(vm.config.items()):
        volume, props = split_drive(value)
        sid, _, name = volume.partition(":")
        if props.get("media") != "cdrom" or sid not in pve.storages:
            continue
        found = pve._volumes(sid).get(name) or {}
        if found.get("content") != "images" or found.get("vmid") == vm.vmid:
            continue  # an ISO, or already ours
        # Like the clone's disks: on the clone's storage when `storage` moved them.
        target = disks[0].partition(":")[0] if disks else sid
        new_name = f"vm-{vm.vmid}-cloudinit"
        pve.storages[target].setdefault("volumes", {})[new_name] = _volume(
            vm.vmid, CLOUDINIT_SIZE, int(time.time())
        )
        vm.config[key] = join_drive(f"{target}:{new_name}", props)


def _extend_config_writes(pve: FakePve) -> None:
    apply_config = pve._apply_config

    async def hashing_apply_config(vm, user, p):
        password = p.get("cipassword")
        if password and not CRYPT_HASH.match(str(password)):
            p = dict(p, cipassword=_encrypt_pw(str(password)))
        return await apply_config(vm, user, p)

    pve._apply_config = hashing_apply_config


def _encrypt_pw(password: str) -> str:
    """PVE::Tools::encrypt_pw: SHA-256 crypt with a random salt."""
    with warnings.catch_warnings():
        # Python 3.12 still has crypt (the project pins 3.12); PVE's hash format needs it.
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    salt = "".join(secrets.choice(CRYPT_SALT) for _ in range(16))
    return crypt.crypt(password, f"$5${salt}$")


def _extend_node_stats(pve: FakePve) -> None:
    # fakepve reports 4 cores and 8 GiB for every node; ours are bigger (and all alike).
    node = NODES[0]

    stats = {"cpu": 0.03, "maxcpu": node.cores, "mem": NODE_USED_MEMORY}
    stats.update(maxmem=node.memory_mib * MIB, disk=5 * GIB, maxdisk=98 * GIB, uptime=864_000)

    def node_stats(online):
        return dict(stats) if online else {}

    pve._node_stats = node_stats


def _describe_node(status: dict, name: str) -> None:
    node = next((n for n in NODES if n.name == name), None)
    if node is None:
        return
    total, used = node.memory_mib * MIB, NODE_USED_MEMORY
    status["cpuinfo"].update(
        cpus=node.cores, cores=node.cores, sockets=1, model="AMD EPYC 9354P 32-Core Processor"
    )
    status["memory"].update(total=total, used=used, free=total - used, available=total - used)


async def _resize(pve: FakePve, user: str, values: dict) -> str:
    """PUT /nodes/{node}/qemu/{vmid}/resize (qemu-server API2/Qemu.pm resize_vm, PVE 8+).

    Only the skiplock check comes before the fork; everything else fails the task.
    """
    if values.get("skiplock") and user.split("!")[0] != "root@pam":
        raise PveError(
            400, "Parameter verification failed.", {"skiplock": "Only root may use this option."}
        )
    node, vmid = values["node"], int(values["vmid"])
    vm = pve.vm(vmid)
    vm = vm if vm is not None and vm.node == node else None

    async def body():
        if vm is None:
            raise TaskError(
                f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        try:
            await _grow_disk(pve, user, vm, values)
        except PveError as e:
            raise TaskError(e.message) from e

    return await pve.task(node, "resize", vmid, user, body, vm=vm)


async def _grow_disk(pve: FakePve, user: str, vm, values: dict) -> None:
    disk, digest = values["disk"], values.get("digest")
    if digest and digest != vm.digest():
        raise TaskError("checksum mismatch (file change by other user?)")
    if vm.lock and not values.get("skiplock"):
        raise TaskError(f"VM is locked ({vm.lock})")
    if not vm.config.get(disk):
        raise TaskError(f"disk '{disk}' does not exist")
    volume, props = split_drive(vm.config[disk])
    if not volume or volume == "none":
        raise TaskError(f"disk '{disk}' has no associated volume")
    if props.get("media") == "cdrom" or volume == "cdrom":
        raise TaskError("you can't resize a cdrom")
    sid, _, name = volume.partition(":")
    store = pve._store(sid)
    pve.require(user, "/storage/" + sid, "Datastore.AllocateSpace")
    size = int((pve._volumes(sid).get(name) or {}).get("size") or _bytes(props.get("size", "0")))
    new_size = _bytes(values["size"], current=size)
    if new_size < size:
        raise TaskError("shrinking disks is not supported")
    if new_size == size:
        return
    await pve.ceph_io(vm, [disk])
    _resize_volume(store, sid, name, size, new_size)
    vm.config[disk] = join_drive(volume, dict(props, size=format_size(new_size)))


def _resize_volume(store: dict, sid: str, name: str, size: int, new_size: int) -> None:
    growth = new_size - size
    if growth > store.get("avail", growth):  # only where fakepve tracks free space
        raise TaskError(f"unable to write to storage '{sid}': No space left on device")
    if "avail" in store:
        store["avail"] -= growth
    if name in store.get("volumes", {}):
        store["volumes"][name]["size"] = new_size


# ------------------------------------------------------------------ prepare and serve


def fakepve_dir(var_dir: Path | None = None) -> Path:
    """<var_dir>/fakepve; var_dir defaults to $VAR_DIR, else ./var (as the portal's settings)."""
    return Path(var_dir or os.environ.get("VAR_DIR", "var")) / "fakepve"


def default_port() -> int:
    return int(os.environ.get("FAKEPVE_PORT", DEFAULT_PORT))


def prepare(*, var_dir: Path | None = None, port: int | None = None) -> dict:
    """Make the TLS certificate if missing or expired and (re)write cluster.json; returns it.

    The token secret and the certificate are made once and kept, so the rows seed_demo wrote
    stay valid across runs.
    """
    directory = fakepve_dir(var_dir)
    directory.mkdir(parents=True, exist_ok=True)
    cert, _key = ensure_certificate(directory)
    path = directory / "cluster.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    facts = cluster_facts(
        api_url=f"https://{HOST}:{port or default_port()}",
        token_secret=old.get("token_secret") or str(uuid.uuid4()),
        ca_pem=cert.read_text(),
    )
    # The file holds the token secret: owner only, whatever the umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(facts, out, indent=2)
    os.chmod(path, 0o600)
    return facts


def cluster_facts(*, api_url: str, token_secret: str, ca_pem: str) -> dict:
    """What seed_demo needs to make rows that match the demo cluster (cluster.json)."""
    return {
        "name": CLUSTER_NAME,
        "api_url": api_url,
        "token_id": TOKEN_ID,
        "token_secret": token_secret,
        "ca_pem": ca_pem,
        "backup_storage": BACKUP_STORAGE,
        "location": dict(LOCATION),
        "nodes": [
            dict(node._asdict(), storage_gib={s.name: s.capacity_gib for s in STORAGES})
            for node in NODES
        ],
        "storages": [
            {"name": s.name, "type": s.type, "storage_class": s.storage_class} for s in STORAGES
        ],
        "images": [dict(image._asdict(), display_order=n) for n, image in enumerate(IMAGES)],
        "templates": [template._asdict() for template in TEMPLATES],
    }


def ensure_certificate(directory: Path) -> tuple[Path, Path]:
    """fakepve.crt/.key in directory: kept while valid for another day, made anew otherwise."""
    from cryptography import x509
    from fakepve.certs import make_cert

    cert, key = directory / "fakepve.crt", directory / "fakepve.key"
    if cert.exists() and key.exists():
        expires = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
        if expires > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1):
            return cert, key
    made_cert, made_key, _ = make_cert(str(directory), name="fakepve", hosts=(HOST,))
    return Path(made_cert), Path(made_key)


def serve(*, var_dir: Path | None = None, port: int | None = None, time_scale: float = 1.0):
    """Serve the demo cluster on https://127.0.0.1:<port> until SIGINT or SIGTERM."""
    port = port or default_port()
    facts = prepare(var_dir=var_dir, port=port)
    asyncio.run(_serve(facts, fakepve_dir(var_dir), port, time_scale))


async def _serve(facts: dict, directory: Path, port: int, time_scale: float) -> None:
    # Only the token is meant to be used; the password login gets a throwaway password.
    pve = FakePve(password=secrets.token_urlsafe(16), host=HOST, port=port)
    pve.time_scale = time_scale
    install_extensions(pve)
    populate(pve, token_secret=facts["token_secret"])
    await pve.start(str(directory / "fakepve.crt"), str(directory / "fakepve.key"))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    print(f"[fakepve] {CLUSTER_NAME} on {pve.url}, time scale {time_scale}", flush=True)
    await stopping.wait()
    await pve.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.pve", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("prepare", "write the certificate and cluster.json"), ("serve", "run it")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--var-dir", type=Path, help="default: $VAR_DIR or var")
        command.add_argument("--port", type=int, help="default: $FAKEPVE_PORT or 8006")
    commands.choices["serve"].add_argument(
        "--time-scale", type=float, default=1.0, help="real s per PVE s; 0: tasks end at once"
    )
    args = parser.parse_args(argv)
    if args.command == "prepare":
        facts = prepare(var_dir=args.var_dir, port=args.port)
        print(f"[fakepve] wrote {fakepve_dir(args.var_dir)}/cluster.json for {facts['api_url']}")
        return 0
    serve(var_dir=args.var_dir, port=args.port, time_scale=args.time_scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
