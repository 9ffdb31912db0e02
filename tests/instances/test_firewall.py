"""The customer's firewall: the page, its rules and presets on PVE, what PVE then does with
packets (sandbox.pve_firewall.verdict), and anti-spoofing that no rule of the customer's
changes. Driven through the page and the engine against the demo cluster in fakepve."""

from __future__ import annotations

import pytest
from django.urls import reverse
from fakepve import PveError

from instances import services
from instances.models import Firewall, Instance, InstanceOperation, Node, OSImage
from sandbox.pve_firewall import verdict
from tests.instances.operations import CUSTOMER, running_server
from tests.instances.world import drive

SUCCEEDED = InstanceOperation.State.SUCCEEDED
OUTSIDE = "192.0.2.50"


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def url(server, name: str = "firewall") -> str:
    return reverse(f"instances:{name}", args=[server.pk])


def form(*rules: dict, enabled: bool = True, policy_in="DROP", policy_out="ACCEPT") -> dict:
    """The firewall page's POST: settings and one formset row per rule (plus an empty row)."""
    data = {
        "policy_in": policy_in,
        "policy_out": policy_out,
        "rules-TOTAL_FORMS": str(len(rules) + 1),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "60",
    }
    if enabled:
        data["enabled"] = "on"
    for n, rule in enumerate([*rules, {}]):
        row = {"direction": "in", "action": "ACCEPT", "protocol": "", "port": ""} | rule
        data |= {f"rules-{n}-{key}": value for key, value in row.items()}
    return data


def save(client, server, data) -> InstanceOperation:
    response = client.post(url(server), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    operation = server.operations.filter(kind="firewall").first()
    done = drive(operation.pk)
    assert done.state == SUCCEEDED, done.error
    return done


def pve_rules(world, server) -> list[tuple]:
    rules = world.firewall_config("vm", vmid=server.vmid)["rules"]
    return [
        (r["type"], r["action"], r.get("proto"), r.get("dport"), r.get("source"), r["enable"])
        for r in rules
    ]


def incoming(world, server, port: int, *, proto="tcp", source=OUTSIDE) -> str:
    dest = server.ipv4.address
    return verdict(world, server.vmid, "in", proto=proto, dport=port, source=source, dest=dest)


# --- Anti-spoofing: every server, whatever its customer chose -------------------------------


def test_a_new_server_can_send_only_from_its_own_addresses(world, server, demo_location, bob):
    neighbour = running_server(bob, demo_location, hostname="db1")
    options = world.firewall_config("vm", vmid=server.vmid)["options"]
    assert (options["enable"], options["ipfilter"], options["macfilter"]) == (1, 1, 1)
    assert options["radv"] == 0  # no router advertisements to the neighbours
    assert "firewall=1" in world.vm(server.vmid).config["net0"]
    own, theirs = server.ipv4.address, neighbour.ipv4.address
    assert verdict(world, server.vmid, "out", source=own, dest=OUTSIDE) == "ACCEPT"
    assert verdict(world, server.vmid, "out", source=theirs, dest=OUTSIDE) == "DROP"
    v6 = server.ipv6.split("/")[0]
    assert verdict(world, server.vmid, "out", source=v6.replace("::1", "::abcd")) == "ACCEPT"
    assert verdict(world, server.vmid, "out", source=neighbour.ipv6.split("/")[0]) == "DROP"
    # The customer's firewall is off: everything comes in.
    assert incoming(world, server, 80) == "ACCEPT"
    assert Firewall.objects.get(instance=server).nic_filtered


def test_switching_the_firewall_off_keeps_anti_spoofing_and_the_rules(
    alice_client, world, server, demo_location, bob
):
    neighbour = running_server(bob, demo_location, hostname="db1")
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}, enabled=False))
    assert pve_rules(world, server) == [("in", "ACCEPT", "tcp", "22", None, 0)]
    assert incoming(world, server, 80) == "ACCEPT"
    assert verdict(world, server.vmid, "out", source=neighbour.ipv4.address) == "DROP"
    page = alice_client.get(url(server)).content.decode()
    assert "<strong>Off</strong>" in page and 'value="22"' in page


# --- The customer's rules ----------------------------------------------------------------------


def test_the_rules_reach_pve_in_their_order_and_filter(alice_client, world, server):
    done = save(
        alice_client,
        server,
        form(
            {"order": "2", "protocol": "tcp", "port": "22", "comment": "SSH"},
            {"order": "1", "action": "DROP", "source": "198.51.100.0/24", "comment": "abusers"},
            {"order": "3", "protocol": "tcp", "port": "8000-8080"},
        ),
    )
    assert pve_rules(world, server) == [
        ("in", "DROP", None, None, "198.51.100.0/24", 1),
        ("in", "ACCEPT", "tcp", "22", None, 1),
        ("in", "ACCEPT", "tcp", "8000:8080", None, 1),
    ]
    assert incoming(world, server, 22) == "ACCEPT"
    assert incoming(world, server, 22, source="198.51.100.9") == "DROP"
    assert incoming(world, server, 8080) == "ACCEPT"
    assert incoming(world, server, 80) == "DROP"
    assert incoming(world, server, 22, proto="udp") == "DROP"
    assert done.actor == CUSTOMER
    timeline = list(server.events.values_list("message", flat=True))
    assert "Firewall on: 3 rules, other incoming traffic dropped." in timeline


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        (
            {"protocol": "tcp", "port": "99999"},
            "port",
            "99999 is not a port; ports are 1 to 65535.",
        ),
        ({"source": "10.0.0.1/8"}, "source", "has host bits set; the network is 10.0.0.0/8."),
        ({"destination": "300.1.2.3"}, "destination", "300.1.2.3 is not an IP address"),
        ({"protocol": "icmp", "port": "22"}, "port", "Only TCP and UDP rules have ports"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field_and_nothing_changes(
    alice_client, world, server, rule, field, message
):
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    before = pve_rules(world, server)
    data = form({"protocol": "tcp", "port": "443"}, {"comment": "second", **rule})
    response = alice_client.post(url(server), data)
    assert response.status_code == 200
    page = response.content.decode()
    label = {"port": "port", "source": "source", "destination": "destination"}[field]
    assert f"Nothing was changed: rule 2, {label}:" in page
    assert message in page
    assert 'value="443"' in page and 'value="second"' in page, "what was typed stays"
    assert server.operations.filter(kind="firewall").count() == 1
    assert pve_rules(world, server) == before
    assert [r.port for r in Firewall.objects.get(instance=server).rules.all()] == ["22"]


def test_presets_replace_the_rules_and_switch_the_firewall_on(alice_client, world, server):
    save(alice_client, server, form({"protocol": "udp", "port": "53"}, enabled=False))
    response = alice_client.post(url(server, "firewall_preset"), {"preset": "web"})
    assert response.status_code == 302
    drive(server.operations.filter(kind="firewall").first().pk)
    assert [(proto, port) for _t, _a, proto, port, _s, _e in pve_rules(world, server)] == [
        ("tcp", "22"),
        ("icmp", None),
        ("icmpv6", None),
        ("tcp", "80"),
        ("tcp", "443"),
        ("udp", "443"),
    ]
    assert incoming(world, server, 443) == "ACCEPT"
    assert incoming(world, server, 443, proto="udp") == "ACCEPT"
    assert incoming(world, server, 53, proto="udp") == "DROP"
    assert Firewall.objects.get(instance=server).enabled


@pytest.mark.parametrize(
    ("preset", "open_port", "closed_port"), [("ssh", 22, 80), ("mail", 587, 80)]
)
def test_each_preset_opens_its_ports_only(
    alice_client, world, server, preset, open_port, closed_port
):
    alice_client.post(url(server, "firewall_preset"), {"preset": preset})
    drive(server.operations.filter(kind="firewall").first().pk)
    assert incoming(world, server, open_port) == "ACCEPT"
    assert incoming(world, server, closed_port) == "DROP"


def test_a_change_pve_refuses_is_taken_back_on_pve_and_in_the_portal(alice_client, world, server):
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    check, calls = world._check_rule, []

    def refusing_the_second(scope, rule, conf):
        calls.append(rule)
        if len(calls) == 2:
            raise PveError(400, "Parameter verification failed.", {"dport": "port not allowed"})
        return check(scope, rule, conf)

    world._check_rule = refusing_the_second
    alice_client.post(
        url(server), form({"protocol": "tcp", "port": "80"}, {"protocol": "tcp", "port": "443"})
    )
    done = drive(server.operations.filter(kind="firewall").first().pk)
    world._check_rule = check
    assert done.state == InstanceOperation.State.FAILED
    assert "Proxmox refused rule 1 (Port: port not allowed)" in done.error_message
    assert pve_rules(world, server) == [("in", "ACCEPT", "tcp", "22", None, 1)]
    assert [r.port for r in Firewall.objects.get(instance=server).rules.all()] == ["22"]
    page = alice_client.get(url(server)).content.decode()
    assert "your previous firewall settings are in force again" in page


def test_a_change_while_another_operation_runs_is_refused_and_nothing_is_saved(
    alice_client, world, server
):
    services.instance_power(instance=server, action="reboot", actor=CUSTOMER, actor_user=None)
    response = alice_client.post(url(server), form({"protocol": "tcp", "port": "22"}))
    assert response.status_code == 200
    assert "A reboot is in progress; try again when it has finished." in response.content.decode()
    assert not Firewall.objects.get(instance=server).rules.exists()


# --- Across the server's life --------------------------------------------------------------------


def test_a_reinstall_puts_the_firewall_back(alice_client, world, server):
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    operation = services.instance_reinstall(
        instance=server,
        image=OSImage.objects.get(slug="rocky-9"),
        ssh_key_ids=[],
        generate_password=True,
        confirm_hostname="web1",
        actor=CUSTOMER,
        actor_user=None,
    )
    assert drive(operation.pk).state == SUCCEEDED
    assert pve_rules(world, server) == [("in", "ACCEPT", "tcp", "22", None, 1)]
    assert world.firewall_config("vm", vmid=server.vmid)["options"]["ipfilter"] == 1
    assert incoming(world, server, 80) == "DROP"


def test_a_moved_server_keeps_its_firewall(alice_client, world, server):
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    target = Node.objects.exclude(pk=server.node_id).first()
    operation = services.instance_migrate(instance=server, target=target, actor=CUSTOMER)
    assert drive(operation.pk).state == SUCCEEDED
    assert world.vm(server.vmid).node == target.name
    assert incoming(world, server, 80) == "DROP" and incoming(world, server, 22) == "ACCEPT"


def test_a_server_built_before_the_firewall_gets_it_at_its_next_reboot(alice_client, world, server):
    vm = world.vm(server.vmid)
    vm.config["net0"] = vm.config["net0"].replace(",firewall=1", "")
    save(alice_client, server, form({"protocol": "tcp", "port": "22"}))
    assert not Firewall.objects.get(instance=server).nic_filtered
    page = alice_client.get(url(server)).content.decode()
    assert "The firewall filters from the next reboot." in page
    assert (
        "it filters from the next reboot"
        in alice_client.get(url(server, "detail")).content.decode()
    )
    assert incoming(world, server, 80) == "ACCEPT", "PVE filters nothing without the NIC's flag"
    operation = services.instance_power(
        instance=server, action="reboot", actor=CUSTOMER, actor_user=None
    )
    assert drive(operation.pk).state == SUCCEEDED
    assert "firewall=1" in vm.config["net0"]
    assert Firewall.objects.get(instance=server).nic_filtered
    assert incoming(world, server, 80) == "DROP"
    assert (
        "The firewall filters from the next reboot."
        not in alice_client.get(url(server)).content.decode()
    )


def test_a_suspended_servers_firewall_cannot_be_changed(alice_client, world, server):
    Instance.objects.filter(pk=server.pk).update(status=Instance.Status.SUSPENDED)
    page = alice_client.get(url(server)).content.decode()
    assert "its firewall cannot be changed now" in page
    response = alice_client.post(url(server, "firewall_preset"), {"preset": "ssh"}, follow=True)
    assert "its firewall cannot be changed now" in response.content.decode()
    assert not server.operations.filter(kind="firewall").exists()
