"""Config changes on the demo cluster (sandbox/pve_config.py): the privilege each key needs, as
qemu-server checks it, driven over TLS with proxmoxer as the portal does."""

from __future__ import annotations

import secrets

import pytest
from proxmoxer import ProxmoxAPI, ResourceException

from sandbox import pve as demo
from tests.sandbox.test_pve_demo import clone

NODE = "pve-a"
VMID = 700
USER = "portal@pve"


@pytest.fixture
def as_token(fakepve, fakepve_cafile):
    """An API client for a token of portal@pve holding `privileges` on / (and nothing else)."""
    demo.install_extensions(fakepve)
    root_secret = secrets.token_hex(8)
    demo.populate(fakepve, token_secret=root_secret)
    root = ProxmoxAPI(
        fakepve.host,
        port=fakepve.port,
        user="root@pam",
        token_name="portal",
        token_value=root_secret,
        verify_ssl=fakepve_cafile,
    )
    clone(root, NODE, VMID)

    def make(*privileges: str) -> ProxmoxAPI:
        secret = secrets.token_hex(8)
        fakepve.apitokens[f"{USER}!t"] = secret
        fakepve.acl = {}
        fakepve.grant(USER, "/", "VM.Audit", *privileges)
        return ProxmoxAPI(
            fakepve.host,
            port=fakepve.port,
            user=USER,
            token_name="t",
            token_value=secret,
            verify_ssl=fakepve_cafile,
        )

    return make


def set_config(api: ProxmoxAPI, **options) -> None:
    api.nodes(NODE).qemu(VMID).config.put(**options)


@pytest.mark.parametrize("privilege", ["VM.Config.Cloudinit", "VM.Config.Network"])
def test_cloud_init_settings_take_either_cloudinit_or_network(as_token, privilege):
    api = as_token(privilege)
    set_config(api, ciuser="debian", ipconfig0="ip=203.0.113.10/24,gw=203.0.113.1")
    config = api.nodes(NODE).qemu(VMID).config.get()
    assert config["ciuser"] == "debian"


def test_without_either_cloud_init_settings_are_refused_naming_both(as_token):
    api = as_token("VM.Config.Options", "VM.Config.HWType")
    with pytest.raises(ResourceException) as caught:
        set_config(api, ciuser="debian")
    assert caught.value.status_code == 403
    assert "VM.Config.Cloudinit|VM.Config.Network" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "privilege"),
    [
        ("hotplug", "network,disk,cpu,memory", "VM.Config.HWType"),
        ("numa", 1, "VM.Config.CPU"),
        ("vcpus", 1, "VM.Config.CPU"),
        ("tags", "portal", "VM.Config.Options"),
    ],
)
def test_each_key_needs_its_own_privilege(as_token, key, value, privilege):
    everything_else = {"VM.Config.CPU", "VM.Config.HWType", "VM.Config.Options"} - {privilege}
    with pytest.raises(ResourceException, match=privilege):
        set_config(as_token(*everything_else), **{key: value})
    set_config(as_token(privilege), **{key: value})


def test_keys_outside_pves_tables_are_for_root_only(as_token):
    api = as_token("VM.Config.HWType", "VM.Config.Options", "VM.Config.CPU")
    with pytest.raises(ResourceException, match="only root can set 'args' config"):
        set_config(api, args="-no-reboot")


# --- hotplug and what GET config shows --------------------------------------------------------


@pytest.fixture
def root(fakepve, fakepve_cafile):
    """The root token's client, and a running clone (VMID 700 on pve-a) to change."""
    demo.install_extensions(fakepve)
    secret = secrets.token_hex(8)
    demo.populate(fakepve, token_secret=secret)
    api = ProxmoxAPI(
        fakepve.host,
        port=fakepve.port,
        user="root@pam",
        token_name="portal",
        token_value=secret,
        verify_ssl=fakepve_cafile,
    )
    clone(api, NODE, VMID)
    return api


def start(api: ProxmoxAPI) -> None:
    api.nodes(NODE).qemu(VMID).status.start.post()
    assert api.nodes(NODE).qemu(VMID).status.current.get()["status"] == "running"


def config(api: ProxmoxAPI, *, current: bool = False) -> dict:
    return api.nodes(NODE).qemu(VMID).config.get(current=int(current))


def pending_keys(api: ProxmoxAPI) -> set[str]:
    return {item["key"] for item in api.nodes(NODE).qemu(VMID).pending.get() if "pending" in item}


HOTPLUG_LAYOUT = {"hotplug": "network,disk,usb,cpu,memory", "numa": 1, "cores": 8, "vcpus": 2}


def test_with_cpu_and_memory_hotplug_a_running_vm_takes_vcpus_and_memory_at_once(root):
    set_config(root, memory=2048, **HOTPLUG_LAYOUT)  # built this way while stopped
    start(root)
    set_config(root, vcpus=4, memory=4096)
    assert pending_keys(root) == set()
    status = root.nodes(NODE).qemu(VMID).status.current.get()
    assert status["cpus"] == 4
    assert status["maxmem"] == 4096 * 1024**2


def test_without_hotplug_vcpus_and_memory_wait_for_the_next_start(root):
    set_config(root, cores=2, memory=2048)
    start(root)
    set_config(root, cores=4, memory=4096)
    assert pending_keys(root) == {"cores", "memory"}
    assert config(root)["cores"] == 4  # pending changes merged in, as PVE shows them
    assert config(root, current=True)["cores"] == 2
    assert root.nodes(NODE).qemu(VMID).status.current.get()["cpus"] == 2
    root.nodes(NODE).qemu(VMID).status.reboot.post()
    assert pending_keys(root) == set()
    assert root.nodes(NODE).qemu(VMID).status.current.get()["cpus"] == 4


def test_more_vcpus_than_cores_is_refused_and_stays_pending(root):
    set_config(root, memory=2048, **HOTPLUG_LAYOUT)
    start(root)
    with pytest.raises(ResourceException) as caught:
        set_config(root, vcpus=9)
    assert caught.value.status_code == 400
    assert "maxcpus" in str(caught.value.errors["vcpus"])
    assert pending_keys(root) == {"vcpus"}


def test_memory_hotplug_needs_numa(root):
    set_config(root, memory=2048, **{**HOTPLUG_LAYOUT, "numa": 0})
    start(root)
    with pytest.raises(ResourceException, match="NUMA"):
        set_config(root, memory=4096)
    assert pending_keys(root) == {"memory"}


def test_less_memory_waits_for_the_next_start(root):
    set_config(root, memory=4096, **HOTPLUG_LAYOUT)
    start(root)
    set_config(root, memory=2048)
    assert pending_keys(root) == {"memory"}


def test_the_layout_of_an_older_vm_changes_at_its_next_start(root):
    """A VM built without hotplug: the new layout waits (numa, cores), and so do the vcpus and
    memory the old features cannot hot-plug, until the reboot."""
    set_config(root, cores=2, memory=2048)
    start(root)
    set_config(root, memory=4096, **{**HOTPLUG_LAYOUT, "vcpus": 4})
    assert {"numa", "cores", "vcpus", "memory"} <= pending_keys(root)
    root.nodes(NODE).qemu(VMID).status.reboot.post()
    assert pending_keys(root) == set()
    assert root.nodes(NODE).qemu(VMID).status.current.get()["cpus"] == 4


def test_config_numbers_come_back_as_numbers_and_memory_as_a_string(root):
    set_config(root, cores=2, sockets=1, memory=2048, numa=1, onboot=1)
    shown = config(root)
    assert (shown["cores"], shown["sockets"], shown["numa"], shown["onboot"]) == (2, 1, 1, 1)
    assert shown["memory"] == "2048"
