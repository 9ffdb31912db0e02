"""Moving VMs and disks on the demo cluster: live migration to another node and moving a disk to
another storage, which fakepve answers from the schema alone (a UPID, and nothing moves).

Installed on a FakePve by sandbox.pve.install_extensions; each behaviour follows qemu-server
(API2/Qemu.pm migrate_vm and move_vm_disk, QemuMigrate.pm) and the PVE 9 schema, as listed in
sandbox/README.md. Checks PVE makes before it forks the worker answer the request; those the
migration makes once it runs end the task with `migration aborted ...: <reason>`.
"""

from __future__ import annotations

from fakepve import FakePve, PveError, TaskError
from fakepve.qemu import drives_of, is_cdrom, join_drive, volume_ref

MIGRATE = "/nodes/{node}/qemu/{vmid}/migrate"
MOVE_DISK = "/nodes/{node}/qemu/{vmid}/move_disk"
GIB = 1024**3
# PVE seconds: setting up the tunnel and the last pass of RAM, plus copying local disks (what a
# 10 Gbit/s migration network moves, thin volumes counting what they use).
MIGRATE_SECS = 6.0
COPY_SECS_PER_GIB = 0.05


def install(pve: FakePve) -> None:
    synthesise = pve.synthesise
    answers = {("POST", MIGRATE): _migrate, ("GET", MIGRATE): _preconditions}
    answers[("POST", MOVE_DISK)] = _move_disk

    async def answer(match, method, info, user, values):
        handler = answers.get((method, match.template))
        if handler is None:
            return await synthesise(match, method, info, user, values)
        return await handler(pve, user, values)

    pve.synthesise = answer


def _flag(value: object) -> bool:
    return str(value) in ("1", "true", "True")


def _vm_on(pve: FakePve, values: dict):
    return pve.find(values["node"], int(values["vmid"]))


def local_disks(pve: FakePve, vm) -> list[tuple[str, str, dict]]:
    """(key, volume, options) of the VM's disks on storage that is not shared."""
    found = []
    for key, volume, props in drives_of(vm.config):
        sid, _name = volume_ref(volume)
        if sid and not pve.storages.get(sid, {}).get("shared"):
            found.append((key, volume, props))
    return found


def storage_on_node(pve: FakePve, sid: str, node: str) -> bool:
    """A storage is on every node unless its `nodes` option restricts it (storage.cfg)."""
    store = pve.storages.get(sid)
    if store is None or not store.get("active", 1):
        return False
    nodes = [n for n in str(store.get("nodes") or "").split(",") if n]
    return not nodes or node in nodes


def target_storages(value: object, sources: set[str]) -> dict[str, str]:
    """`targetstorage` (storage-pair-list): "1" maps each storage to itself, a single id maps
    every source to it, "src:dst,..." pairs map one by one (unmapped sources stay)."""
    text = str(value or "").strip()
    mapping = {sid: sid for sid in sources}
    if not text or text == "1":
        return mapping
    pairs = [part for part in text.split(",") if part]
    if len(pairs) == 1 and ":" not in pairs[0]:
        return {sid: pairs[0] for sid in sources}
    for pair in pairs:
        src, _, dst = pair.partition(":")
        mapping[src] = dst or src
    return mapping


def _disk_secs(pve: FakePve, volumes: list[str]) -> float:
    size = 0
    for volume in volumes:
        sid, name = volume_ref(volume)
        size += int((pve.storages.get(sid, {}).get("volumes", {}).get(name) or {}).get("size") or 0)
    return COPY_SECS_PER_GIB * size / GIB


async def _migrate(pve: FakePve, user: str, values: dict) -> str:
    node, target = values["node"], values["target"]
    if target not in pve.nodes:
        raise PveError(500, f"no such cluster node '{target}'")
    if target == node:
        raise PveError(400, "Parameter verification failed.", {"target": "target is local node."})
    if _flag(values.get("force")) and user.split("!")[0] != "root@pam":
        raise PveError(
            400, "Parameter verification failed.", {"force": "Only root may use this option."}
        )
    pve.need_quorum()
    vm = _vm_on(pve, values)
    running = vm.status == "running"
    if running and not _flag(values.get("online")):
        raise PveError(500, "can't migrate running VM without --online")
    disks = local_disks(pve, vm)
    mapping = target_storages(
        values.get("targetstorage"), {volume_ref(v)[0] for _k, v, _p in disks}
    )
    for sid in set(mapping.values()):
        pve.require(user, f"/storage/{sid}", "Datastore.AllocateSpace")

    async def body():
        if vm.lock:
            raise TaskError(f"migration aborted: VM is locked ({vm.lock})")
        if not pve.nodes[target].get("online", True):
            raise TaskError(
                "migration aborted: Can't connect to destination address using public key"
            )
        if running and disks and not _flag(values.get("with-local-disks")):
            raise TaskError(
                "migration aborted: can't live migrate attached local disks without "
                "with-local-disks option"
            )
        for sid in sorted(set(mapping.values())):
            if not storage_on_node(pve, sid, target):
                raise TaskError(f"migration aborted: storage '{sid}' is not available on {target}")
        vm.lock = "migrate"
        try:
            await pve.pause(MIGRATE_SECS + _disk_secs(pve, [v for _k, v, _p in disks]))
            error = getattr(vm, "migrate_error", None)
            if error:
                raise TaskError(f"migration problems: {error}")
            for key, volume, props in disks:
                sid, name = volume_ref(volume)
                if mapping[sid] != sid:
                    vm.config[key] = join_drive(_copy_volume(pve, vm, volume, mapping[sid]), props)
                    pve._qm_free(volume)
            vm.node = target
        finally:
            vm.lock = None
        return "migration finished successfully"

    return await pve.task(node, "qmigrate", vm.vmid, user, body, vm=vm)


def _copy_volume(pve: FakePve, vm, volume: str, sid: str) -> str:
    """A new volume of the same size on storage `sid`; returns its id."""
    old_sid, name = volume_ref(volume)
    size = int((pve.storages[old_sid].get("volumes", {}).get(name) or {}).get("size") or 0)
    try:
        volid, _fmt = pve._qm_alloc(sid, vm.vmid, None, size)
    except PveError as exc:
        raise TaskError(exc.message) from exc
    return volid


async def _preconditions(pve: FakePve, user: str, values: dict) -> dict:
    """GET .../migrate: whether the VM runs, which nodes it may go to, its local disks."""
    vm = _vm_on(pve, values)
    disks = local_disks(pve, vm)
    used = {volume_ref(v)[0] for _k, v, _p in drives_of(vm.config) if volume_ref(v)[0]}
    allowed, not_allowed = [], {}
    for node, state in sorted(pve.nodes.items()):
        if node == vm.node or not state.get("online", True):
            continue
        missing = sorted(sid for sid in used if not storage_on_node(pve, sid, node))
        if missing:
            not_allowed[node] = {"unavailable_storages": missing}
        else:
            allowed.append(node)
    local = []
    for key, volume, props in disks:
        sid, name = volume_ref(volume)
        size = int((pve.storages[sid].get("volumes", {}).get(name) or {}).get("size") or 0)
        local.append(
            {
                "volid": volume,
                "size": size,
                "cdrom": int(is_cdrom(volume, props)),
                "is_unused": int(key.startswith("unused")),
                "drivename": key,
            }
        )
    return {
        "running": int(vm.status == "running"),
        "allowed_nodes": allowed,
        "not_allowed_nodes": not_allowed,
        "local_disks": local,
        "local_resources": [],
        "mapped-resources": [],
        "mapped-resource-info": {},
        "has-dbus-vmstate": 1,
    }


async def _move_disk(pve: FakePve, user: str, values: dict) -> str:
    """POST .../move_disk to another storage (moving a disk to another VM is left to fakepve's
    schema answer: the portal does not do it)."""
    vm = _vm_on(pve, values)
    disk, storage = values["disk"], values.get("storage")
    if values.get("target-vmid") or not storage:
        raise PveError(400, "Parameter verification failed.", {"storage": "property is missing"})
    if disk not in vm.config:
        raise PveError(500, f"disk '{disk}' does not exist")
    volume, props = next(((v, p) for k, v, p in drives_of(vm.config) if k == disk), (None, {}))
    if volume is None or is_cdrom(volume, props):
        raise PveError(500, "you can't move a cdrom")
    sid, _name = volume_ref(volume)
    if sid == storage and not values.get("format"):
        raise PveError(500, "you can't move to the same storage with same format")
    store = pve._store(storage)
    if "images" not in str(store.get("content", "")).split(","):
        raise PveError(500, f"storage '{storage}' does not support vm images")
    pve.require(user, f"/storage/{storage}", "Datastore.AllocateSpace")
    pve._check_lock(vm)

    async def body():
        await pve.pause(2.0 + _disk_secs(pve, [volume]))
        new = _copy_volume(pve, vm, volume, storage)
        vm.config[disk] = join_drive(new, props)
        if _flag(values.get("delete")):
            pve._qm_free(volume)
        else:
            n = 0
            while f"unused{n}" in vm.config:
                n += 1
            vm.config[f"unused{n}"] = volume
        return None

    return await pve.task(vm.node, "qmmove", vm.vmid, user, body, vm=vm)
