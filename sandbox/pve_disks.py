"""What a guest keeps on its disks, on the demo cluster: contents that snapshots keep and a
rollback puts back.

fakepve models a disk as a volume of some size: nothing is written to it, so a snapshot, a
rollback or a backup would look the same whether it kept the guest's data or not. Here a volume
also has contents (`data`, text standing for what the guest wrote) and the bytes in use
(`used`, what a backup has to read). A guest writes with `write()`; PVE keeps each disk of a
snapshot as it was (lvmthin, ZFS, RBD snapshots) and a rollback puts every disk back as the
snapshot has it, size included (qemu-server's snapshot_rollback through the storage's
volume_snapshot_rollback). Installed by sandbox.pve.install_extensions (sandbox/README.md).
"""

from __future__ import annotations

from fakepve import FakePve
from fakepve.qemu import drives_of, volume_ref

GIB = 1024**3
# What a fresh clone of the demo's cloud images has in use (a thin volume allocates on write).
FRESH_USED = 2 * GIB


def _volume(pve: FakePve, volid: str) -> dict | None:
    sid, name = volume_ref(volid)
    return pve.storages.get(sid, {}).get("volumes", {}).get(name) if sid else None


def disks(vm) -> list[tuple[str, str, dict]]:
    """(key, volume id, options) of the VM's disks, CD-ROMs (the cloud-init drive) left out."""
    return [(key, volid, props) for key, volid, props in drives_of(vm.config, skip_cdrom=True)]


def state(pve: FakePve, volid: str) -> dict:
    """A disk as a backup or a snapshot keeps it: size, contents and bytes in use."""
    volume = _volume(pve, volid) or {}
    size = int(volume.get("size") or 0)
    return {
        "size": size,
        "data": volume.get("data", ""),
        "used": int(volume.get("used", min(size, FRESH_USED))),
    }


def put(pve: FakePve, volid: str, kept: dict) -> None:
    """Give a volume the size and contents `kept` (from a snapshot or an archive)."""
    volume = _volume(pve, volid)
    if volume is not None:
        volume.update(size=kept["size"], data=kept["data"], used=kept["used"])


def used_bytes(pve: FakePve, vm) -> int:
    """What the VM's disks have in use: what a backup reads."""
    return sum(state(pve, volid)["used"] for _key, volid, _props in disks(vm))


def write(pve: FakePve, vmid: int, text: str, *, grow: int = 0) -> None:
    """The guest writes to its first disk: it now holds `text`, with `grow` more bytes in use."""
    vm = pve.guest(vmid)
    _key, volid, _props = disks(vm)[0]
    volume = _volume(pve, volid)
    kept = state(pve, volid)
    volume.update(data=text, used=min(kept["size"], kept["used"] + grow))


def contents(pve: FakePve, vmid: int) -> str:
    """What the guest's first disk holds."""
    vm = pve.guest(vmid)
    return state(pve, disks(vm)[0][1])["data"]


def install(pve: FakePve) -> None:
    """Keep each snapshot's disks (by snapshot name, on the VM) and put them back on rollback.

    The snapshot tasks' bodies are fakepve's own; which snapshot a task made, rolled back to
    or deleted is read from the VM once the body is done (a new name, the config's `parent`,
    a name gone)."""
    task = pve.task

    async def task_keeping_disks(node, ttype, tid, user, body, vm=None, lock=True, log=()):
        if vm is None or ttype not in ("qmsnapshot", "qmrollback", "qmdelsnapshot"):
            return await task(node, ttype, tid, user, body, vm=vm, lock=lock, log=log)

        async def body_then_disks():
            note = await body()
            kept = vm.__dict__.setdefault("snapshot_disks", {})
            if ttype == "qmsnapshot":
                for name in set(vm.snapshots) - set(kept):
                    kept[name] = {volid: state(pve, volid) for _k, volid, _p in disks(vm)}
            elif ttype == "qmrollback":
                for volid, disk in kept.get(vm.config.get("parent"), {}).items():
                    put(pve, volid, disk)
            for name in set(kept) - set(vm.snapshots):
                del kept[name]
            return note

        return await task(node, ttype, tid, user, body_then_disks, vm=vm, lock=lock, log=log)

    pve.task = task_keeping_disks
