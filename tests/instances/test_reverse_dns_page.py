"""The server page's reverse DNS: a card per address, and the form that keeps what was typed
when the name is refused."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instances.models import InstanceOperation, ReverseDns
from tests.instances.operations import running_server
from tests.instances.world import drive, live_operation

V4 = "203.0.113.10"


@pytest.fixture
def server(world, powerdns, demo_location, alice):
    call_command("reverse_dns_zones", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return running_server(alice, demo_location)


def test_the_server_page_has_a_card_per_address(alice_client, server):
    page = alice_client.get(reverse("instances:detail", args=[server.pk])).content.decode()

    assert 'id="reverse-dns"' in page
    assert "<code>203.0.113.10</code>" in page
    assert (
        '<code>203-0-113-10.example-hosting.net</code> <span class="muted">(default)</span>' in page
    )
    assert "<code>2001:db8:100:a::1</code>" in page
    assert "Another address of <code>2001:db8:100:a::/64</code>" in page


def test_a_refused_name_comes_back_with_its_message_and_what_was_typed(
    alice_client, server, powerdns
):
    url = reverse("instances:reverse_dns", args=[server.pk])
    powerdns.forward("www.customer.test", V4)

    response = alice_client.post(url, {"address": V4, "ptr": "mail.customer.test"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "mail.customer.test does not exist in DNS." in page
    assert 'value="mail.customer.test"' in page
    assert f'value="{V4}"' in page
    assert not InstanceOperation.objects.filter(kind="reverse_dns").exists()


def test_a_wrong_address_is_said_at_the_address_field(alice_client, server):
    url = reverse("instances:reverse_dns", args=[server.pk])
    response = alice_client.post(url, {"address": "2001:db8:999::1", "ptr": "mail.customer.test"})
    page = response.content.decode()
    assert "is not in this server&#x27;s IPv6 network 2001:db8:100:a::/64." in page
    assert 'value="2001:db8:999::1"' in page


def test_a_good_name_starts_the_change_and_the_page_follows_it(alice_client, server, powerdns):
    powerdns.forward("mail.customer.test", V4)
    url = reverse("instances:reverse_dns", args=[server.pk])

    response = alice_client.post(url, {"address": V4, "ptr": "mail.customer.test"})

    detail = reverse("instances:detail", args=[server.pk])
    assert response.status_code == 302 and response.url == detail + "#reverse-dns"
    page = alice_client.get(detail).content.decode()
    assert "Reverse DNS change in progress" in page
    assert "Changing to <code>mail.customer.test</code>" in page
    drive(live_operation(server.pk).pk)
    page = alice_client.get(detail).content.decode()
    assert "<code>mail.customer.test</code>" in page
    assert "Back to the default name" in page
    assert powerdns.ptr(V4) == "mail.customer.test."


def test_no_card_where_the_portal_does_not_manage_reverse_dns(alice_client, server, settings):
    settings.POWERDNS_API_URL = ""
    page = alice_client.get(reverse("instances:detail", args=[server.pk])).content.decode()
    assert 'id="reverse-dns"' not in page
    response = alice_client.post(
        reverse("instances:reverse_dns", args=[server.pk]), {"address": V4, "ptr": "a.example"}
    )
    assert "set by our support team" in response.content.decode()


def test_the_cards_cost_one_query_however_many_addresses_have_a_ptr(alice_client, server):
    url = reverse("instances:detail", args=[server.pk])

    def queries() -> int:
        alice_client.get(url)  # the same state of the cache for every count
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(url)
        return len(captured)

    with_two = queries()
    ReverseDns.objects.bulk_create(
        ReverseDns(instance=server, address=f"2001:db8:100:a::{n:x}", ptr=f"h{n}.customer.test")
        for n in range(2, 30)
    )
    assert queries() == with_two
