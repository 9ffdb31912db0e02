"""Upgrade VPS in the browser: a running server, the Upgrade page with Stripe's prorated amount,
the card declined so the upgrade waits for its invoice, the invoice paid on the sandbox's
hosted page, the new size on the server page, and the reboot that applies what PVE could not
take live (the server was built before live upgrades).

Everything is real except Stripe and Proxmox (the sandbox, fakepve at a twentieth of PVE's
durations); a Celery worker runs in this process on the configured broker.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from instances.models import Instance
from tests.e2e.test_order_and_pay import (
    BUILD_TIMEOUT_MS,
    add_ssh_key,
    complete_profile,
    pay_with,
    sign_up,
)

pytestmark = pytest.mark.fakepve(time_scale=0.05)
LATER_DECLINED = "4000 0000 0000 0341"  # pays at checkout, declines every later charge


def as_built_before_live_upgrades(world, instance: Instance) -> None:
    """The server as one built before this portal laid VMs out for hotplug (at the PVE edge)."""
    vm = world.vm(instance.vmid)
    for key in ("hotplug", "numa", "vcpus"):
        vm.config.pop(key, None)
    vm.config["cores"] = str(instance.vcpus)
    Instance.objects.filter(pk=instance.pk).update(max_vcpus=0)


def test_upgrade_pay_the_invoice_and_reboot_for_what_waits(
    page: Page, live_server, mailoutbox, worker, stripe_settings, world
):
    sign_up(page, live_server, mailoutbox, "ute@example.de", "a long passphrase for upgrades 7")
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    complete_profile(page)
    add_ssh_key(page, live_server)
    page.goto(f"{live_server.url}/billing/order/?plan=nvme-vps-s")
    page.get_by_label("Hostname").fill("ute-web")
    page.get_by_label(re.compile("laptop")).check()
    page.get_by_role("button", name="Continue to payment").click()
    pay_with(page, LATER_DECLINED)
    expect(page).to_have_url(re.compile(r"/servers/\d+/$"), timeout=20_000)
    status = page.locator("p.status").first
    expect(status).to_have_text(re.compile("Running", re.I), timeout=BUILD_TIMEOUT_MS)
    instance = Instance.objects.get()
    as_built_before_live_upgrades(world, instance)

    # The Upgrade page: every bigger size with the amount due now, from Stripe's preview.
    page.reload()
    page.get_by_role("link", name="Upgrade").click()
    expect(page.get_by_role("heading", name="Upgrade ute-web")).to_be_visible()
    button = page.get_by_role("button", name=re.compile(r"^Upgrade to NVMe VPS M · pay €"))
    amount = re.search(r"€[\d.,]+", button.inner_text()).group(0)
    expect(page.get_by_text(f"Due now: {amount}").first).to_be_visible()
    button.click()

    # The card is declined: nothing changes until the invoice is paid.
    expect(page.get_by_role("heading", name=re.compile("waits for payment"))).to_be_visible()
    assert Instance.objects.get().vcpus == 2
    page.get_by_role("link", name="Pay the invoice").click()
    expect(page).to_have_url(re.compile(re.escape(stripe_settings.url) + "/i/"))
    expect(page.get_by_role("heading", name=re.compile(f"Pay {re.escape(amount)}"))).to_be_visible()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM / YY)").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=f"Pay {amount}").click()
    expect(page.get_by_text("Status: paid")).to_be_visible()

    # Back on the server page: the new size shows by itself; what PVE keeps for a reboot waits.
    page.goto(f"{live_server.url}/servers/{instance.pk}/")
    spec = page.locator("#spec")
    expect(spec).to_contain_text("NVMe VPS M", timeout=BUILD_TIMEOUT_MS)
    expect(spec).to_contain_text("8 GiB")
    waiting = page.locator("#pending")
    expect(waiting).to_contain_text("take effect at the next reboot", timeout=BUILD_TIMEOUT_MS)
    waiting.get_by_role("button", name="Reboot now").click()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Server rebooted.", timeout=BUILD_TIMEOUT_MS)
    expect(page.locator("#pending")).to_have_count(0, timeout=BUILD_TIMEOUT_MS)
    vm = world.vm(instance.vmid)
    assert int(vm.config["vcpus"]) == 4 and int(vm.config["memory"]) == 8192
    assert not vm.pending
