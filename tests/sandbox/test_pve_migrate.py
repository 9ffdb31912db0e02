"""Moving VMs and disks on the demo cluster (sandbox/pve_migrate.py), through proxmoxer over TLS."""

from __future__ import annotations

import secrets

import pytest
from proxmoxer import ProxmoxAPI, ResourceException

from sandbox import pve as demo
from tests.sandbox.test_pve_demo import clone, wait

VMID = 800


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


def migrate(api, node: str = "pve-a", **options) -> dict:
    upid = api.nodes(node).qemu(VMID).migrate.post(**options)
    return wait(api, node, upid)


def where(fakepve) -> str:
    return fakepve.vm(VMID).node


def test_a_live_migration_moves_the_running_vm_and_its_local_disk(api, fakepve):
    disk = fakepve.vm(VMID).config["scsi0"]
    status = migrate(api, target="pve-b", online=1, **{"with-local-disks": 1})
    assert status["exitstatus"] == "OK"
    assert where(fakepve) == "pve-b"
    assert fakepve.vm(VMID).status == "running"
    assert fakepve.vm(VMID).config["scsi0"] == disk  # same storage id on the target
    assert api.nodes("pve-b").qemu(VMID).status.current.get()["status"] == "running"


def test_targetstorage_moves_the_disks_to_another_pool(api, fakepve):
    status = migrate(
        api, target="pve-c", online=1, targetstorage="nvme:bulk", **{"with-local-disks": 1}
    )
    assert status["exitstatus"] == "OK"
    assert fakepve.vm(VMID).config["scsi0"].startswith("bulk:vm-800-disk-")
    assert not [
        name for name in fakepve.storages["nvme"]["volumes"] if name.startswith("vm-800-disk")
    ]


def test_migrate_holds_the_migrate_lock_while_it_runs(api, fakepve):
    fakepve.time_scale = 0.02
    upid = (
        api.nodes("pve-a")
        .qemu(VMID)
        .migrate.post(target="pve-b", online=1, **{"with-local-disks": 1})
    )
    status = api.nodes("pve-a").tasks(upid).status.get()
    assert status["status"] == "running"
    assert api.nodes("pve-a").qemu(VMID).status.current.get()["lock"] == "migrate"
    assert wait(api, "pve-a", upid)["exitstatus"] == "OK"
    assert where(fakepve) == "pve-b"


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        ({"target": "pve-a", "online": 1}, 400, "target is local node"),
        ({"target": "pve-z", "online": 1}, 500, "no such cluster node 'pve-z'"),
        ({"target": "pve-b"}, 500, "can't migrate running VM without --online"),
    ],
)
def test_what_pve_refuses_before_it_starts(api, fakepve, options, status, message):
    with pytest.raises(ResourceException) as caught:
        api.nodes("pve-a").qemu(VMID).migrate.post(**options)
    assert caught.value.status_code == status
    assert message in str(caught.value)
    assert where(fakepve) == "pve-a"


def test_local_disks_of_a_running_vm_need_with_local_disks(api, fakepve):
    status = migrate(api, target="pve-b", online=1)
    assert "can't live migrate attached local disks" in status["exitstatus"]
    assert where(fakepve) == "pve-a"


def test_an_offline_target_fails_the_migration(api, fakepve):
    fakepve.set_node_offline("pve-b")
    status = migrate(api, target="pve-b", online=1, **{"with-local-disks": 1})
    assert "Can't connect to destination" in status["exitstatus"]
    assert where(fakepve) == "pve-a"


def test_an_injected_migration_error_leaves_the_vm_on_its_source(api, fakepve):
    fakepve.vm(VMID).migrate_error = "mirroring failed: disk full on target"
    status = migrate(api, target="pve-b", online=1, **{"with-local-disks": 1})
    assert "disk full on target" in status["exitstatus"]
    assert where(fakepve) == "pve-a"
    assert fakepve.vm(VMID).lock is None


def test_get_migrate_answers_the_preconditions(api, fakepve):
    fakepve.set_node_offline("pve-c")
    answer = api.nodes("pve-a").qemu(VMID).migrate.get()
    assert answer["running"] == 1
    assert answer["allowed_nodes"] == ["pve-b"]
    disks = {disk["volid"]: disk for disk in answer["local_disks"]}
    root = fakepve.vm(VMID).config["scsi0"].split(",")[0]
    assert set(disks) == {root, "nvme:vm-800-cloudinit"}
    assert disks[root]["size"] > 0 and disks[root]["cdrom"] == 0
    assert disks["nvme:vm-800-cloudinit"]["cdrom"] == 1


def test_move_disk_copies_the_disk_live_and_deletes_the_old_one(api, fakepve):
    before = fakepve.vm(VMID).config["scsi0"]
    upid = api.nodes("pve-a").qemu(VMID).move_disk.post(disk="scsi0", storage="bulk", delete=1)
    assert wait(api, "pve-a", upid)["exitstatus"] == "OK"
    after = fakepve.vm(VMID).config["scsi0"]
    assert after.startswith("bulk:") and after.split(",")[1:] == before.split(",")[1:]
    assert fakepve.vm(VMID).status == "running"
    old = before.split(",")[0].split(":")[1]
    assert old not in fakepve.storages["nvme"]["volumes"]
    assert "unused0" not in fakepve.vm(VMID).config


def test_move_disk_without_delete_keeps_the_old_disk_as_unused(api, fakepve):
    before = fakepve.vm(VMID).config["scsi0"].split(",")[0]
    upid = api.nodes("pve-a").qemu(VMID).move_disk.post(disk="scsi0", storage="bulk")
    assert wait(api, "pve-a", upid)["exitstatus"] == "OK"
    assert fakepve.vm(VMID).config["unused0"] == before


def test_move_disk_to_the_same_storage_is_refused(api):
    with pytest.raises(ResourceException, match="same storage"):
        api.nodes("pve-a").qemu(VMID).move_disk.post(disk="scsi0", storage="nvme")
