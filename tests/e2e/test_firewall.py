"""The firewall in the browser: from the server page's limits card to the rules, a bad port
refused at its field with everything typed kept, a good rule applied by a Celery worker while
the page follows, then a preset; PVE ends with exactly the portal's rules."""

from __future__ import annotations

import os

from django.test import Client
from playwright.sync_api import Page, expect

from sandbox.pve_firewall import verdict
from tests.instances.operations import running_server
from tests.instances.test_isolation_limits import NVME


def signed_in(page: Page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def shot(page: Page, name: str, **options) -> None:
    if os.environ.get("SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOTS"], name), **options)


def test_the_customer_writes_rules_and_the_server_is_filtered_by_them(
    page: Page, live_server, worker, world, demo_location, alice
):
    server = running_server(alice, demo_location, spec=NVME)
    signed_in(page, live_server, alice)
    page.goto(f"{live_server.url}/servers/{server.pk}/")
    card = page.locator("#isolation")
    expect(card).to_contain_text("Firewall: off")
    expect(card).to_contain_text("1 Gbit/s")
    card.get_by_role("link", name="Firewall rules").click()
    expect(page.get_by_role("heading", name="Firewall of web1")).to_be_visible()
    expect(page.get_by_text("Anti-spoofing is always on")).to_be_visible()

    page.get_by_label("Switch the firewall on").check()
    page.get_by_label("Rule 1: Protocol").select_option("tcp")
    page.get_by_label("Rule 1: Port").fill("99999")
    page.get_by_label("Rule 1: Comment").fill("SSH from anywhere")
    page.get_by_role("button", name="Save and apply").click()
    expect(
        page.get_by_text("Nothing was changed: rule 1, port: 99999 is not a port")
    ).to_be_visible()
    expect(page.get_by_label("Rule 1: Comment")).to_have_value("SSH from anywhere")
    expect(page.get_by_label("Rule 1: Port")).to_have_attribute("aria-invalid", "true")
    shot(page, "firewall-refused.png", full_page=True)

    page.get_by_label("Rule 1: Port").fill("22")
    page.get_by_role("button", name="Save and apply").click()
    expect(page.get_by_text("Firewall saved; it is being applied to the server.")).to_be_visible()
    expect(page.locator("#firewall-state")).to_contain_text("On", timeout=15_000)
    expect(page.get_by_text("Your changes are being applied")).to_have_count(0, timeout=15_000)
    shot(page, "firewall-page.png", full_page=True)
    rules = world.firewall_config("vm", vmid=server.vmid)["rules"]
    assert [(r["proto"], r["dport"], r["comment"]) for r in rules] == [
        ("tcp", "22", "SSH from anywhere")
    ]
    address = server.ipv4.address
    assert verdict(world, server.vmid, "in", dport=22, source="192.0.2.1", dest=address) == "ACCEPT"
    assert verdict(world, server.vmid, "in", dport=80, source="192.0.2.1", dest=address) == "DROP"

    page.get_by_role("button", name="Web server").click()
    expect(page.get_by_text("Preset “Web server” saved")).to_be_visible()
    expect(page.get_by_label("Rule 4: Port")).to_have_value("80", timeout=15_000)
    page.wait_for_function(
        "() => !document.querySelector('#firewall-state[hx-get]')", timeout=15_000
    )
    assert verdict(world, server.vmid, "in", dport=443, source="192.0.2.1") == "ACCEPT"

    if os.environ.get("SCREENSHOTS"):
        page.set_viewport_size({"width": 390, "height": 844})
        clip = {"x": 0, "y": 300, "width": 390, "height": 1100}
        shot(page, "firewall-phone.png", full_page=True, clip=clip)
        page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/servers/{server.pk}/")
    expect(page.locator("#isolation")).to_contain_text("Firewall: on, 6 rules")
    page.locator("#isolation").scroll_into_view_if_needed()
    if os.environ.get("SCREENSHOTS"):
        page.locator("#isolation").screenshot(
            path=os.path.join(os.environ["SCREENSHOTS"], "isolation-card.png")
        )
