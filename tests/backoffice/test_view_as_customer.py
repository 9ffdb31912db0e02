"""View as customer: support sees a customer's server list and server pages as the customer
does, read-only and logged, while staying signed in as themselves."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from common.staff_log import VIEW
from tests.factories import make_operation


def view_as(customer, server=None) -> str:
    if server is None:
        return reverse("admin:accounts_user_view_as", args=[customer.pk])
    return reverse("admin:accounts_user_view_as_server", args=[customer.pk, server.pk])


def test_the_customer_page_leads_to_the_customers_own_view(client, support, alice):
    client.force_login(support)
    page = client.get(reverse("admin:accounts_user_change", args=[alice.pk])).content.decode()
    assert view_as(alice) in page


def test_support_sees_the_customers_servers_as_the_customer_does(
    client, support, alice, bob, placed_server
):
    mine = placed_server(alice, "db1")
    placed_server(bob, "bobs-server")
    client.force_login(support)
    response = client.get(view_as(alice))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Viewing as alice@example.com" in page and "db1" in page
    assert "bobs-server" not in page
    assert view_as(alice, mine) in page  # the server links stay in the read-only view
    assert "Order a server" not in page


def test_the_server_page_shows_no_action(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    make_operation(server, state="succeeded", step="ready")
    client.force_login(support)
    page = client.get(view_as(alice, server)).content.decode()
    assert "db1" in page and server.ipv4.address in page and "Timeline" in page
    for action in ("/power/", "/rename/", "/reinstall/", "/password/", "/upgrade/", "/cancel/"):
        assert action not in page, action
    assert 'value="reboot"' not in page and "hx-get" not in page
    # The one form left is the staff member's own "Sign out" in the page's header.
    assert page.count('method="post"') == 1 and reverse("account_logout") in page


def test_the_server_page_shows_its_reverse_dns_but_not_the_form_to_change_it(
    client, support, world, powerdns, demo_location, alice
):
    from django.core.management import call_command

    from tests.instances.operations import running_server

    call_command("reverse_dns_zones", stdout=open("/dev/null", "w"))  # noqa: SIM115
    server = running_server(alice, demo_location)
    client.force_login(support)
    page = client.get(view_as(alice, server)).content.decode()
    assert 'id="reverse-dns"' in page and "203-0-113-10.example-hosting.net" in page
    assert reverse("instances:reverse_dns", args=[server.pk]) not in page


def test_the_browser_may_send_nothing_from_these_pages(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    client.force_login(support)
    for url in (view_as(alice), view_as(alice, server)):
        policy = client.get(url)["Content-Security-Policy"]
        assert "form-action 'none'" in policy and "connect-src 'none'" in policy


def test_nothing_can_be_posted_to_the_read_only_view(client, support, alice, placed_server):
    server = placed_server(alice, "db1")
    client.force_login(support)
    response = client.post(view_as(alice, server), {"action": "stop"})
    assert response.status_code == 405
    assert not server.operations.exists()


def test_support_posting_to_the_customers_own_page_finds_no_server(
    client, support, alice, placed_server
):
    server = placed_server(alice, "db1")
    client.force_login(support)
    response = client.post(reverse("instances:power", args=[server.pk]), {"action": "stop"})
    assert response.status_code == 404
    assert not server.operations.exists()


def test_another_customers_server_is_not_in_this_customers_view(
    client, support, alice, bob, placed_server
):
    bobs = placed_server(bob, "bobs-server")
    client.force_login(support)
    assert client.get(view_as(alice, bobs)).status_code == 404


def test_each_look_is_logged_and_support_stays_signed_in_as_themselves(
    client, support, alice, placed_server
):
    server = placed_server(alice, "db1")
    client.force_login(support)
    client.get(view_as(alice))
    client.get(view_as(alice, server))
    assert client.session[SESSION_KEY] == str(support.pk)
    messages = list(
        LogEntry.objects.filter(user=support, action_flag=VIEW, object_id=str(alice.pk))
        .order_by("pk")
        .values_list("change_message", flat=True)
    )
    assert messages == [
        "Viewed the server list as the customer (read-only).",
        f"Viewed server db1 (#{server.pk}) as the customer (read-only).",
    ]
    log = client.get(reverse("admin:admin_logentry_changelist"), {"action": VIEW})
    assert len(log.context["cl"].result_list) == 2


def test_finance_cannot_view_as_a_customer(client, finance, alice):
    client.force_login(finance)
    assert client.get(view_as(alice)).status_code == 403
    assert not LogEntry.objects.exists()


def test_customers_get_the_login_page(client, alice, bob):
    client.force_login(bob)
    response = client.get(view_as(alice))
    assert response.status_code == 302 and "login" in response["Location"]
