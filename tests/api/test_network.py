"""Reverse DNS through the API: the same checks as the server page (the name must resolve
forward to the address), applied to the real PowerDNS and read back through DNS."""

from __future__ import annotations

import pytest
from django.core.management import call_command

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
