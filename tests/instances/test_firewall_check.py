"""Beat's look at every server's firewall: PVE's must equal the portal's (anti-spoofing
included); a difference is repaired by a `firewall` operation and kept for staff to see."""

from __future__ import annotations

import pytest

from instances import firewall, firewall_check
from instances.models import Cluster, Firewall, InstanceOperation
from instances.tasks import check_firewalls
from sandbox.pve_firewall import verdict
from tests.instances.operations import CUSTOMER, running_server
from tests.instances.world import drive, live_operation


@pytest.fixture
def server(world, demo_location, alice):
    server = running_server(alice, demo_location)
    operation = firewall.firewall_update(
        instance=server,
        enabled=True,
        policy_in="DROP",
        policy_out="ACCEPT",
        rules=[{"direction": "in", "action": "ACCEPT", "protocol": "tcp", "port": "22"}],
        actor=CUSTOMER,
        actor_user=alice,
    )
    drive(operation.pk)
    return server


def pve_of(world, server) -> dict:
    return world.firewall_config("vm", vmid=server.vmid)


def check() -> firewall_check.CheckReport:
    return firewall_check.cluster_check(Cluster.objects.get())


def repair(server) -> InstanceOperation:
    operation = live_operation(server.pk)
    assert operation is not None and operation.kind == "firewall"
    return drive(operation.pk)


def test_a_firewall_equal_to_the_portals_is_left_alone(world, server):
    report = check()
    assert (report.checked, report.repaired) == (1, [])
    assert live_operation(server.pk) is None
    fw = Firewall.objects.get(instance=server)
    assert fw.checked_at is not None and fw.drift == ""


def test_a_rule_removed_on_pve_is_put_back_and_staff_see_what_differed(world, server):
    pve_of(world, server)["rules"].clear()
    assert verdict(world, server.vmid, "in", dport=22, source="192.0.2.1") == "DROP"
    assert check().repaired == ["web1"]
    assert "rules differ" in Firewall.objects.get(instance=server).drift
    assert repair(server).state == InstanceOperation.State.SUCCEEDED
    assert verdict(world, server.vmid, "in", dport=22, source="192.0.2.1") == "ACCEPT"
    entry = server.events.filter(message__startswith="The firewall on the host differed").get()
    assert "PVE differed from the portal" in entry.detail and entry.actor == "system"
    assert check().repaired == []


def test_anti_spoofing_switched_off_on_pve_is_switched_on_again(world, server, demo_location, bob):
    neighbour = running_server(bob, demo_location, hostname="db1")
    fw = pve_of(world, server)
    fw["options"]["ipfilter"] = 0
    fw["ipset"]["ipfilter-net0"].clear()
    fw["ipset"]["ipfilter-net0"].append({"cidr": neighbour.ipv4.address})
    fw["ipset"]["ipfilter-net0"].append({"cidr": "2001:db8:100:99::/64"})
    assert check().repaired == ["web1"]
    drift = Firewall.objects.get(instance=server).drift
    assert "option ipfilter is 0, not 1" in drift and "ipfilter-net0 holds" in drift
    repair(server)
    assert verdict(world, server.vmid, "out", source=neighbour.ipv4.address) == "DROP"
    assert verdict(world, server.vmid, "out", source="2001:db8:100:99::1") == "DROP"
    assert {entry["cidr"] for entry in fw["ipset"]["ipfilter-net0"]} == {
        server.ipv4.address,
        server.ipv6.replace("::1/64", "::/64"),
    }
    assert verdict(world, server.vmid, "out", source=server.ipv4.address) == "ACCEPT"


def test_a_server_whose_operation_runs_is_left_for_the_next_look(world, server):
    from instances import services

    pve_of(world, server)["rules"].clear()
    services.instance_power(instance=server, action="reboot", actor=CUSTOMER, actor_user=None)
    report = check()
    assert (report.checked, report.repaired) == (0, [])


def test_a_server_built_before_the_firewall_gets_anti_spoofing_from_beat(world, demo_location, bob):
    old = running_server(bob, demo_location, hostname="old1")
    Firewall.objects.filter(instance=old).delete()
    world._fw()["guests"].pop(old.vmid)  # as PVE had it before the portal wrote any firewall
    check_firewalls()  # the beat task, over every cluster
    repair(old)
    options = pve_of(world, old)["options"]
    assert (options["enable"], options["ipfilter"]) == (1, 1)
    assert not Firewall.objects.get(instance=old).enabled, "the customer's firewall stays off"


def test_a_cluster_that_cannot_be_reached_is_skipped(world, server):
    world.lose_quorum()  # reads still work: nothing to repair
    assert check().repaired == []
    world.regain_quorum()
    world.set_node_offline(server.node.name)
    assert check().unreadable == ["web1"]
