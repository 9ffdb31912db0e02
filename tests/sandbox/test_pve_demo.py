"""The demo Proxmox cluster (sandbox/pve.py) driven over TLS with proxmoxer, as the portal does."""

from __future__ import annotations

import secrets
import time
import urllib.parse

import pytest
from proxmoxer import ProxmoxAPI

from sandbox import pve as demo

NODE_NAMES = [node.name for node in demo.NODES]


@pytest.fixture
def token_secret() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def cluster(fakepve, token_secret):
    demo.install_extensions(fakepve)
    demo.populate(fakepve, token_secret=token_secret)
    return fakepve


@pytest.fixture
def api(cluster, fakepve_cafile, token_secret) -> ProxmoxAPI:
    return ProxmoxAPI(
        cluster.host,
        port=cluster.port,
        user="root@pam",
        token_name="portal",
        token_value=token_secret,
        verify_ssl=fakepve_cafile,
    )


def template_of(image: str, node: str) -> int:
    return next(t.vmid for t in demo.TEMPLATES if t.image == image and t.node == node)


def wait(api, node: str, upid: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = api.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped" or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def ok(api, node: str, upid: str) -> None:
    status = wait(api, node, upid)
    assert status.get("exitstatus") == "OK", status


def scsi0_bytes(api, node: str, vmid: int) -> int:
    config = api.nodes(node).qemu(vmid).config.get()
    size = next(p for p in config["scsi0"].split(",") if p.startswith("size="))[5:]
    return demo._bytes(size)


def clone(api, node: str, vmid: int, *, image: str = "debian-12", **options) -> None:
    upid = api.nodes(node).qemu(template_of(image, node)).clone.post(newid=vmid, **options)
    ok(api, node, upid)


# ----------------------------------------------------------------------------- the cluster


def test_it_shows_three_nodes_with_their_size(api):
    nodes = {n["node"]: n for n in api.nodes.get()}
    assert sorted(nodes) == NODE_NAMES
    assert {n["status"] for n in nodes.values()} == {"online"}
    assert {n["maxcpu"] for n in nodes.values()} == {32}
    assert {n["maxmem"] for n in nodes.values()} == {128 * demo.GIB}


def test_node_status_reports_the_cpus_and_memory(api):
    status = api.nodes("pve-b").status.get()
    assert status["cpuinfo"]["cpus"] == 32
    assert status["memory"]["total"] == 128 * demo.GIB


@pytest.mark.parametrize("node", NODE_NAMES)
def test_each_node_has_an_nvme_and_a_bulk_pool(api, node):
    storages = {s["storage"]: s for s in api.nodes(node).storage.get(content="images")}
    assert sorted(storages) == ["bulk", "nvme"]
    assert storages["nvme"]["type"] == "lvmthin"
    assert storages["nvme"]["total"] == 3_500 * demo.GIB
    assert storages["bulk"]["total"] == 14_000 * demo.GIB


def test_every_node_holds_one_template_per_image(api):
    for node in NODE_NAMES:
        vms = {vm["name"]: vm for vm in api.nodes(node).qemu.get()}
        assert sorted(vms) == sorted(f"tpl-{image.slug}" for image in demo.IMAGES)
        assert all(vm.get("template") == 1 for vm in vms.values())
        template = template_of("ubuntu-24-04", node)
        config = api.nodes(node).qemu(template).config.get()
        assert config["scsi0"].startswith(f"nvme:base-{template}-disk-0,")
        assert config["ide2"] == f"nvme:vm-{template}-cloudinit,media=cdrom"
        assert config["net0"].endswith(",bridge=vmbr0")
        assert (config["agent"], config["serial0"]) == ("1", "socket")


def test_the_token_is_required(cluster, fakepve_cafile):
    api = ProxmoxAPI(
        cluster.host, port=cluster.port, user="root@pam", token_name="portal",
        token_value="wrong", verify_ssl=fakepve_cafile,
    )  # fmt: skip
    with pytest.raises(Exception, match="401"):
        api.version.get()


# -------------------------------------------------------------------------------- clones


@pytest.mark.parametrize("node", NODE_NAMES)
@pytest.mark.parametrize("image", [image.slug for image in demo.IMAGES])
def test_each_template_clones_linked_and_full_on_each_node(api, node, image):
    clone(api, node, 2001, image=image, name="linked")
    clone(api, node, 2002, image=image, name="full", full=1, storage="bulk")
    linked = api.nodes(node).qemu(2001).config.get()
    full = api.nodes(node).qemu(2002).config.get()
    assert linked["scsi0"].startswith("nvme:vm-2001-disk-0,")
    assert full["scsi0"].startswith("bulk:vm-2002-disk-0,")
    # Each clone gets its own cloud-init drive, on the storage its disks went to.
    assert linked["ide2"] == "nvme:vm-2001-cloudinit,media=cdrom"
    assert full["ide2"] == "bulk:vm-2002-cloudinit,media=cdrom"


def test_destroying_a_clone_leaves_the_templates_volumes(api):
    template = template_of("debian-12", "pve-b")
    clone(api, "pve-b", 2003)
    ok(api, "pve-b", api.nodes("pve-b").qemu(2003).delete())
    volumes = {v["volid"] for v in api.nodes("pve-b").storage("nvme").content.get()}
    assert {f"nvme:base-{template}-disk-0", f"nvme:vm-{template}-cloudinit"} <= volumes
    assert not any("2003" in v for v in volumes)


# ------------------------------------------------------------------- the whole pipeline


def test_clone_configure_grow_start_gives_a_running_server(api):
    node, vmid = "pve-c", 2010
    clone(api, node, vmid, image="rocky-9", name="web1", full=1, storage="nvme")
    keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7 alice@laptop\n"
    upid = (
        api.nodes(node)
        .qemu(vmid)
        .config.post(
            cores=4,
            memory=8192,
            ciuser="rocky",
            cipassword="correct horse battery staple",
            sshkeys=urllib.parse.quote(keys, safe=""),
            ipconfig0="ip=203.0.113.10/24,gw=203.0.113.1",
            nameserver="1.1.1.1 9.9.9.9",
            tags="portal;nvme-vps;customer-7",
        )
    )
    ok(api, node, upid)
    before = scsi0_bytes(api, node, vmid)
    ok(api, node, api.nodes(node).qemu(vmid).resize.put(disk="scsi0", size="+40G"))
    ok(api, node, api.nodes(node).qemu(vmid).status.start.post())

    status = api.nodes(node).qemu(vmid).status.current.get()
    assert status["status"] == "running"
    assert status["cpus"] == 4
    assert status["maxmem"] == 8192 * 1024 * 1024
    assert scsi0_bytes(api, node, vmid) == before + 40 * demo.GIB == status["maxdisk"]
    config = api.nodes(node).qemu(vmid).config.get()
    assert config["ipconfig0"] == "ip=203.0.113.10/24,gw=203.0.113.1"
    assert urllib.parse.unquote(config["sshkeys"]) == keys


def test_the_storage_volume_grows_with_the_disk(api):
    clone(api, "pve-a", 2011)
    ok(api, "pve-a", api.nodes("pve-a").qemu(2011).resize.put(disk="scsi0", size="25G"))
    volume = api.nodes("pve-a").storage("nvme").content("nvme:vm-2011-disk-0").get()
    assert volume["size"] == 25 * demo.GIB
    assert api.nodes("pve-a").qemu(2011).config.get()["scsi0"].endswith(",size=25G")


def test_it_refuses_to_shrink_the_disk(api):
    clone(api, "pve-a", 2012, image="almalinux-9")  # a 10 GiB image
    status = wait(api, "pve-a", api.nodes("pve-a").qemu(2012).resize.put(disk="scsi0", size="8G"))
    assert status["exitstatus"] == "shrinking disks is not supported"
    assert scsi0_bytes(api, "pve-a", 2012) == 10 * demo.GIB


def test_growing_to_the_current_size_changes_nothing(api):
    clone(api, "pve-a", 2013, image="almalinux-9")
    ok(api, "pve-a", api.nodes("pve-a").qemu(2013).resize.put(disk="scsi0", size="10G"))
    assert scsi0_bytes(api, "pve-a", 2013) == 10 * demo.GIB


def test_resize_fails_the_task_for_a_missing_disk_or_a_cdrom(api):
    clone(api, "pve-a", 2014)
    qemu = api.nodes("pve-a").qemu(2014)
    assert wait(api, "pve-a", qemu.resize.put(disk="scsi3", size="+1G"))["exitstatus"] == (
        "disk 'scsi3' does not exist"
    )
    assert wait(api, "pve-a", qemu.resize.put(disk="ide2", size="+1G"))["exitstatus"] == (
        "you can't resize a cdrom"
    )


def test_a_stopped_vm_takes_cpu_and_memory_at_once_a_running_one_at_next_start(api):
    clone(api, "pve-b", 2015)
    qemu = api.nodes("pve-b").qemu(2015)
    qemu.config.put(cores=2, memory=4096)
    assert qemu.status.current.get()["cpus"] == 2
    ok(api, "pve-b", qemu.status.start.post())
    qemu.config.put(cores=6)
    assert qemu.status.current.get()["cpus"] == 2
    assert {p["key"]: p.get("pending") for p in qemu.pending.get()}["cores"] == "6"


def test_the_root_password_is_kept_as_a_hash_and_never_shown(api, cluster):
    clone(api, "pve-a", 2016)
    api.nodes("pve-a").qemu(2016).config.put(cipassword="hunter2-hunter2")
    stored = cluster.vm(2016).config["cipassword"]
    assert stored.startswith("$5$")
    assert "hunter2" not in stored
    assert api.nodes("pve-a").qemu(2016).config.get()["cipassword"] == "**********"


# ------------------------------------------------------------------------------- timing


@pytest.mark.fakepve(time_scale=0.05)
def test_a_clone_takes_time(api):
    upid = api.nodes("pve-a").qemu(template_of("debian-12", "pve-a")).clone.post(newid=2020)
    assert api.nodes("pve-a").tasks(upid).status.get()["status"] == "running"
    assert api.nodes("pve-a").qemu(2020).status.current.get()["lock"] == "clone"
    ok(api, "pve-a", upid)


@pytest.mark.fakepve(time_scale=0.02)
def test_a_started_vm_boots_before_it_runs(api):
    clone(api, "pve-a", 2021)
    upid = api.nodes("pve-a").qemu(2021).status.start.post()
    assert api.nodes("pve-a").tasks(upid).status.get()["status"] == "running"
    assert api.nodes("pve-a").qemu(2021).status.current.get()["status"] == "stopped"
    ok(api, "pve-a", upid)
    assert api.nodes("pve-a").qemu(2021).status.current.get()["status"] == "running"


@pytest.mark.fakepve(time_scale=0.05)
def test_a_resize_takes_time(api):
    clone(api, "pve-a", 2022)
    upid = api.nodes("pve-a").qemu(2022).resize.put(disk="scsi0", size="+1G")
    assert api.nodes("pve-a").tasks(upid).status.get()["status"] == "running"
    ok(api, "pve-a", upid)
