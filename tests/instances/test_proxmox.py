"""The Proxmox client against fakepve, over real TLS with the real proxmoxer."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

import pytest
from fakepve import TaskError
from fakepve.certs import make_cert

from instances.proxmox import (
    ProxmoxNotFound,
    ProxmoxPermanent,
    ProxmoxTLSError,
    ProxmoxTransient,
    PveClient,
    classify,
)
from tests.instances.conftest import PVE_TOKEN_ID, PVE_TOKEN_SECRET

NODE = "pve1"
TEMPLATE = 9000
KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1Y2FzK2Jlc3Q/key+with/slashes= alice@laptop\n"
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= bob's key (work)"
)


@pytest.fixture
def template(fakepve):
    """A cloud-init template VM on pve1 whose disk is a base volume, so it can be linked-cloned."""
    return fakepve.add_vm(
        TEMPLATE,
        "debian-12",
        template=True,
        config={
            "template": 1,
            "memory": 1024,
            "scsi0": f"local-lvm:base-{TEMPLATE}-disk-0,size=2G",
            "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
        },
    )


@pytest.fixture
def vm(fakepve):
    return fakepve.add_vm(100, "web1", config={"cores": 1, "memory": 1024})


def client_for(fakepve, **tls) -> PveClient:
    fakepve.apitokens[PVE_TOKEN_ID] = PVE_TOKEN_SECRET
    options = {"ca_bundle": "", "tls_fingerprint": ""} | tls
    return PveClient(
        api_url=fakepve.url, token_id=PVE_TOKEN_ID, token_secret=PVE_TOKEN_SECRET, **options
    )


def sha256_of_certificate(certfile: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(Path(certfile).read_text())
    return hashlib.sha256(der).hexdigest()


def posted(fakepve, path_suffix: str) -> dict[str, list[str]]:
    """The form body of the last POST/PUT whose path ends with path_suffix, as PVE decodes it."""
    for method, path, body in reversed(fakepve.requests):
        if method in ("POST", "PUT") and path.endswith(path_suffix):
            return parse_qs(body.decode())
    raise AssertionError(f"no POST or PUT to {path_suffix}")


def held_config_lock(fakepve, vmid: int) -> None:
    # With no release timer and no wait, the coroutine never suspends: safe from this thread.
    asyncio.run(fakepve.hold_config_lock(vmid, None))


# --- TLS ------------------------------------------------------------------------------------------


def test_it_verifies_the_api_against_the_clusters_ca_bundle(pve_client, fakepve_cafile, settings):
    assert pve_client.version()["version"] == "9.0.10"
    pem = Path(fakepve_cafile).read_text()
    stored = list((settings.VAR_DIR / "pve-ca").iterdir())
    assert [path.name for path in stored] == [
        hashlib.sha256(pem.strip().encode() + b"\n").hexdigest() + ".pem"
    ]
    written = stored[0].stat().st_mtime_ns
    time.sleep(0.01)
    PveClient(
        api_url="https://127.0.0.1:8006", token_id=PVE_TOKEN_ID, token_secret="x", ca_bundle=pem
    )
    assert stored[0].stat().st_mtime_ns == written  # the same CA reuses its file


def test_it_accepts_the_pinned_fingerprint_of_the_certificate(fakepve, fakepve_cafile):
    digest = sha256_of_certificate(fakepve_cafile).upper()
    pinned = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    client = client_for(fakepve, tls_fingerprint=pinned)
    assert client.nodes()[0]["name"] == NODE


def test_it_refuses_a_certificate_with_another_fingerprint(fakepve, fakepve_cafile):
    wrong = hashlib.sha256(b"some other certificate").hexdigest()
    with pytest.raises(ProxmoxTLSError, match="Fingerprints did not match"):
        client_for(fakepve, tls_fingerprint=wrong).version()


def test_it_refuses_a_certificate_another_ca_did_not_sign(fakepve, tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    other_ca, _key, _der = make_cert(str(tmp_path), name="other-ca", hosts=("127.0.0.1",))
    client = client_for(fakepve, ca_bundle=Path(other_ca).read_text())
    with pytest.raises(ProxmoxTLSError, match="CERTIFICATE_VERIFY_FAILED"):
        client.version()


def test_it_refuses_a_malformed_fingerprint_up_front(fakepve):
    with pytest.raises(ValueError, match="SHA-256"):
        client_for(fakepve, tls_fingerprint="AB:CD")


def test_a_port_nothing_listens_on_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = PveClient(
        api_url=f"https://127.0.0.1:{port}", token_id=PVE_TOKEN_ID, token_secret="x", timeout=2
    )
    with pytest.raises(ProxmoxTransient) as caught:
        client.version()
    assert caught.value.status is None
    assert "refused" in caught.value.message.lower()


def test_a_wrong_token_is_permanent(fakepve, fakepve_cafile, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    client = PveClient(
        api_url=fakepve.url,
        token_id=PVE_TOKEN_ID,
        token_secret="not-the-secret",
        ca_bundle=Path(fakepve_cafile).read_text(),
    )
    with pytest.raises(ProxmoxPermanent) as caught:
        client.version()
    assert (caught.value.status, caught.value.message) == (401, "authentication failure")


def test_for_cluster_uses_the_rows_url_token_and_ca(pve_cluster):
    client = PveClient.for_cluster(pve_cluster)
    assert client.find_vm(TEMPLATE)["template"] is True


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", "transient"),
        (None, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", "transient"),
        (500, "cluster not ready - no quorum?", "transient"),
        (595, "No route to host", "transient"),
        (596, "Connection timed out", "transient"),
        (502, "Bad Gateway", "transient"),
        (503, "Service Unavailable", "transient"),
        (504, "Gateway Timeout", "transient"),
        (None, "VM is locked (backup)", "transient"),
        (400, "Parameter verification failed.", "permanent"),
        (500, "shrinking disks is not supported", "permanent"),
        (None, "shrinking disks is not supported", "permanent"),
        (500, "Configuration file 'nodes/pve1/qemu-server/9999.conf' does not exist", "not found"),
        (None, "Configuration file 'nodes/pve1/qemu-server/9999.conf' does not exist", "not found"),
        (500, "you can't start a vm if it's a template", "permanent"),
        (401, "authentication failure", "permanent"),
        (403, "Permission check failed (/vms/100, VM.Config.CPU)", "permanent"),
    ],
)
def test_classify(status, message, kind):
    expected = {
        "transient": ProxmoxTransient,
        "permanent": ProxmoxPermanent,
        "not found": ProxmoxNotFound,
    }
    assert classify(status, message) is expected[kind]


# --- tasks ----------------------------------------------------------------------------------------


def test_a_task_is_finished_only_when_stopped(pve_client, fakepve):
    fakepve.time_scale = 0.01
    vm = fakepve.add_vm(100, "web1", status="running")
    vm.shutdown_secs = 20  # 0.2 s of real time
    upid = pve_client.shutdown(NODE, 100, timeout=60)

    status = pve_client.task_status(upid)
    assert (status.running, status.ok, status.error()) == (True, False, None)

    status = pve_client.wait_task(upid, timeout=10, poll=0.02)
    assert (status.running, status.ok, status.exitstatus) == (False, True, "OK")
    assert pve_client.vm_status(NODE, 100)["status"] == "stopped"


def test_waiting_for_a_task_gives_up_at_its_timeout(pve_client, fakepve):
    fakepve.time_scale = 0.01
    fakepve.add_vm(100, "web1", status="running").shutdown_secs = 1000  # 10 s
    upid = pve_client.shutdown(NODE, 100, timeout=1200)
    started = time.monotonic()
    status = pve_client.wait_task(upid, timeout=0.3, poll=0.05)
    assert status.running and not status.ok
    assert 0.3 <= time.monotonic() - started < 2


def test_a_task_ending_in_task_error_is_not_ok(pve_client, fakepve, template):
    upid = pve_client.start(NODE, TEMPLATE)
    # The task is stopped, which is all proxmoxer's Tasks.blocking_status waits for...
    assert fakepve.tasks[upid]["status"] == "stopped"
    # ...but it failed.
    status = pve_client.task_status(upid)
    assert (status.running, status.ok) == (False, False)
    assert status.exitstatus == "you can't start a vm if it's a template"
    error = status.error()
    assert isinstance(error, ProxmoxPermanent)
    assert error.message == "you can't start a vm if it's a template"
    assert pve_client.task_log(upid)[-1] == "TASK ERROR: you can't start a vm if it's a template"


def test_upids_keep_their_trailing_colon(pve_client, fakepve, template):
    upid = pve_client.clone(NODE, TEMPLATE, vmid=1001, name="web1", full=False)
    assert upid.endswith(":") and upid in fakepve.tasks
    assert pve_client.task_status(upid).upid == upid
    assert fakepve.requests[-1][:2] == ("GET", f"/api2/json/nodes/{NODE}/tasks/{upid}/status")


# --- config ---------------------------------------------------------------------------------------


def test_booleans_go_out_as_1_and_0(pve_client, fakepve, vm, template):
    upid = pve_client.set_config(NODE, 100, onboot=True, agent=False)
    assert pve_client.wait_task(upid, timeout=5).ok
    assert posted(fakepve, "/qemu/100/config") == {"onboot": ["1"], "agent": ["0"]}
    config = pve_client.vm_config(NODE, 100)
    assert (config["onboot"], config["agent"]) == ("1", "0")

    pve_client.clone(NODE, TEMPLATE, vmid=1001, name="web2", full=False)
    assert posted(fakepve, f"/qemu/{TEMPLATE}/clone")["full"] == ["0"]


def test_ssh_keys_are_url_encoded_and_two_keys_round_trip(pve_client, fakepve, vm):
    upid = pve_client.set_config(NODE, 100, sshkeys=KEYS)
    assert pve_client.wait_task(upid, timeout=5).ok
    stored = pve_client.vm_config(NODE, 100)["sshkeys"]
    assert stored == quote(KEYS, safe="")
    assert "+" not in stored and "/" not in stored and " " not in stored
    assert unquote(stored).split("\n") == KEYS.split("\n")


def test_tags_are_joined_with_semicolons_and_deletes_with_commas(pve_client, fakepve, vm):
    pve_client.set_config(NODE, 100, description="old", protection=False)
    upid = pve_client.set_config(NODE, 100, tags=["portal", "nvme-vps"], delete=["description"])
    assert pve_client.wait_task(upid, timeout=5).ok
    assert posted(fakepve, "/qemu/100/config") == {
        "tags": ["portal;nvme-vps"],
        "delete": ["description"],
    }
    assert "description" not in pve_client.vm_config(NODE, 100)
    assert pve_client.find_vm(100)["tags"] == ["portal", "nvme-vps"]


def test_changes_to_a_running_vm_wait_as_pending(pve_client, fakepve):
    fakepve.add_vm(100, "web1", status="running", config={"cores": 1})
    upid = pve_client.set_config(NODE, 100, cores=4)
    assert pve_client.wait_task(upid, timeout=5).ok
    pending = {item["key"]: item for item in pve_client.vm_pending(NODE, 100)}
    assert pending["cores"]["pending"] == "4"


# --- errors ---------------------------------------------------------------------------------------


def test_a_config_lock_timeout_is_transient(pve_client, fakepve, vm):
    fakepve.fail("POST", "/nodes/pve1/qemu/100/config", error="config_lock_timeout", times=1)
    with pytest.raises(ProxmoxTransient) as caught:
        pve_client.set_config(NODE, 100, cores=2)
    assert caught.value.status == 500
    assert caught.value.message == (
        "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"
    )


def test_a_config_lock_held_by_another_task_fails_the_task_transiently(pve_client, fakepve, vm):
    held_config_lock(fakepve, 100)
    upid = pve_client.set_config(NODE, 100, cores=2)
    status = pve_client.wait_task(upid, timeout=5)
    assert not status.ok
    assert isinstance(status.error(), ProxmoxTransient)
    assert "lock-100.conf' - got timeout" in status.error().message


def test_a_vm_locked_by_a_snapshot_is_transient(pve_client, fakepve, vm):
    fakepve.snapshot_lock(100)
    status = pve_client.wait_task(pve_client.start(NODE, 100), timeout=5)
    assert status.exitstatus == "VM is locked (snapshot)"
    assert isinstance(status.error(), ProxmoxTransient)


def test_lost_quorum_is_transient(pve_client, fakepve, vm):
    fakepve.lose_quorum()
    with pytest.raises(ProxmoxTransient, match=r"cluster not ready - no quorum\?"):
        pve_client.set_config(NODE, 100, cores=2)
    assert pve_client.vm_config(NODE, 100)["cores"] == 1  # reads still work


def test_an_offline_node_is_transient(pve_client, fakepve, vm):
    fakepve.set_node_offline(NODE)
    with pytest.raises(ProxmoxTransient) as caught:
        pve_client.vm_status(NODE, 100)
    assert (caught.value.status, caught.value.message) == (595, "No route to host")


def test_a_proxy_error_page_is_transient(pve_client, fakepve):
    fakepve.fail("GET", "/cluster/resources", 502, "<html>Bad Gateway</html>", html=True)
    with pytest.raises(ProxmoxTransient) as caught:
        pve_client.find_vm(100)
    assert caught.value.status == 502


def test_a_bad_parameter_is_permanent_with_pves_message(pve_client, fakepve, vm):
    with pytest.raises(ProxmoxPermanent) as caught:
        pve_client.set_config(NODE, 100, cores=0)
    error = caught.value
    assert (error.status, error.message) == (400, "Parameter verification failed.")
    assert error.errors == {"cores": "value must have a minimum value of 1"}
    assert (
        str(error) == "Parameter verification failed. (cores: value must have a minimum value of 1)"
    )


def test_shrinking_a_disk_is_permanent(pve_client, fakepve, vm):
    fakepve.fail("PUT", "/qemu/100/resize", error="shrinking_disks_not_supported")
    with pytest.raises(ProxmoxPermanent) as caught:
        pve_client.resize_disk(NODE, 100, "scsi0", "1G")
    assert not isinstance(caught.value, ProxmoxTransient)
    assert caught.value.message == "shrinking disks is not supported"


def test_shrinking_a_disk_fails_the_resize_task_permanently(pve_client, fakepve, vm):
    # PVE 9 checks the size inside the resize worker, so the refusal arrives as the task's exit
    # status. fakepve does not model qemu resize, so the test runs that task on the fake itself.
    async def refuse():
        raise TaskError("shrinking disks is not supported")

    upid = asyncio.run(fakepve.task(NODE, "resize", 100, PVE_TOKEN_ID, refuse))
    status = pve_client.wait_task(upid, timeout=5)
    assert (status.running, status.ok) == (False, False)
    assert type(status.error()) is ProxmoxPermanent
    assert status.error().message == "shrinking disks is not supported"


def test_cloning_a_missing_template_is_not_found(pve_client, fakepve):
    with pytest.raises(ProxmoxNotFound) as caught:
        pve_client.clone(NODE, 9999, vmid=1001, name="web1", full=True)
    assert (
        caught.value.message
        == "Configuration file 'nodes/pve1/qemu-server/9999.conf' does not exist"
    )


# --- VMs ------------------------------------------------------------------------------------------


def test_a_linked_clone_of_a_template(pve_client, fakepve, template):
    assert pve_client.vmid_free(1001)
    upid = pve_client.clone(NODE, TEMPLATE, vmid=1001, name="web1", full=False, description="#7")
    assert pve_client.wait_task(upid, timeout=5).ok
    assert pve_client.find_vm(1001) == {
        "vmid": 1001,
        "type": "qemu",
        "node": NODE,
        "name": "web1",
        "status": "stopped",
        "tags": [],
        "template": False,
        "lock": None,
    }
    assert not pve_client.vmid_free(1001)
    config = pve_client.vm_config(NODE, 1001)
    assert config["description"] == "#7"
    assert config["scsi0"].startswith("local-lvm:") and "size=2G" in config["scsi0"]


def test_a_full_clone_onto_another_storage(pve_client, fakepve, template):
    fakepve.storages["nvme"] = {
        "type": "lvmthin",
        "active": 1,
        "content": "images,rootdir",
        "files": set(),
        "vgname": "nvme",
        "thinpool": "data",
    }
    upid = pve_client.clone(NODE, TEMPLATE, vmid=1002, name="db1", full=True, storage="nvme")
    assert pve_client.wait_task(upid, timeout=5).ok
    assert posted(fakepve, f"/qemu/{TEMPLATE}/clone") == {
        "newid": ["1002"],
        "name": ["db1"],
        "full": ["1"],
        "storage": ["nvme"],
    }
    assert pve_client.vm_config(NODE, 1002)["scsi0"].startswith("nvme:vm-1002-disk-0,")
    assert pve_client.find_vm(1002)["node"] == NODE


def test_find_vm_of_an_unused_vmid_is_none(pve_client, template):
    assert pve_client.find_vm(4242) is None
    assert pve_client.find_vm(TEMPLATE)["template"] is True


def test_power_actions_and_status(pve_client, fakepve, vm):
    assert pve_client.wait_task(pve_client.start(NODE, 100), timeout=5).ok
    status = pve_client.vm_status(NODE, 100)
    assert (status["status"], status["qmpstatus"], status["lock"]) == ("running", "running", None)
    assert status["maxmem"] == 1024 * 1024**2
    assert pve_client.wait_task(pve_client.reboot(NODE, 100), timeout=5).ok
    assert pve_client.wait_task(pve_client.shutdown(NODE, 100, timeout=30), timeout=5).ok
    assert pve_client.vm_status(NODE, 100)["status"] == "stopped"
    assert pve_client.wait_task(pve_client.stop(NODE, 100), timeout=5).ok


def test_resize_migrate_and_rrd_data_reach_their_endpoints(pve_client, fakepve, vm):
    fakepve.add_node("pve2")
    assert pve_client.resize_disk(NODE, 100, "scsi0", "+10G").endswith(":")
    assert posted(fakepve, "/qemu/100/resize") == {"disk": ["scsi0"], "size": ["+10G"]}
    assert pve_client.migrate(NODE, 100, target="pve2").endswith(":")
    assert posted(fakepve, "/qemu/100/migrate") == {"target": ["pve2"], "online": ["1"]}
    assert isinstance(pve_client.rrd_data(NODE, 100, timeframe="day"), list)


def test_destroy_purges_and_frees_unreferenced_disks(pve_client, fakepve, template):
    pve_client.wait_task(
        pve_client.clone(NODE, TEMPLATE, vmid=1001, name="web1", full=True), timeout=5
    )
    volumes = fakepve.storages["local-lvm"].setdefault("volumes", {})
    volumes["vm-1001-disk-7"] = {"content": "images", "format": "raw", "size": 1, "vmid": 1001}
    upid = pve_client.destroy(NODE, 1001)
    assert pve_client.wait_task(upid, timeout=5).ok
    assert pve_client.find_vm(1001) is None
    assert not [name for name in volumes if "-1001-" in name]
    assert "purging VM 1001 from related configurations.." in pve_client.task_log(upid)


def test_nodes_storages_and_resources(pve_client, fakepve):
    fakepve.add_node("pve2", online=False)
    assert pve_client.nodes() == [
        {"name": "pve1", "status": "online", "maxcpu": 4, "maxmem": 8 * 1024**3, "cpu": 0.02,
         "mem": 2 * 1024**3},
        {"name": "pve2", "status": "offline", "maxcpu": 0, "maxmem": 0, "cpu": 0.0, "mem": 0},
    ]  # fmt: skip
    storages = {storage["storage"]: storage for storage in pve_client.node_storages(NODE)}
    assert storages["local-lvm"]["content"] == ["images", "rootdir"]
    assert storages["local-lvm"]["active"] and storages["local-lvm"]["type"] == "lvmthin"
    kinds = {item["type"] for item in pve_client.cluster_resources("storage")}
    assert kinds == {"storage"}
