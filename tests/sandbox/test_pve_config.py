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
