"""Backups on the demo cluster (sandbox/pve_backups.py) and what snapshots keep of the disks
(sandbox/pve_disks.py), through proxmoxer over TLS as the portal talks to PVE."""

from __future__ import annotations

import secrets
import time

import pytest
from proxmoxer import ProxmoxAPI, ResourceException

from sandbox import pve as demo
from sandbox import pve_disks
from tests.sandbox.test_pve_demo import clone, ok, wait

VMID = 810
TOKEN = "portal@pve!portal"


@pytest.fixture
def api(fakepve, fakepve_cafile):
    demo.install_extensions(fakepve)
    secret = secrets.token_hex(8)
    demo.populate(fakepve, token_secret=secret)
    client = ProxmoxAPI(
        fakepve.host,
        port=fakepve.port,
        user="root@pam",
        token_name="portal",
        token_value=secret,
        verify_ssl=fakepve_cafile,
    )
    clone(client, "pve-a", VMID, full=1, storage="nvme")
    client.nodes("pve-a").qemu(VMID).status.start.post()
    return client


def as_portal(fakepve, fakepve_cafile, *privileges) -> ProxmoxAPI:
    """A token that holds only `privileges` on /."""
    fakepve.apitokens[TOKEN] = "portal-secret"
    fakepve.acl = {}
    fakepve.grant("portal@pve", "/", *privileges)
    return ProxmoxAPI(
        fakepve.host,
        port=fakepve.port,
        user="portal@pve",
        token_name="portal",
        token_value="portal-secret",
        verify_ssl=fakepve_cafile,
    )


def vzdump(api, node: str = "pve-a", **options) -> dict:
    options = {"vmid": VMID, "storage": "local", "mode": "snapshot", "compress": "zstd"} | options
    return wait(api, node, api.nodes(node).vzdump.post(**options))


def backups(api, vmid: int = VMID) -> list[dict]:
    return api.nodes("pve-a").storage("local").content.get(content="backup", vmid=vmid)


def log_of(api, status: dict) -> list[str]:
    lines = api.nodes(status["node"]).tasks(status["upid"]).log.get(limit=100)
    return [line["t"] for line in lines]


def restore(api, volid: str, **options) -> dict:
    upid = api.nodes("pve-a").qemu.post(vmid=VMID, archive=volid, force=1, **options)
    return wait(api, "pve-a", upid)


# --- vzdump --------------------------------------------------------------------------------


def test_vzdump_writes_an_archive_of_content_backup_to_the_storage(api, fakepve):
    pve_disks.write(fakepve, VMID, "v1", grow=1024**3)
    status = vzdump(api, **{"notes-template": "portal-backup=7 {{guestname}}"})
    assert status["exitstatus"] == "OK"
    [archive] = backups(api)
    assert archive["volid"].startswith(f"local:backup/vzdump-qemu-{VMID}-")
    assert archive["volid"].endswith(".vma.zst")
    assert archive["content"] == "backup" and archive["vmid"] == VMID
    assert archive["format"] == "vma.zst"
    # zstd of what the disk uses (a fresh clone's 2 GiB plus the 1 GiB written).
    assert archive["size"] == int(3 * 1024**3 * 0.45)
    assert archive["notes"] == f"portal-backup=7 {fakepve.vm(VMID).name}"
    assert abs(archive["ctime"] - time.time()) < 5
    log = log_of(api, status)
    assert any("creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-810-" in line for line in log)
    assert log[-1] == "TASK OK"


def test_the_archive_takes_space_on_the_storage_and_deleting_it_gives_it_back(api, fakepve):
    before = fakepve.storages["local"]["avail"]
    vzdump(api)
    [archive] = backups(api)
    assert fakepve.storages["local"]["avail"] == before - archive["size"]
    volume = archive["volid"]
    ok(api, "pve-a", api.nodes("pve-a").storage("local").content(volume).delete())
    assert backups(api) == []
    assert fakepve.storages["local"]["avail"] == before


def test_vzdump_refuses_a_storage_without_the_backup_content_type(api):
    status = vzdump(api, storage="nvme")
    assert status["exitstatus"] == (
        "could not get storage information for 'nvme': "
        "can't use storage 'nvme' for backups - wrong content type"
    )


@pytest.mark.fakepve(time_scale=0.01)
def test_the_vm_is_locked_backup_while_vzdump_runs(api, fakepve):
    upid = api.nodes("pve-a").vzdump.post(vmid=VMID, storage="local", compress="zstd")
    time.sleep(0.02)
    assert api.nodes("pve-a").qemu(VMID).status.current.get().get("lock") == "backup"
    with pytest.raises(ResourceException, match=r"VM is locked \(backup\)"):
        api.nodes("pve-a").qemu(VMID).status.stop.post()
    assert wait(api, "pve-a", upid)["exitstatus"] == "OK"
    assert "lock" not in api.nodes("pve-a").qemu(VMID).config.get()


def test_a_vm_locked_by_something_else_fails_the_job(api, fakepve):
    fakepve.snapshot_lock(VMID, "snapshot")
    status = vzdump(api)
    assert status["exitstatus"] == "job errors"
    assert f"ERROR: Backup of VM {VMID} failed - VM is locked (snapshot)" in log_of(api, status)
    assert backups(api) == []


@pytest.mark.fakepve(time_scale=0.01)
def test_two_vzdumps_on_one_node_run_one_after_the_other(api, fakepve):
    clone(api, "pve-a", VMID + 1, full=1, storage="nvme")
    first = api.nodes("pve-a").vzdump.post(vmid=VMID, storage="local")
    second = api.nodes("pve-a").vzdump.post(vmid=VMID + 1, storage="local")
    done = [wait(api, "pve-a", upid) for upid in (first, second)]
    assert [status["exitstatus"] for status in done] == ["OK", "OK"]
    log = log_of(api, done[1])
    assert log.index("INFO: trying to get global lock - waiting...") < log.index(
        "INFO: got global lock"
    )
    assert "INFO: trying to get global lock - waiting..." not in log_of(api, done[0])
    assert fakepve.tasks[second]["endtime"] >= fakepve.tasks[first]["endtime"]


def test_vzdump_checks_the_privileges_before_it_starts(api, fakepve, fakepve_cafile):
    portal = as_portal(fakepve, fakepve_cafile, "VM.Audit", "Datastore.AllocateSpace")
    with pytest.raises(ResourceException, match=rf"/vms/{VMID}, VM.Backup"):
        portal.nodes("pve-a").vzdump.post(vmid=VMID, storage="local")
    portal = as_portal(fakepve, fakepve_cafile, "VM.Backup")
    with pytest.raises(ResourceException, match="/storage/local, Datastore.AllocateSpace"):
        portal.nodes("pve-a").vzdump.post(vmid=VMID, storage="local")
    portal = as_portal(fakepve, fakepve_cafile, "VM.Backup", "Datastore.AllocateSpace")
    prune = {"prune-backups": "keep-last=1"}
    with pytest.raises(ResourceException, match=r"/storage/local, Datastore\.Allocate\)"):
        portal.nodes("pve-a").vzdump.post(vmid=VMID, storage="local", **prune)
    with pytest.raises(ResourceException, match="Only root may set this option"):
        portal.nodes("pve-a").vzdump.post(vmid=VMID, dumpdir="/tmp")
    assert vzdump(portal, compress="0")["exitstatus"] == "OK"


def test_prune_backups_keeps_the_newest(api):
    for _ in range(3):
        vzdump(api, **{"prune-backups": "keep-last=2"})
    assert len(backups(api)) == 2
    vzdump(api, remove=0, **{"prune-backups": "keep-last=1"})
    assert len(backups(api)) == 3


# --- restore -------------------------------------------------------------------------------


def test_restore_brings_back_the_disks_and_config_and_drops_the_snapshots(api, fakepve):
    pve_disks.write(fakepve, VMID, "backed up")
    memory = fakepve.vm(VMID).config["memory"]
    vzdump(api)
    [archive] = backups(api)
    pve_disks.write(fakepve, VMID, "written later")
    api.nodes("pve-a").qemu(VMID).config.post(memory=8192)
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).snapshot.post(snapname="later"))
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).status.stop.post())
    mac = fakepve.vm(VMID).config["net0"]

    status = restore(api, archive["volid"])
    assert status["exitstatus"] == "OK", log_of(api, status)
    vm = fakepve.vm(VMID)
    assert pve_disks.contents(fakepve, VMID) == "backed up"
    assert vm.config["memory"] == memory
    assert vm.config["net0"] == mac  # the same MAC unless unique=1
    assert vm.status == "stopped" and "lock" not in vm.config
    assert [s["name"] for s in api.nodes("pve-a").qemu(VMID).snapshot.get()] == ["current"]
    assert vm.config["scsi0"].startswith(f"nvme:vm-{VMID}-disk-")
    assert vm.config["ide2"] == f"nvme:vm-{VMID}-cloudinit,media=cdrom"
    # The old disks are gone: one disk and one cloud-init drive of the VM are left.
    mine = [n for n, v in fakepve.storages["nvme"]["volumes"].items() if v.get("vmid") == VMID]
    assert len(mine) == 2


def test_restore_refuses_a_running_vm_and_a_missing_archive(api):
    vzdump(api)
    [archive] = backups(api)
    with pytest.raises(ResourceException, match=f"unable to restore VM {VMID} - vm is running"):
        api.nodes("pve-a").qemu.post(vmid=VMID, archive=archive["volid"], force=1)
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).status.stop.post())
    with pytest.raises(ResourceException, match="already exists on node 'pve-a'"):
        api.nodes("pve-a").qemu.post(vmid=VMID, archive=archive["volid"])
    missing = f"local:backup/vzdump-qemu-{VMID}-2020_01_01-00_00_00.vma.zst"
    with pytest.raises(ResourceException, match=f"can't find file '{missing}'"):
        api.nodes("pve-a").qemu.post(vmid=VMID, archive=missing, force=1)


def test_restoring_over_an_existing_vm_needs_vm_backup_only(api, fakepve, fakepve_cafile):
    vzdump(api)
    [archive] = backups(api)
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).status.stop.post())
    portal = as_portal(fakepve, fakepve_cafile, "VM.Audit", "Datastore.AllocateSpace")
    with pytest.raises(ResourceException, match="Permission check failed"):
        portal.nodes("pve-a").qemu.post(vmid=VMID, archive=archive["volid"], force=1)
    portal = as_portal(fakepve, fakepve_cafile, "VM.Backup", "Datastore.AllocateSpace")
    assert restore(portal, archive["volid"])["exitstatus"] == "OK"


# --- snapshots keep the disks ----------------------------------------------------------------


def test_a_rollback_puts_the_disk_back_as_the_snapshot_kept_it(api, fakepve):
    pve_disks.write(fakepve, VMID, "before")
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).snapshot.post(snapname="s1"))
    pve_disks.write(fakepve, VMID, "after")
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).snapshot("s1").rollback.post())
    assert pve_disks.contents(fakepve, VMID) == "before"
    ok(api, "pve-a", api.nodes("pve-a").qemu(VMID).snapshot("s1").delete())
    assert fakepve.vm(VMID).snapshot_disks == {}
