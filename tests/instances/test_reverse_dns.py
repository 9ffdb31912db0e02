"""Reverse DNS on a real PowerDNS: default PTRs at build, the customer's names (checked to
resolve forward), the defaults back at removal; every answer read through DNS with dnspython.

The demo server is 203.0.113.10 with 2001:db8:100:a::1 in its /64 2001:db8:100:a::/64; the
customer's names live in the test zone customer.test, served by the same PowerDNS."""

from __future__ import annotations

import socket

import pytest
from django.core.management import call_command

from instances import lifecycle
from instances.models import Instance, InstanceOperation, IPAddress, ReverseDns
from instances.reverse_dns import ReverseDnsError, reverse_dns_request
from instances.services import OperationInProgress, instance_power
from instances.state import InstanceError
from tests.instances.operations import CUSTOMER, running_server
from tests.instances.world import drive

SUCCEEDED, FAILED = InstanceOperation.State.SUCCEEDED, InstanceOperation.State.FAILED
V4, V6 = "203.0.113.10", "2001:db8:100:a::1"


@pytest.fixture
def rdns(world, powerdns):
    """The demo cluster, with the demo pool's reverse zones in PowerDNS."""
    call_command("reverse_dns_zones", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return powerdns


@pytest.fixture
def server(rdns, demo_location, alice) -> Instance:
    return running_server(alice, demo_location)


def change(server, address, ptr) -> InstanceOperation:
    operation = reverse_dns_request(
        instance=server, address=address, ptr=ptr, actor=CUSTOMER, actor_user=server.owner
    )
    return drive(operation.pk)


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_built_server_answers_with_its_default_names(rdns, server):
    assert (server.ipv4.address, server.ipv6) == (V4, f"{V6}/64")
    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."
    assert rdns.ptr(V6) == "2001-db8-100-a--1.example-hosting.net."
    assert set(server.reverse_dns.values_list("address", "ptr")) == {
        (V4, "203-0-113-10.example-hosting.net"),
        (V6, "2001-db8-100-a--1.example-hosting.net"),
    }


def test_the_customer_points_the_ipv4_address_at_a_name_that_resolves_to_it(rdns, server):
    rdns.forward("mail.customer.test", V4)

    operation = change(server, V4, "Mail.Customer.Test.")

    assert operation.state == SUCCEEDED
    assert rdns.ptr(V4) == "mail.customer.test."
    assert server.reverse_dns.get(address=V4).ptr == "mail.customer.test"
    entry = server.events.get(operation=operation)
    assert entry.message == f"Reverse DNS of {V4} set to mail.customer.test."
    assert entry.actor == CUSTOMER


def test_any_address_of_the_servers_64_gets_a_ptr_of_its_own(rdns, server):
    rdns.forward("smtp.customer.test", "2001:db8:100:a::25")

    assert change(server, "2001:DB8:100:A:0::25", "smtp.customer.test").state == SUCCEEDED

    assert rdns.ptr("2001:db8:100:a::25") == "smtp.customer.test."
    assert rdns.ptr(V6) == "2001-db8-100-a--1.example-hosting.net."  # the first one keeps its own


def test_it_refuses_a_name_that_does_not_exist(rdns, server):
    rdns.forward("www.customer.test", V4)  # the domain exists, the name does not
    with pytest.raises(ReverseDnsError) as refused:
        change(server, V4, "nothing.customer.test")
    assert refused.value.field == "ptr"
    assert str(refused.value) == (
        f"nothing.customer.test does not exist in DNS. Create an A record for "
        f"nothing.customer.test pointing to {V4} first, then save again."
    )
    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."


def test_it_refuses_a_name_that_resolves_to_another_address(rdns, server):
    rdns.forward("elsewhere.customer.test", "198.51.100.7", "198.51.100.8")
    with pytest.raises(ReverseDnsError, match=r"resolves to 198\.51\.100\.7, 198\.51\.100\.8, "
                       r"not to 203\.0\.113\.10\. Point its A record"):  # fmt: skip
        change(server, V4, "elsewhere.customer.test")


def test_an_ipv6_address_needs_an_aaaa_record(rdns, server):
    rdns.forward("v4only.customer.test", V4)
    with pytest.raises(ReverseDnsError, match="v4only.customer.test has no AAAA record"):
        change(server, "2001:db8:100:a::25", "v4only.customer.test")


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("203.0.113.11", "203.0.113.11 is not this server's address; its IPv4 address is "),
        ("2001:db8:100:b::1", "is not in this server's IPv6 network 2001:db8:100:a::/64"),
        ("mail", "mail is not an IP address"),
    ],
)
def test_it_refuses_an_address_that_is_not_the_servers(rdns, server, address, said):
    with pytest.raises(ReverseDnsError, match=said) as refused:
        change(server, address, "mail.customer.test")
    assert refused.value.field == "address"


def test_it_refuses_what_is_not_a_host_name(rdns, server):
    with pytest.raises(ReverseDnsError, match="not a full host name") as refused:
        change(server, V4, "mail")
    assert refused.value.field == "ptr"


def test_the_same_name_again_is_refused_as_set_already(rdns, server):
    with pytest.raises(ReverseDnsError, match="is 203-0-113-10.example-hosting.net already"):
        change(server, V4, "")


def test_it_refuses_a_name_whose_name_servers_refuse(rdns, server):
    # This PowerDNS serves no zone for example.org: it refuses, as a broken delegation would.
    with pytest.raises(ReverseDnsError, match="mail.example.org could not be resolved: its name"):
        change(server, V4, "mail.example.org")


def test_the_forward_check_says_when_dns_does_not_answer(rdns, server, settings):
    settings.REVERSE_DNS_RESOLVER = [f"127.0.0.1:{dead_port()}"]
    settings.REVERSE_DNS_RESOLVE_TIMEOUT = 0.3
    with pytest.raises(ReverseDnsError, match="could not look up mail.customer.test just now"):
        change(server, V4, "mail.customer.test")


def test_a_name_back_to_the_default_and_an_extra_ptr_removed(rdns, server):
    rdns.forward("mail.customer.test", V4, "2001:db8:100:a::25")
    change(server, V4, "mail.customer.test")
    change(server, "2001:db8:100:a::25", "mail.customer.test")

    assert change(server, V4, "").state == SUCCEEDED
    assert change(server, "2001:db8:100:a::25", "").state == SUCCEEDED

    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."
    assert rdns.ptr("2001:db8:100:a::25") is None
    assert not server.reverse_dns.filter(address="2001:db8:100:a::25").exists()
    messages = list(server.events.values_list("message", flat=True))
    assert (
        f"Reverse DNS of {V4} is the default again: 203-0-113-10.example-hosting.net." in messages
    )
    assert "Reverse DNS of 2001:db8:100:a::25 removed." in messages
    with pytest.raises(ReverseDnsError, match="has no reverse DNS to remove"):
        change(server, "2001:db8:100:a::25", "")


def test_one_change_at_a_time_with_the_servers_other_operations(rdns, server):
    rdns.forward("mail.customer.test", V4)
    instance_power(instance=server, action="reboot", actor=CUSTOMER, actor_user=server.owner)
    with pytest.raises(OperationInProgress, match="A reboot is in progress"):
        change(server, V4, "mail.customer.test")


def test_a_suspended_server_keeps_its_names_and_cannot_change_them(rdns, server):
    operation = lifecycle.instance_suspend(instance=server, reason="Unpaid.")
    drive(operation.pk)
    server.refresh_from_db()
    with pytest.raises(InstanceError, match="cannot be changed now"):
        change(server, V4, "mail.customer.test")
    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."


def test_removal_puts_the_defaults_back_and_deletes_the_other_names(rdns, server):
    rdns.forward("mail.customer.test", V4, "2001:db8:100:a::25", V6)
    for address in (V4, V6, "2001:db8:100:a::25"):
        change(server, address, "mail.customer.test")

    operation = lifecycle.instance_terminate(instance=server, reason="The subscription ended.")
    assert drive(operation.pk).state == SUCCEEDED

    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."
    assert rdns.ptr(V6) == "2001-db8-100-a--1.example-hosting.net."
    assert rdns.ptr("2001:db8:100:a::25") is None
    assert not ReverseDns.objects.exists()


def test_a_change_while_powerdns_is_down_is_retried_then_fails_for_support(rdns, server, settings):
    rdns.forward("mail.customer.test", V4)
    settings.POWERDNS_API_URL = f"http://127.0.0.1:{dead_port()}"
    settings.OPERATION_MAX_RETRIES = 2

    operation = change(server, V4, "mail.customer.test")

    assert operation.state == FAILED
    assert "PowerDNS could not be reached" in operation.error
    assert operation.error_message.startswith("The reverse DNS change did not go through.")
    assert server.reverse_dns.get(address=V4).ptr == "203-0-113-10.example-hosting.net"
    server.refresh_from_db()
    assert server.status == Instance.Status.RUNNING


def test_a_build_goes_on_when_powerdns_is_down(rdns, demo_location, alice, settings):
    settings.POWERDNS_API_URL = f"http://127.0.0.1:{dead_port()}"
    settings.OPERATION_MAX_RETRIES = 2

    server = running_server(alice, demo_location)

    assert server.status == Instance.Status.RUNNING
    entry = server.events.get(message__startswith="The reverse DNS of this server could not")
    assert "PowerDNS could not be reached" in entry.detail
    assert not server.reverse_dns.exists()


def test_a_removal_powerdns_missed_is_put_right_by_the_next_build_there(
    rdns, server, demo_location, bob, settings
):
    rdns.forward("mail.customer.test", V4, "2001:db8:100:a::25")
    change(server, V4, "mail.customer.test")
    change(server, "2001:db8:100:a::25", "mail.customer.test")
    working_api = settings.POWERDNS_API_URL
    settings.POWERDNS_API_URL = f"http://127.0.0.1:{dead_port()}"
    settings.OPERATION_MAX_RETRIES = 1
    operation = lifecycle.instance_terminate(instance=server, reason="The subscription ended.")
    assert drive(operation.pk).state == SUCCEEDED  # the removal did not wait for PowerDNS
    assert rdns.ptr(V4) == "mail.customer.test."
    settings.POWERDNS_API_URL = working_api
    IPAddress.objects.filter(address=V4).update(released_at="2000-01-01T00:00Z")

    successor = running_server(bob, demo_location, hostname="web2")

    assert successor.ipv4.address == V4
    assert rdns.ptr(V4) == "203-0-113-10.example-hosting.net."
    assert rdns.ptr("2001:db8:100:a::25") is None
    assert set(ReverseDns.objects.values_list("instance", flat=True)) == {successor.pk}
