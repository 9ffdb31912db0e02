"""Backups on the demo cluster: vzdump writes an archive to a backup storage, and a VM is
restored from one.

fakepve answers `POST /nodes/{node}/vzdump` from the schema alone (a task that ends OK, with no
archive, no lock and any storage) and refuses `POST /nodes/{node}/qemu` with `archive`. Here
both follow PVE 9 (pve-manager API2/VZDump.pm and PVE/VZDump.pm, qemu-server API2/Qemu.pm
create_vm and restore_vma_archive), as listed in sandbox/README.md: what PVE checks before it
forks the worker answers the request; what the worker finds ends the task. An archive is a
volume of content `backup` holding the VM's config and its disks (sandbox/pve_disks.py), so a
restore brings back exactly what was backed up. Installed by sandbox.pve.install_extensions.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
import uuid

from fakepve import FakePve, PveError, TaskError
from fakepve.model import FakeVm
from fakepve.qemu import drives_of, is_cdrom, join_drive, volume_ref, with_mac
from fakepve.routing import split_list

from sandbox import pve_disks

VZDUMP = "/nodes/{node}/vzdump"
QEMU = "/nodes/{node}/qemu"
GIB = 1024**3
# compress= -> the archive's extension and what it takes of the data read.
COMPRESSION = {
    "0": ("vma", 1.0),
    "1": ("vma.lzo", 0.6),
    "lzo": ("vma.lzo", 0.6),
    "gzip": ("vma.gz", 0.5),
    "zstd": ("vma.zst", 0.45),
}
ROOT_ONLY = ("tmpdir", "dumpdir", "script", "job-id")
GLOBAL_LOCK = "/var/run/vzdump.lock"
# PVE seconds: starting the job and QEMU's backup job, then reading the disks (thin volumes:
# what they use) at about 250 MiB/s; a restore writes them back a little faster.
BACKUP_SECS, BACKUP_SECS_PER_GIB = 4.0, 4.0
RESTORE_SECS, RESTORE_SECS_PER_GIB = 3.0, 3.0
# Config keys an archive leaves out (vzdump writes the current section only, without its lock;
# unused disks are not backed up).
NOT_ARCHIVED = ("lock", "parent", "digest", "snapstate", "snaptime", "vmstate")


def install(pve: FakePve) -> None:
    synthesise = pve.synthesise

    async def answer(match, method, info, user, values):
        if method == "POST" and match.template == VZDUMP:
            return await _vzdump(pve, user, values)
        return await synthesise(match, method, info, user, values)

    pve.synthesise = answer
    checked_answer = pve.answer

    async def answering(request, match, params, user, call=None):
        restore = params.get("archive") and request.method == "POST"
        if restore and match is not None and match.template == QEMU:

            async def restoring(_match, values):
                return await _restore(pve, user, values)

            call = restoring
        return await checked_answer(request, match, params, user, call)

    pve.answer = answering


def _flag(value: object, default: bool = False) -> bool:
    return default if value is None else str(value) in ("1", "true", "True")


def _param_error(**fields: str) -> PveError:
    return PveError(400, "Parameter verification failed.", fields)


# --- vzdump ----------------------------------------------------------------------------------


def _check_vzdump_params(pve: FakePve, user: str, values: dict) -> str:
    """API2/VZDump.pm before the fork; returns the storage the archives go to."""
    root = user.split("!")[0] == "root@pam"
    if values.get("stdout"):
        raise _param_error(stdout="option is only allowed on the command line interface.")
    if not root:
        for key in ROOT_ONLY:
            if key in values:
                raise _param_error(**{key: "Only root may set this option."})
        if any(values.get(key) is not None for key in ("bwlimit", "ionice", "performance")):
            pve.require(user, "/", "Sys.Modify")
    storage = values.get("storage") or "local"  # vzdump.conf's default storage
    if not root and (values.get("prune-backups") or values.get("maxfiles")):
        pve.require(user, f"/storage/{storage}", "Datastore.Allocate")
    if values.get("all") and values.get("vmid"):
        raise _param_error(all="option conflicts with option 'vmid'")
    if not (values.get("all") or values.get("vmid") or values.get("pool")):
        raise _param_error(vmid="property is missing")
    return storage


def _guests(pve: FakePve, node: str, values: dict) -> list[int]:
    """The VMIDs this node backs up: its own; those on other nodes are skipped, unknown ones
    kept (to fail visibly in the task)."""
    if values.get("all"):
        excluded = {int(v) for v in split_list(values.get("exclude"))}
        return sorted(vm.vmid for vm in pve.vms if vm.node == node and vm.vmid not in excluded)
    wanted = [int(v) for v in split_list(values.get("vmid"))]
    if values.get("pool"):
        wanted += sorted(pve.pools.get(values["pool"], set()))
    return [vmid for vmid in wanted if pve.vm(vmid) is None or pve.vm(vmid).node == node]


async def _vzdump(pve: FakePve, user: str, values: dict) -> str:
    node = values["node"]
    storage = _check_vzdump_params(pve, user, values)
    vmids = _guests(pve, node, values)
    if not vmids and not values.get("all"):
        return "OK"  # PVE's silent exit: the guests run on other nodes
    for vmid in vmids:
        pve.require(user, f"/vms/{vmid}", "VM.Backup")
    pve.require(user, f"/storage/{storage}", "Datastore.AllocateSpace")
    compress = str(values.get("compress") or "0")
    command = f"vzdump {' '.join(map(str, vmids))} --mode {values.get('mode') or 'snapshot'}"
    command += f" --storage {storage}" + (f" --compress {compress}" if compress != "0" else "")
    log = TaskLog(pve, f"INFO: starting new backup job: {command}")

    async def body():
        log.attach()
        store = _backup_storage(pve, storage)
        lock = pve.__dict__.setdefault("vzdump_locks", {}).setdefault(node, asyncio.Lock())
        await _global_lock(pve, lock, values, log)
        try:
            errors = 0
            for vmid in vmids:
                errors += not await _back_up(pve, vmid, store, storage, values, log)
            _prune(pve, storage, store, vmids, values, log)
            if errors:
                raise TaskError("job errors")
            log("INFO: Backup job finished successfully")
        finally:
            lock.release()

    tid = vmids[0] if len(vmids) == 1 else ""
    return await pve.task(node, "vzdump", tid, user, body, lock=False, log=[log.marker])


class TaskLog:
    """A task's log written as its worker runs, as PVE's is (fakepve's task body returns one
    note at its end, and a failed one none). The task is started with `marker` as its log;
    the body's first call to attach() finds it by that and writes from then on."""

    def __init__(self, pve: FakePve, first: str) -> None:
        self.pve, self.first = pve, first
        self.marker = f"fakepve-task-{uuid.uuid4()}"
        self.lines: list[str] = []

    def attach(self) -> None:
        for record in reversed(self.pve.tasklog):
            if record["log"][:1] == [self.marker]:
                record["log"][0] = self.first
                self.lines = record["log"]
                return

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def _backup_storage(pve: FakePve, storage: str) -> dict:
    """PVE::VZDump::storage_info, which the worker calls (its die fails the task)."""
    store = pve.storages.get(storage)
    problem = None
    if store is None:
        problem = f"storage '{storage}' does not exist"
    elif "backup" not in split_list(store.get("content")):
        problem = f"can't use storage '{storage}' for backups - wrong content type"
    if problem:
        raise TaskError(f"could not get storage information for '{storage}': {problem}")
    return store


async def _global_lock(pve: FakePve, lock: asyncio.Lock, values: dict, log: TaskLog) -> None:
    """One vzdump at a time per node (getlock on /var/run/vzdump.lock): the next one waits
    up to `lockwait` minutes (default 180)."""
    if not lock.locked():
        await lock.acquire()
        return
    log("INFO: trying to get global lock - waiting...")
    wait = int(values.get("lockwait") or 180) * 60 * pve.time_scale
    try:
        await asyncio.wait_for(lock.acquire(), wait or 0.001)
    except TimeoutError:
        raise TaskError(f"can't acquire lock '{GLOBAL_LOCK}' - got timeout") from None
    log("INFO: got global lock")


async def _back_up(pve, vmid, store, storage, values, log) -> bool:
    """One guest: lock it `backup`, read its disks, write the archive. False on an error
    (logged; the job goes on with the next guest)."""
    log(f"INFO: Starting Backup of VM {vmid} (qemu)")
    vm = pve.vm(vmid)
    try:
        if vm is None:
            raise TaskError(f"unable to find VM '{vmid}'")
        if vm.lock:
            raise TaskError(f"VM is locked ({vm.lock})")
        vm.lock = vm.config["lock"] = "backup"
        try:
            used = pve_disks.used_bytes(pve, vm)
            extension, ratio = COMPRESSION[str(values.get("compress") or "0")]
            size = int(used * ratio)
            if size > store.get("avail", size):
                raise TaskError("vma_queue_write: write error - No space left on device")
            started = time.time()
            name = _archive_name(store, vmid, extension)
            log(f"INFO: creating vzdump archive '{_path(pve, storage, name)}'")
            await pve.pause(BACKUP_SECS + BACKUP_SECS_PER_GIB * used / GIB)
            _store_archive(pve, store, name, vm, size, values)
            took = time.strftime("%H:%M:%S", time.gmtime(time.time() - started))
            log(f"INFO: archive file size: {size / GIB:.2f}GB")
            log(f"INFO: Finished Backup of VM {vmid} ({took})")
        finally:
            vm.lock = None
            vm.config.pop("lock", None)
    except TaskError as exc:
        log(f"ERROR: Backup of VM {vmid} failed - {exc}")
        return False
    return True


def _archive_name(store: dict, vmid: int, extension: str) -> str:
    """backup/vzdump-qemu-<vmid>-<local time>.<ext>; a second backup of the VM within the same
    second (only the stand-in is that fast) is given the next second."""
    volumes = store.setdefault("volumes", {})
    when = time.time()
    while True:
        stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(when))
        name = f"backup/vzdump-qemu-{vmid}-{stamp}.{extension}"
        if name not in volumes:
            return name
        when += 1


def _path(pve: FakePve, storage: str, name: str) -> str:
    return f"{pve._base_path(storage)}/dump/{name.split('/', 1)[1]}"


def _store_archive(pve, store, name, vm, size, values) -> None:
    config = {
        key: value
        for key, value in vm.config.items()
        if key not in NOT_ARCHIVED and not re.fullmatch(r"unused\d+", key)
    }
    disks = {volid: pve_disks.state(pve, volid) for _key, volid, _props in pve_disks.disks(vm)}
    volume = {
        "content": "backup",
        "format": name.split(".", 1)[1],
        "size": size,
        "vmid": vm.vmid,
        "ctime": int(time.time()),
        "archive": {"config": copy.deepcopy(config), "disks": disks},
    }
    notes = _notes(pve, vm, values.get("notes-template"))
    if notes:
        volume["notes"] = notes
    if _flag(values.get("protected")):
        volume["protected"] = True
    store["volumes"][name] = volume
    if "avail" in store:
        store["avail"] -= size


def _notes(pve: FakePve, vm, template: str | None) -> str:
    """The notes-template with {{cluster}}, {{guestname}}, {{node}} and {{vmid}} filled in."""
    if not template:
        return ""
    names = {"cluster": pve.cluster_name, "guestname": vm.name, "node": vm.node, "vmid": vm.vmid}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(names.get(m[1], m[0])), template)


def _prune(pve, storage, store, vmids, values, log) -> None:
    """remove=1 (the default) prunes each guest's backups by `prune-backups` (or the storage's
    own); only keep-last is modelled, and keep-all=1 (PVE's default) keeps everything."""
    if not _flag(values.get("remove"), default=True):
        return
    options = dict(
        part.split("=", 1)
        for part in split_list(values.get("prune-backups") or store.get("prune-backups"))
        if "=" in part
    )
    keep = int(options.get("keep-last") or 0)
    if not keep or options.get("keep-all") == "1":
        return
    for vmid in vmids:
        mine = sorted(
            (vol["ctime"], name)
            for name, vol in store.get("volumes", {}).items()
            if vol.get("content") == "backup"
            and vol.get("vmid") == vmid
            and not vol.get("protected")
        )
        for _ctime, name in mine[:-keep]:
            volume = store["volumes"].pop(name)
            if "avail" in store:
                store["avail"] += int(volume.get("size") or 0)
            log(f"INFO: prune older backups with retention: keep-last={keep}")
            log(f"INFO: removing backup '{storage}:{name}'")


# --- restore ---------------------------------------------------------------------------------


def _archive(pve: FakePve, user: str, volid: str) -> dict:
    """The archive volume, after PVE's check_volume_access (die "can't find file" if it is
    not there)."""
    sid, name = volume_ref(volid)
    if sid is None or sid not in pve.storages:
        raise PveError(500, f"can't find file '{volid}'")
    store = pve.storages[sid]
    vtype, owner, _fmt = pve._parse_volname(store, name)
    pve._check_access(user, sid, vtype, owner, volid)
    volume = store.get("volumes", {}).get(name)
    if volume is None or "archive" not in volume:
        raise PveError(500, f"can't find file '{volid}'")
    return volume["archive"]


async def _restore(pve: FakePve, user: str, values: dict) -> str:
    node, vmid = values["node"], int(values["vmid"])
    emsg = f"unable to restore VM {vmid} -"
    pve.need_quorum()
    vm = pve.vm(vmid)
    force = _flag(values.get("force"))
    # Restoring over an existing VM needs VM.Backup on it; anything else VM.Allocate.
    if not (vm is not None and force and pve.allowed(user, f"/vms/{vmid}", "VM.Backup")):
        pve._qm_perm(user, vmid, values.get("pool"), "VM.Allocate")
    if values.get("storage"):
        pve.require(user, f"/storage/{values['storage']}", "Datastore.AllocateSpace")
    archive = _archive(pve, user, values["archive"])
    existed = vm is not None
    if existed:
        if not force or vm.node != node:
            raise PveError(500, f"{emsg} VM {vmid} already exists on node '{vm.node}'")
        if str(vm.config.get("protection")) == "1":
            raise PveError(500, f"{emsg} protection mode enabled")
        if vm.status == "running":
            raise PveError(500, f"{emsg} vm is running")
        if vm.lock:
            raise PveError(500, f"{emsg} VM is locked ({vm.lock})")
    else:
        vm = FakeVm(vmid, f"VM {vmid}", node=node)
        pve.vms.append(vm)
    vm.lock = vm.config["lock"] = "create"
    log = TaskLog(pve, f"restore vma archive: {values['archive']}")

    async def body():
        log.attach()
        made: list[str] = []
        try:
            _wipe(pve, vm)
            config = {k: v for k, v in archive["config"].items() if not _is_disk(k, v)}
            for key, volid, props in drives_of(archive["config"]):
                config[key] = _restored_drive(pve, user, vm, volid, props, archive, values, made)
            for volid in made:
                log(f"new volume ID is '{volid}'")
            if _flag(values.get("unique")):
                for key in [k for k in config if re.fullmatch(r"net\d+", k)]:
                    config[key] = with_mac(config[key], fresh=True)
            used = sum(disk["used"] for disk in archive["disks"].values())
            await pve.pause(RESTORE_SECS + RESTORE_SECS_PER_GIB * used / GIB)
        except (PveError, TaskError) as exc:
            for volid in made:
                pve._qm_free(volid)
            vm.config, vm.lock = {}, None
            if not existed:
                pve.vms.remove(vm)
            raise TaskError(f"{emsg} {getattr(exc, 'message', None) or exc}") from exc
        vm.config, vm.pending = config, {}
        vm.name = config.get("name") or f"VM {vmid}"
        vm.status = vm.qmpstatus = "stopped"
        vm.lock = None
        log("rescan volumes...")
        if _flag(values.get("start")):
            vm.status = vm.qmpstatus = "running"
            vm.started_at = time.time()

    return await pve.task(node, "qmrestore", vmid, user, body, vm=vm, lock=False, log=[log.marker])


def _is_disk(key: str, value: str) -> bool:
    return any(k == key for k, _v, _p in drives_of({key: value}))


def _wipe(pve: FakePve, vm) -> None:
    """What restoring over an existing VM destroys first (destroy_vm, keeping an empty config):
    every volume the VM owns, its snapshots' included."""
    for sid, store in pve.storages.items():
        for name, volume in list(store.get("volumes", {}).items()):
            if volume.get("vmid") == vm.vmid and volume.get("content") == "images":
                pve._qm_free(f"{sid}:{name}")
    vm.snapshots = {}
    vm.__dict__.pop("snapshot_disks", None)


def _restored_drive(pve, user, vm, volid, props, archive, values, made) -> str:
    """A drive of the archive's config on a new volume: the disk as backed up, or a fresh
    cloud-init drive (vzdump leaves the cloud-init drive out; restore makes a new one)."""
    sid, name = volume_ref(volid)
    if sid is None or (is_cdrom(volid, props) and "cloudinit" not in name):
        return join_drive(volid, props)  # no volume (cdrom, none) or an ISO
    target = values.get("storage") or sid
    if user.split("!")[0] != "root@pam":
        pve.require(user, f"/storage/{target}", "Datastore.AllocateSpace")
    store = pve.storages.get(target)
    if store is None:
        raise TaskError(f"storage '{target}' does not exist")
    if "images" not in split_list(store.get("content")):
        raise TaskError(f"storage '{target}' does not support vm images")
    if is_cdrom(volid, props):
        new, _fmt = pve._qm_alloc(target, vm.vmid, None, 4 * 1024**2)
        made.append(new)
        new_name = f"vm-{vm.vmid}-cloudinit"
        volumes = store["volumes"]
        volumes[new_name] = volumes.pop(volume_ref(new)[1])
        return join_drive(f"{target}:{new_name}", props)
    kept = archive["disks"][volid]
    new, _fmt = pve._qm_alloc(target, vm.vmid, None, kept["size"])
    made.append(new)
    pve_disks.put(pve, new, kept)
    return join_drive(new, props)
