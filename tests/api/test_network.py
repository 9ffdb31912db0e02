"""A server's network through the API: reverse DNS (the same forward check as the page,
applied to the real PowerDNS and read back through DNS) and the firewall (checked as on the
page, applied to PVE, and what PVE then does with packets)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from sandbox.pve_firewall import verdict
from tests.instances.operations import running_server
from tests.instances.world import drive

V4 = "203.0.113.10"


@pytest.fixture
def server(world, powerdns, demo_location, alice):
    call_command("reverse_dns_zones", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return running_server(alice, demo_location)


def test_a_ptr_set_through_the_api_resolves_through_dns(server, powerdns, api_as, alice):
    api = api_as(alice)
    before = api.get(f"/servers/{server.pk}/reverse-dns").json()
    assert before["managed"] and before["editable"]
    [ipv4] = [row for row in before["addresses"] if row["version"] == 4]
    assert ipv4 == {
        "address": V4,
        "version": 4,
        "ptr": "203-0-113-10.example-hosting.net",
        "is_default": True,
        "changing_to": None,
    }
    powerdns.forward("mail.customer.test", V4)
    response = api.post(
        f"/servers/{server.pk}/reverse-dns", {"address": V4, "ptr": "mail.customer.test"}
    )
    assert response.status_code == 202 and response.json()["kind"] == "reverse_dns"
    changing = api.get(f"/servers/{server.pk}/reverse-dns").json()
    assert [row["changing_to"] for row in changing["addresses"] if row["address"] == V4] == [
        "mail.customer.test"
    ]
    drive(response.json()["id"])
    assert powerdns.ptr(V4) == "mail.customer.test."
    after = api.get(f"/servers/{server.pk}/reverse-dns").json()
    assert [row["ptr"] for row in after["addresses"] if row["address"] == V4] == [
        "mail.customer.test"
    ]


def test_a_name_that_does_not_resolve_to_the_address_is_refused_naming_the_field(
    server, powerdns, api_as, alice
):
    powerdns.forward("elsewhere.customer.test", "198.51.100.7")
    api = api_as(alice)
    response = api.post(
        f"/servers/{server.pk}/reverse-dns", {"address": V4, "ptr": "elsewhere.customer.test"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "ptr" and "198.51.100.7" in response.json()["message"]
    other = api.post(f"/servers/{server.pk}/reverse-dns", {"address": "198.51.100.7", "ptr": ""})
    assert other.status_code == 422 and other.json()["field"] == "address"
    assert powerdns.ptr(V4) == "203-0-113-10.example-hosting.net."
    assert server.operations.count() == 1  # the build only


# --- Firewall ---------------------------------------------------------------------------------


@pytest.fixture
def plain_server(world, demo_location, alice):
    return running_server(alice, demo_location, hostname="fw1")


def test_a_firewall_set_through_the_api_reaches_pve_and_filters(plain_server, world, api_as, alice):
    server = plain_server
    api = api_as(alice)
    before = api.get(f"/servers/{server.pk}/firewall").json()
    assert before["enabled"] is False and before["filtering"] is True
    assert {preset["key"] for preset in before["presets"]} >= {"ssh", "web", "mail"}
    rules = [
        {"protocol": "tcp", "port": "22", "source": "198.51.100.0/24", "comment": "office"},
        {"protocol": "tcp", "port": "443"},
    ]
    response = api.post(
        f"/servers/{server.pk}/firewall", {"enabled": True, "policy_in": "DROP", "rules": rules}
    )
    assert response.status_code == 202 and response.json()["kind"] == "firewall"
    drive(response.json()["id"])
    dest = server.ipv4.address
    assert verdict(world, server.vmid, "in", proto="tcp", dport=22, source="198.51.100.9",
                   dest=dest) == "ACCEPT"  # fmt: skip
    assert verdict(world, server.vmid, "in", proto="tcp", dport=22, source="192.0.2.50",
                   dest=dest) == "DROP"  # fmt: skip
    shown = api.get(f"/servers/{server.pk}/firewall").json()
    assert [(rule["port"], rule["source"]) for rule in shown["rules"]] == [
        ("22", "198.51.100.0/24"),
        ("443", ""),
    ]
    assert shown["applying"] is False and shown["failure"] == ""


def test_a_bad_rule_names_its_field_and_nothing_changes(plain_server, world, api_as, alice):
    server = plain_server
    api = api_as(alice)
    response = api.post(
        f"/servers/{server.pk}/firewall",
        {
            "enabled": True,
            "rules": [
                {"protocol": "tcp", "port": "22"},
                {"protocol": "tcp", "port": "99999", "source": "10.0.0.300/8"},
            ],
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "rules.1.port"
    assert {problem["field"] for problem in body["errors"]} == {"rules.1.port", "rules.1.source"}
    assert "rule 2" in body["message"]
    assert api.get(f"/servers/{server.pk}/firewall").json()["rules"] == []
    assert server.operations.count() == 1  # the build only


def test_a_preset_switches_the_firewall_on(plain_server, world, api_as, alice):
    server = plain_server
    api = api_as(alice)
    response = api.post(f"/servers/{server.pk}/firewall/preset", {"preset": "web"})
    assert response.status_code == 202
    drive(response.json()["id"])
    shown = api.get(f"/servers/{server.pk}/firewall").json()
    assert shown["enabled"] and {"80", "443"} <= {rule["port"] for rule in shown["rules"]}
    unknown = api.post(f"/servers/{server.pk}/firewall/preset", {"preset": "everything"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "preset"
