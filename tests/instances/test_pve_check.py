"""`manage.py pve_check`: the read-only smoke test of a cluster, against fakepve."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from instances.models import Node, OSImage, OSTemplate, StorageClass, StoragePool


def pve_check(name: str = "fake") -> str:
    out = StringIO()
    try:
        call_command("pve_check", name, stdout=out, no_color=True)
    finally:
        print(out.getvalue())  # shown by pytest when a test fails
    return out.getvalue()


def test_it_passes_against_a_cluster_that_matches_its_rows(pve_cluster, fakepve):
    report = pve_check()
    assert "Proxmox VE 9.0.10" in report
    assert "pve1: online, 4 CPUs, 8.0 GiB RAM" in report
    assert "pve1/local-lvm: lvmthin, active, content images,rootdir" in report
    assert "Debian 12 (VMID 9000): template 'debian-12-cloud' on pve1" in report
    assert "the datacenter firewall is on" in report
    assert "Cluster fake: all checks passed." in report
    assert {method for method, _path, _body in fakepve.requests} == {"GET"}  # read-only


def test_it_fails_when_the_datacenter_firewall_is_off(pve_cluster, fakepve):
    fakepve.firewall_config("cluster")["options"]["enable"] = 0
    with pytest.raises(CommandError, match=r"the datacenter firewall is off, so no server's"):
        pve_check()


def test_it_fails_naming_a_template_that_does_not_exist(pve_cluster):
    image = OSImage.objects.create(slug="alma-9", name="AlmaLinux 9", family="alma")
    OSTemplate.objects.create(image=image, cluster=pve_cluster, vmid=9100)
    with pytest.raises(CommandError) as caught:
        pve_check()
    assert str(caught.value) == (
        "1 problem on cluster fake: template AlmaLinux 9 (VMID 9100) does not exist in Proxmox"
    )


def test_it_fails_when_a_templates_vmid_is_an_ordinary_vm(pve_cluster, fakepve):
    fakepve.add_vm(9200, "someones-server")
    image = OSImage.objects.create(slug="ubuntu-24-04", name="Ubuntu 24.04", family="ubuntu")
    OSTemplate.objects.create(image=image, cluster=pve_cluster, vmid=9200)
    with pytest.raises(CommandError, match=r"'someones-server', a VM but not a template"):
        pve_check()


def test_it_fails_naming_nodes_and_storage_pools_proxmox_does_not_have(pve_cluster):
    Node.objects.create(cluster=pve_cluster, name="pve9", cores=4, memory_mib=8192)
    StoragePool.objects.create(
        cluster=pve_cluster, name="ceph-bulk", storage_class=StorageClass.BULK
    )
    with pytest.raises(CommandError) as caught:
        pve_check()
    message = str(caught.value)
    assert message.startswith("2 problems on cluster fake: ")
    assert "node pve9 is in the portal but Proxmox does not know it" in message
    assert "storage pool ceph-bulk is not on any online node" in message


def test_it_fails_when_a_node_the_portal_uses_is_offline(pve_cluster, fakepve):
    fakepve.set_node_offline("pve1")
    with pytest.raises(CommandError, match="node pve1 is offline but active in the portal"):
        pve_check()


def test_it_fails_when_the_portal_counts_more_ram_than_the_node_has(pve_cluster):
    Node.objects.filter(name="pve1").update(memory_mib=65536)
    with pytest.raises(CommandError, match="portal counts 65536 MiB RAM, Proxmox has 8192 MiB"):
        pve_check()


def test_it_stops_when_the_api_refuses_the_token(pve_cluster):
    pve_cluster.token_secret = "revoked"
    pve_cluster.save()
    with pytest.raises(CommandError, match="Cannot use the API of fake: authentication failure"):
        pve_check()


def test_it_stops_on_a_cluster_row_it_cannot_use(pve_cluster):
    pve_cluster.ca_bundle, pve_cluster.tls_fingerprint = "", "AB:CD"
    pve_cluster.save()
    with pytest.raises(CommandError, match="Cluster fake is misconfigured: tls_fingerprint must"):
        pve_check()


def test_it_names_the_known_clusters_for_an_unknown_one(pve_cluster):
    with pytest.raises(CommandError, match=r"No cluster named 'nope' \(known: fake\)"):
        pve_check("nope")
