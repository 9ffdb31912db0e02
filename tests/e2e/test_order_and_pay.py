"""A new customer orders an NVMe VPS and pays on the Stripe sandbox's checkout page, then watches
the server being built live until it runs with its IP; a declined card creates nothing.

Everything is real except Stripe and Proxmox: the sandbox delivers signed webhooks to the live
server, a Celery worker (in this process, on the configured broker) processes them and builds
the server on fakepve (the demo cluster, at a twentieth of real PVE durations) over TLS.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from billing.models import Order
from instances.models import Instance
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.e2e.test_signup_and_two_factor import confirmation_link, main_nav, sign_in_with_password

pytestmark = pytest.mark.fakepve(time_scale=0.05)
BUILD_TIMEOUT_MS = 60_000


def sign_up(page: Page, live_server, mailoutbox, email: str, password: str) -> None:
    page.goto(live_server.url)
    main_nav(page).get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_label("Password (again)").fill(password)
    page.get_by_role("button", name="Sign Up").click()
    page.goto(confirmation_link(mailoutbox))
    page.get_by_role("button", name="Confirm").click()
    sign_in_with_password(page, email, password)


def complete_profile(page: Page) -> None:
    page.get_by_label("Full name").fill("Erika Mustermann")
    page.get_by_label("Address:", exact=True).fill("Unter den Linden 5")
    page.get_by_label("Postal code").fill("10117")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Phone").fill("+49 30 7654321")
    page.get_by_role("button", name="Save profile").click()


def add_ssh_key(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/account/ssh-keys/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Public key").fill(ED25519_KEY)
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_role("status")).to_contain_text("laptop")


def pay_with(page: Page, card: str) -> None:
    expect(page.get_by_label("Card number")).to_be_visible()
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Cardholder name").fill("Erika Mustermann")
    page.get_by_role("button", name="Subscribe").click()


def test_order_pay_and_watch_the_server_being_built(
    page: Page, live_server, mailoutbox, worker, stripe_settings
):
    sign_up(page, live_server, mailoutbox, "erika@example.de", "a long passphrase for orders 9")
    # The order page first asks who to invoice, then comes back to the order.
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    expect(page.get_by_role("heading", name="Profile & billing address")).to_be_visible()
    complete_profile(page)
    expect(page.get_by_role("heading", name="Order a server")).to_be_visible()
    add_ssh_key(page, live_server)

    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    summary = page.locator("#order-summary")
    expect(summary).to_contain_text("€4.99")
    expect(summary).to_contain_text("VAT at 19%")
    expect(summary).to_contain_text("€5.94")
    page.get_by_label("Hostname").fill("Bad_Name")
    page.get_by_label(re.compile("laptop")).check()
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_text("A hostname is 1-63 lower-case letters")).to_be_visible()
    page.get_by_label("Hostname").fill("erika-web")
    page.get_by_role("button", name="Continue to payment").click()

    # Stripe's hosted page (the sandbox's): a declined card first, then a good one.
    expect(page).to_have_url(re.compile(re.escape(stripe_settings.url) + "/c/pay/"))
    expect(page.get_by_text("€5.94").first).to_be_visible()
    pay_with(page, "4000 0000 0000 0002")
    expect(page.get_by_text("Your card was declined.")).to_be_visible()
    assert Instance.objects.count() == 0
    pay_with(page, "4242 4242 4242 4242")

    # Back on the portal: the order page waits for Stripe's word, then moves on by itself to
    # the server, whose page shows the build live.
    expect(page).to_have_url(re.compile(r"/servers/\d+/$"), timeout=20_000)
    expect(page.get_by_role("heading", name=re.compile("erika-web"))).to_be_visible()
    status = page.locator("p.status").first
    expect(status).to_have_text(re.compile("Running", re.I), timeout=BUILD_TIMEOUT_MS)
    instance = Instance.objects.get()
    assert instance.status == Instance.Status.RUNNING
    expect(page.get_by_text(instance.ipv4.address).first).to_be_visible()
    order = Order.objects.get()
    assert order.status == Order.Status.PAID and order.instance_id == instance.pk

    main_nav(page).get_by_role("link", name="Billing").click()
    expect(page.get_by_role("cell", name="erika-web")).to_be_visible()
    expect(page.get_by_role("link", name="PDF")).to_be_visible()

    # The control panel: shut down, start, reboot, the graphs, a reinstall.
    page.goto(f"{live_server.url}/servers/{instance.pk}/")
    page.get_by_role("button", name="Shut down").click()
    expect(status).to_have_text(re.compile("Stopped", re.I), timeout=BUILD_TIMEOUT_MS)
    page.get_by_role("button", name="Start").click()
    expect(status).to_have_text(re.compile("Running", re.I), timeout=BUILD_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Reboot")).to_be_visible(timeout=BUILD_TIMEOUT_MS)
    page.get_by_role("button", name="Reboot").click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Server rebooted.", timeout=BUILD_TIMEOUT_MS)
    expect(timeline).to_contain_text("Reboot requested. (by you)")
    usage = page.locator("#graphs")
    expect(usage.get_by_role("img", name=re.compile("CPU"))).to_be_visible(timeout=20_000)
    usage.get_by_role("link", name="Last day").click()
    expect(usage.get_by_role("link", name="Last day")).to_have_attribute("aria-current", "true")

    page.get_by_role("link", name="Reinstall the operating system").click()
    page.get_by_label("Operating system").select_option(label="Ubuntu 24.04")
    page.get_by_label(re.compile("laptop")).uncheck()
    page.get_by_label(re.compile("Generate a password")).check()
    page.get_by_label("Type the server's name to confirm").fill("erika-web")
    page.get_by_role("button", name="Wipe and reinstall erika-web").click()
    expect(timeline).to_contain_text("Reinstalled with Ubuntu 24.04.", timeout=BUILD_TIMEOUT_MS)
    expect(status).to_have_text(re.compile("Running", re.I))
    page.get_by_role("button", name="Show the password").click()
    password = page.locator("#new-password").inner_text()
    assert len(password) >= 16
    page.get_by_role("link", name="I have saved it").click()
    expect(page.get_by_role("button", name="Show the password")).to_have_count(0)
    assert password not in page.content()


def test_a_declined_card_leaves_the_order_unpaid(
    page: Page, live_server, mailoutbox, worker, stripe_settings
):
    sign_up(page, live_server, mailoutbox, "max@example.de", "a long passphrase for orders 8")
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    complete_profile(page)
    page.get_by_label("Hostname").fill("max-web")
    page.get_by_label(re.compile("Generate a root password")).check()
    page.get_by_role("button", name="Continue to payment").click()
    pay_with(page, "4000 0000 0000 0002")
    expect(page.get_by_text("Your card was declined.")).to_be_visible()
    page.get_by_role("link", name=re.compile("Back")).click()
    expect(page.get_by_role("heading", name="Awaiting payment", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pay €5.94")).to_be_visible()
    order = Order.objects.get()
    assert order.status == Order.Status.AWAITING_PAYMENT
    assert Instance.objects.count() == 0
