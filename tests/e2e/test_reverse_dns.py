"""Reverse DNS in the browser: the server page's card per address, a name refused because it
does not resolve (the message at the field, the name kept), then accepted once its A record
exists; a Celery worker sets it in the real PowerDNS and the page shows it without a reload.
"""

from __future__ import annotations

import os

from django.core.management import call_command
from django.test import Client
from playwright.sync_api import Page, expect

from tests.instances.operations import running_server

V4 = "203.0.113.10"


def signed_in(page: Page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def test_the_customer_sets_a_ptr_that_resolves_to_the_server(
    page: Page, live_server, worker, world, powerdns, demo_location, alice
):
    call_command("reverse_dns_zones", stdout=open(os.devnull, "w"))  # noqa: SIM115
    server = running_server(alice, demo_location)
    signed_in(page, live_server, alice)
    page.goto(f"{live_server.url}/servers/{server.pk}/")

    cards = page.locator("#reverse-dns .ptr-card")
    expect(cards).to_have_count(3)  # IPv4, the /64's first address, "another address"
    first = cards.first
    expect(first).to_contain_text(V4)
    expect(first).to_contain_text("203-0-113-10.example-hosting.net (default)")

    first.get_by_label("Name").fill("mail.customer.test")
    powerdns.forward("www.customer.test", V4)  # the domain exists; mail.customer.test not yet
    first.get_by_role("button", name="Save").click()
    expect(page.get_by_text("mail.customer.test does not exist in DNS.")).to_be_visible()
    expect(page.get_by_label("Reverse DNS name")).to_have_value("mail.customer.test")
    if os.environ.get("SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOTS"], "rdns-refused.png"))

    powerdns.forward("mail.customer.test", V4)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Reverse DNS change of {V4} started.")).to_be_visible()
    expect(first).to_contain_text("mail.customer.test", timeout=15_000)
    expect(first.get_by_role("button", name="Back to the default name")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text(
        f"Reverse DNS of {V4} set to mail.customer.test."
    )
    assert powerdns.ptr(V4) == "mail.customer.test."
    if os.environ.get("SCREENSHOTS"):
        page.locator("#reverse-dns").screenshot(
            path=os.path.join(os.environ["SCREENSHOTS"], "rdns-cards.png")
        )
        page.screenshot(
            path=os.path.join(os.environ["SCREENSHOTS"], "rdns-page.png"), full_page=True
        )
