"""The customer page: support finds a customer by anything they might be asked about, and sees
on one page who they are, their servers and their money, each row linking to its own page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instances.models import Instance


def page_of(client, customer) -> str:
    response = client.get(reverse("admin:accounts_user_change", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_support_sees_the_customer_their_servers_and_their_money(
    client, support, alice, customer_with
):
    customer_with(alice, 1)
    server = Instance.objects.get(owner=alice)
    client.force_login(support)
    page = page_of(client, alice)
    assert "Alice Archer" in page and "Hauptstraße 5" in page
    assert f"cus_{alice.pk}test" in page
    # The server: status, node, VMID, address and what runs on it, linked to its admin page.
    assert reverse("admin:instances_instance_change", args=[server.pk]) in page
    assert "bo-status-running" in page and "pve-0" in page
    assert str(server.vmid) in page and server.ipv4.address in page
    assert "reboot · reboot" in page
    # Money: subscription, invoice (with the Stripe id and number), ledger, billing events.
    assert f"sub_{alice.pk}_0" in page
    assert f"INV-{alice.pk}-0000" in page and "€5.94" in page
    assert "invoice paid" in page and "€0.95" in page
    assert "status: incomplete → active" in page
    # The timeline of all the customer's servers.
    assert "Your server is ready." in page


def test_each_section_links_to_all_of_the_customers_rows(client, support, alice, customer_with):
    customer_with(alice, 1)
    client.force_login(support)
    page = page_of(client, alice)
    for url in (
        f"/admin/instances/instance/?owner__id__exact={alice.pk}",
        f"/admin/billing/subscription/?owner__id__exact={alice.pk}",
        f"/admin/billing/invoice/?owner__id__exact={alice.pk}",
        f"/admin/billing/ledgerentry/?customer__id__exact={alice.pk}",
        f"/admin/instances/instanceevent/?instance__owner__id__exact={alice.pk}",
    ):
        assert url in page
        assert client.get(url).status_code == 200, url


def test_the_timeline_link_shows_only_that_customers_servers(
    client, support, alice, bob, customer_with
):
    customer_with(alice, 1)
    customer_with(bob, 1)
    client.force_login(support)
    url = f"/admin/instances/instanceevent/?instance__owner__id__exact={alice.pk}"
    listing = client.get(url).content.decode()
    assert f"{alice.username}-s0" in listing
    assert f"{bob.username}-s0" not in listing


def test_a_customer_without_orders_has_a_page_too(client, support, alice):
    client.force_login(support)
    page = page_of(client, alice)
    assert "No servers." in page and "No invoices." in page and "none yet" in page


def test_support_sees_the_page_read_only(client, support, alice):
    client.force_login(support)
    page = page_of(client, alice)
    assert 'name="email"' not in page and "Save" not in page
    response = client.post(
        reverse("admin:accounts_user_change", args=[alice.pk]), {"email": "x@example.com"}
    )
    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


@pytest.mark.parametrize(
    "term",
    ["alice@example.com", "Archer", "alice-s0", "203.0.113.10", "VMID", "cus_", "INV-"],
)
def test_support_finds_the_customer_by_what_they_are_asked_about(
    client, support, alice, bob, customer_with, term
):
    customer_with(bob, 1)
    customer_with(alice, 1)
    server = Instance.objects.get(owner=alice)
    term = {
        "alice-s0": server.hostname,
        "203.0.113.10": server.ipv4.address,
        "VMID": str(server.vmid),
        "cus_": f"cus_{alice.pk}test",
        "INV-": f"INV-{alice.pk}-0000",
    }.get(term, term)
    client.force_login(support)
    response = client.get(reverse("admin:accounts_user_changelist"), {"q": term})
    results = list(response.context["cl"].result_list)
    assert results == [alice], term


def test_the_customer_list_says_how_many_servers_and_which_stripe_customer(
    client, support, alice, customer_with
):
    customer_with(alice, 2)
    client.force_login(support)
    listing = client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert f"cus_{alice.pk}test" in listing
    assert '<td class="field-servers">2</td>' in listing


def queries_for(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_customer_page_runs_as_many_queries_for_1_row_as_for_20(
    client, support, alice, customer_with
):
    client.force_login(support)
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    customer_with(alice, 1)
    with_one = queries_for(client, url)
    customer_with(alice, 19)
    assert queries_for(client, url) == with_one


def test_the_customer_list_runs_as_many_queries_for_1_customer_as_for_20(
    client, support, customer_with
):
    from tests.factories import ProfileFactory

    client.force_login(support)
    url = reverse("admin:accounts_user_changelist")
    customer_with(ProfileFactory().user, 1)
    with_one = queries_for(client, url)
    for _ in range(19):
        customer_with(ProfileFactory().user, 1)
    assert queries_for(client, url) == with_one
