"""A customer who paid once on Stripe's page orders a second server and pays it with the card
Stripe saved for them, without the checkout page, then watches it being built.

Everything is real except Stripe and Proxmox, as in test_order_and_pay.py: the sandbox's
webhooks reach the live server, a Celery worker builds the server on fakepve.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from billing.models import Order
from instances.models import Instance
from tests.e2e.test_order_and_pay import complete_profile, pay_with, sign_up

pytestmark = pytest.mark.fakepve(time_scale=0.05)
BUILD_TIMEOUT_MS = 60_000


def order(page: Page, live_server, hostname: str) -> None:
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    page.get_by_label("Hostname").fill(hostname)
    page.get_by_label(re.compile("Generate a root password")).check()
    page.get_by_role("button", name="Continue to payment").click()


def test_the_second_order_is_paid_with_the_saved_card(
    page: Page, live_server, mailoutbox, worker, stripe_settings
):
    sign_up(page, live_server, mailoutbox, "lena@example.de", "a long passphrase for orders 7")
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    complete_profile(page)
    order(page, live_server, "lena-one")
    pay_with(page, "4242 4242 4242 4242")
    expect(page).to_have_url(re.compile(r"/servers/\d+/$"), timeout=20_000)

    # The second order: the order page offers the saved card next to Stripe's page.
    order(page, live_server, "lena-two")
    expect(page.get_by_role("heading", name="Awaiting payment", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pay on Stripe")).to_be_visible()
    expect(page.get_by_text("expires 12/34")).to_be_visible()
    if shots := os.environ.get("SCREENSHOTS"):  # for a person to look at
        page.screenshot(path=os.path.join(shots, "order-pay-with-saved-card.png"), full_page=True)
    page.get_by_role("button", name="Pay with Visa •••• 4242").click()

    # Charged at once: the page moves on to the server being built, as after Checkout.
    expect(page).to_have_url(re.compile(r"/servers/\d+/$"), timeout=20_000)
    expect(page.get_by_role("heading", name=re.compile("lena-two"))).to_be_visible()
    status = page.locator("p.status").first
    expect(status).to_have_text(re.compile("Running", re.I), timeout=BUILD_TIMEOUT_MS)
    second = Order.objects.get(hostname="lena-two")
    assert second.status == Order.Status.PAID
    assert Instance.objects.filter(external_ref=f"order:{second.pk}").count() == 1
    assert Instance.objects.count() == 2
