"""Who reaches the back office: support works on servers and reads customers and their money
but never exports; finance exports but runs no server action and drains no node; customers
get the login page on every staff URL."""

from __future__ import annotations

import pytest
from django.urls import reverse

from instances.models import Node


def test_support_cannot_export(client, support):
    client.force_login(support)
    assert client.get(reverse("admin:billing_exportrun_changelist")).status_code == 403
    assert client.get(reverse("admin:billing_exportrun_download", args=[1])).status_code == 403
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:billing_exportrun_changelist") not in index


def test_support_reads_customers_servers_nodes_money_and_the_log(client, support):
    client.force_login(support)
    for name in (
        "admin:accounts_user_changelist",
        "admin:instances_instance_changelist",
        "admin:instances_node_changelist",
        "admin:billing_invoice_changelist",
        "admin:billing_subscription_changelist",
        "admin:billing_ledgerentry_changelist",
        "admin:admin_logentry_changelist",
    ):
        assert client.get(reverse(name)).status_code == 200, name


def test_finance_runs_no_server_action(client, finance, alice, placed_server):
    server = placed_server(alice, "db1")
    client.force_login(finance)
    assert (
        client.post(
            reverse("admin:instances_operate", args=[server.pk]), {"action": "stop"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("admin:instances_rename", args=[server.pk]), {"hostname": "x"}
        ).status_code
        == 403
    )
    assert client.get(reverse("admin:instances_instance_changelist")).status_code == 403
    assert not server.operations.exists()


def test_finance_drains_no_node(client, finance, location):
    node = Node.objects.filter(cluster__location=location).first()
    client.force_login(finance)
    url = reverse("admin:instances_node_changelist")
    assert client.post(url, {"action": "drain", "_selected_action": [node.pk]}).status_code == 403
    node.refresh_from_db()
    assert node.state == Node.State.ACTIVE


STAFF_URLS = [
    ("admin:accounts_user_changelist", False),
    ("admin:accounts_user_change", True),
    ("admin:accounts_user_view_as", True),
    ("admin:instances_instance_changelist", False),
    ("admin:instances_node_changelist", False),
    ("admin:admin_logentry_changelist", False),
]


@pytest.mark.parametrize(("name", "with_customer"), STAFF_URLS)
def test_customers_get_the_login_page_on_staff_urls(client, alice, bob, name, with_customer):
    client.force_login(bob)
    response = client.get(reverse(name, args=[alice.pk] if with_customer else []))
    assert response.status_code == 302 and "login" in response["Location"]
