"""The demo cluster's guest firewall (sandbox/pve_firewall.py) and what a running VM takes at once
of NIC and disk changes (sandbox/pve_limits.py), driven over TLS with proxmoxer."""

from __future__ import annotations

import secrets

import pytest
from proxmoxer import ProxmoxAPI, ResourceException

from sandbox import pve as demo
from sandbox.pve_firewall import datacenter_firewall_on, link_local, verdict
from tests.sandbox.test_pve_demo import clone, ok, template_of

NODE = "pve-a"
VMID = 710
OWN = "203.0.113.10"
NEIGHBOUR = "203.0.113.11"


SECRET = secrets.token_hex(8)


@pytest.fixture
def cluster(fakepve):
    demo.install_extensions(fakepve)
    demo.populate(fakepve, token_secret=SECRET)
    return fakepve


def client(cluster, cafile, user: str = "root@pam", token: str = "portal", secret: str = SECRET):
    return ProxmoxAPI(
        cluster.host,
        port=cluster.port,
        user=user,
        token_name=token,
        token_value=secret,
        verify_ssl=cafile,
    )


@pytest.fixture
def api(cluster, fakepve_cafile) -> ProxmoxAPI:
    return client(cluster, fakepve_cafile)


def firewall(api, vmid: int = VMID):
    return api.nodes(NODE).qemu(vmid).firewall


def nic_of(api, vmid: int = VMID) -> str:
    return api.nodes(NODE).qemu(vmid).config.get(current=1)["net0"]


def protected(api, vmid: int = VMID) -> str:
    """A VM with its NIC on the firewall, the firewall on, anti-spoofing for OWN."""
    net0 = nic_of(api, vmid)
    api.nodes(NODE).qemu(vmid).config.put(net0=f"{net0},firewall=1")
    fw = firewall(api, vmid)
    fw.options.put(enable=1, ipfilter=1, macfilter=1, policy_in="DROP")
    fw.ipset.post(name="ipfilter-net0")
    fw.ipset("ipfilter-net0").post(cidr=OWN)
    fw.ipset("ipfilter-net0").post(cidr="2001:db8:0:5::/64")
    return net0.split(",")[0].split("=")[1]  # the MAC


def start(api, vmid: int = VMID) -> None:
    ok(api, NODE, api.nodes(NODE).qemu(vmid).status.start.post())


# --- The firewall config across a VM's life ----------------------------------------------------


def test_a_clone_takes_its_templates_firewall_config(api):
    template = template_of("debian-12", NODE)
    firewall(api, template).options.put(enable=1, policy_in="REJECT")
    firewall(api, template).rules.post(type="in", action="ACCEPT", proto="tcp", dport="22")
    clone(api, NODE, VMID)
    assert firewall(api).options.get()["policy_in"] == "REJECT"
    assert [rule["dport"] for rule in firewall(api).rules.get()] == ["22"]


def test_a_clone_drops_what_its_vmid_had_before(api, cluster):
    cluster.firewall_config("vm", vmid=VMID)["options"]["policy_in"] = "ACCEPT"  # a left-over
    clone(api, NODE, VMID)
    assert "policy_in" not in firewall(api).options.get()


def test_destroying_a_vm_removes_its_firewall_config(api):
    clone(api, NODE, VMID)
    protected(api)
    ok(api, NODE, api.nodes(NODE).qemu(VMID).delete(purge=1))
    clone(api, NODE, VMID)  # the next customer's server on the same VMID starts clean
    assert firewall(api).ipset.get() == []
    assert "enable" not in firewall(api).options.get()


def test_a_rules_enable_reads_back_as_0_or_1(api):
    clone(api, NODE, VMID)
    firewall(api).rules.post(type="in", action="ACCEPT", proto="tcp", dport="22", enable=5)
    firewall(api).rules.post(type="in", action="ACCEPT", proto="tcp", dport="80")
    assert [rule["enable"] for rule in firewall(api).rules.get()] == [0, 1]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dport", "99999", "invalid port '99999'"),
        ("source", "10.0.0.1/8", "Invalid prefix"),
        ("dest", "not-an-address!", "invalid format"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_field(api, field, value, message):
    clone(api, NODE, VMID)
    rule = {"type": "in", "action": "ACCEPT", "proto": "tcp", "dport": "22", field: value}
    with pytest.raises(ResourceException) as caught:
        firewall(api).rules.post(**rule)
    assert caught.value.status_code == 400
    assert message in caught.value.errors[field]
    assert firewall(api).rules.get() == []


def test_firewall_writes_need_vm_config_network(api, cluster, fakepve_cafile):
    clone(api, NODE, VMID)
    cluster.apitokens["portal@pve!t"] = "s"
    cluster.acl = {}
    cluster.grant("portal@pve", "/", "VM.Audit")
    reader = client(cluster, fakepve_cafile, user="portal@pve", token="t", secret="s")
    assert firewall(reader).rules.get() == []
    with pytest.raises(ResourceException) as caught:
        firewall(reader).options.put(enable=1)
    assert caught.value.status_code == 403 and "VM.Config.Network" in str(caught.value)


# --- What the firewall does with packets ------------------------------------------------------


def test_anti_spoofing_drops_what_a_vm_sends_from_another_address(api, cluster):
    clone(api, NODE, VMID)
    mac = protected(api)
    assert verdict(cluster, VMID, "out", source=OWN, dest="198.51.100.1") == "ACCEPT"
    assert verdict(cluster, VMID, "out", source=NEIGHBOUR, dest="198.51.100.1") == "DROP"
    assert verdict(cluster, VMID, "out", source="2001:db8:0:5::99", dest="2001:db8::1") == "ACCEPT"
    assert verdict(cluster, VMID, "out", source="2001:db8:0:6::1", dest="2001:db8::1") == "DROP"
    assert verdict(cluster, VMID, "out", proto="icmpv6", source=str(link_local(mac))) == "ACCEPT"
    assert verdict(cluster, VMID, "out", source=OWN, mac="BC:24:11:00:00:99") == "DROP"
    assert verdict(cluster, VMID, "out", source=OWN, mac=mac) == "ACCEPT"


def test_ipfilter_without_its_ip_set_lets_only_the_link_local_address_out(api, cluster):
    clone(api, NODE, VMID)
    protected(api)
    firewall(api).ipset("ipfilter-net0").delete(force=1)
    assert verdict(cluster, VMID, "out", source=OWN) == "DROP"


def test_nothing_is_filtered_without_the_nics_flag_the_vms_or_the_datacenters_firewall(
    api, cluster
):
    clone(api, NODE, VMID)
    net0 = nic_of(api)
    protected(api)
    assert verdict(cluster, VMID, "out", source=NEIGHBOUR) == "DROP"
    cluster.firewall_config("cluster")["options"]["enable"] = 0
    assert verdict(cluster, VMID, "out", source=NEIGHBOUR) == "ACCEPT"
    datacenter_firewall_on(cluster)
    firewall(api).options.put(enable=0)
    assert verdict(cluster, VMID, "out", source=NEIGHBOUR) == "ACCEPT"
    firewall(api).options.put(enable=1)
    api.nodes(NODE).qemu(VMID).config.put(net0=net0)  # without firewall=1
    assert verdict(cluster, VMID, "out", source=NEIGHBOUR) == "ACCEPT"


def test_rules_match_in_order_then_the_policy_decides(api, cluster):
    clone(api, NODE, VMID)
    protected(api)
    fw = firewall(api)
    # Created at the top each time: the list reads in the reverse order of these calls.
    fw.rules.post(type="in", action="ACCEPT", proto="tcp", dport="8000:8080", enable=1)
    fw.rules.post(type="in", action="ACCEPT", proto="tcp", dport="22", enable=1)
    fw.rules.post(type="in", action="DROP", source="198.51.100.0/24", enable=1)
    outside, blocked = "192.0.2.1", "198.51.100.7"
    assert verdict(cluster, VMID, "in", dport=22, source=outside, dest=OWN) == "ACCEPT"
    assert verdict(cluster, VMID, "in", dport=22, source=blocked, dest=OWN) == "DROP"
    assert verdict(cluster, VMID, "in", dport=8080, source=outside) == "ACCEPT"
    assert verdict(cluster, VMID, "in", dport=80, source=outside) == "DROP"
    assert verdict(cluster, VMID, "in", proto="udp", dport=22, source=outside) == "DROP"
    fw.options.put(policy_in="ACCEPT")
    assert verdict(cluster, VMID, "in", dport=80, source=outside) == "ACCEPT"


# --- NIC and disk changes of a running VM -----------------------------------------------------


def test_a_running_vm_takes_the_nics_firewall_flag_and_rate_at_once(api):
    clone(api, NODE, VMID)
    start(api)
    net0 = nic_of(api)
    api.nodes(NODE).qemu(VMID).config.put(net0=f"{net0},firewall=1,rate=125")
    assert nic_of(api) == f"{net0},firewall=1,rate=125"
    pending = {
        item["key"] for item in api.nodes(NODE).qemu(VMID).pending.get() if "pending" in item
    }
    assert "net0" not in pending


def test_a_new_nic_model_waits_for_the_next_start_without_network_hotplug(api):
    clone(api, NODE, VMID)
    api.nodes(NODE).qemu(VMID).config.put(hotplug="disk,usb")
    start(api)
    net0 = nic_of(api)
    api.nodes(NODE).qemu(VMID).config.put(net0=net0.replace("virtio=", "e1000="))
    assert nic_of(api) == net0
    assert api.nodes(NODE).qemu(VMID).config.get()["net0"].startswith("e1000=")


def test_a_running_vm_takes_disk_io_limits_at_once_but_not_a_new_cache_mode(api):
    clone(api, NODE, VMID)
    start(api)
    disk = api.nodes(NODE).qemu(VMID).config.get()["scsi0"]
    limited = f"{disk},iops_rd=2000,iops_wr=1000,mbps_rd=200,mbps_wr=100"
    api.nodes(NODE).qemu(VMID).config.put(scsi0=limited)
    assert api.nodes(NODE).qemu(VMID).config.get(current=1)["scsi0"] == limited
    api.nodes(NODE).qemu(VMID).config.put(scsi0=f"{limited},cache=writeback")
    assert api.nodes(NODE).qemu(VMID).config.get(current=1)["scsi0"] == limited
