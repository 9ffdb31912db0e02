"""Upgrade VPS end to end: the page shows Stripe's exact prorated amount, the confirmed update
charges exactly that, and the server grows live only once Stripe has the money; a payment that
fails changes nothing until the invoice is paid; a double click charges once; a downgrade that
would shrink the disk is refused, an allowed one applies from the next period.

A real order paid on the Stripe demo_sandbox, its webhooks delivered signed, and the server built on
the demo cluster in fakepve; nothing in the portal is faked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from billing import upgrades
from billing.models import Plan, Subscription, Upgrade
from instances.models import Instance, InstanceOperation
from tests.billing.conftest import GOOD_CARD, LATER_DECLINED, stripe_api
from tests.instances.world import drive

State = Upgrade.State
SUCCEEDED = InstanceOperation.State.SUCCEEDED


def upgrade_page(client, server) -> str:
    response = client.get(f"/billing/servers/{server.pk}/upgrade/")
    assert response.status_code == 200
    return response.content.decode()


def quote_on(page: str, plan_name: str) -> tuple[str, str]:
    """The quote of a size's Upgrade button, and the amount the button says."""
    match = re.search(
        r'name="quote" value="([^"]+)">\s*<button type="submit" class="button">Upgrade to '
        + re.escape(plan_name)
        + r" · pay (€[\d.,]+)",
        page,
    )
    assert match, f"no upgrade to {plan_name} on the page"
    return match.group(1), match.group(2)


def confirm(client, server, token: str, *, follow: bool = False, **extra):
    url = f"/billing/servers/{server.pk}/upgrade/confirm/"
    return client.post(url, {"quote": token, **extra}, follow=follow)


def update_invoices(demo_sandbox) -> list:
    invoices = stripe_api(demo_sandbox).v1.invoices.list({"limit": 100}).data
    return [invoice for invoice in invoices if invoice.billing_reason == "subscription_update"]


def stripe_price(demo_sandbox, server) -> str:
    subscription = Subscription.objects.get(order__instance=server)
    found = stripe_api(demo_sandbox).v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    return found["items"]["data"][0]["price"]["id"]


def resized(server) -> Instance:
    assert drive(server.operations.filter(kind="resize").first().pk).state == SUCCEEDED
    server.refresh_from_db()
    return server


def test_the_amount_shown_is_charged_and_the_server_grows_live(
    client, world, demo_sandbox, german, paid_server, settle
):
    server = paid_server(german)
    page = upgrade_page(client, server)
    assert "Applied at once" in page and "NVMe VPS XL" in page and "VDS S" in page
    token, shown = quote_on(page, "NVMe VPS M")
    response = confirm(client, server, token)
    assert response.status_code == 302 and response["Location"] == f"/servers/{server.pk}/"
    [invoice] = update_invoices(demo_sandbox)
    assert f"€{invoice.amount_paid / 100:,.2f}" == shown and invoice.status == "paid"
    assert invoice.total_taxes  # German VAT on the proration too
    upgrade = Upgrade.objects.get()
    assert (upgrade.state, upgrade.amount_due_cents) == (State.APPLIED, invoice.amount_paid)
    server = resized(server)
    assert (server.plan_name, server.vcpus, server.memory_mib, server.disk_gib) == (
        *("NVMe VPS M", 4),
        *(8192, 150),
    )
    vm = world.vm(server.vmid)
    assert int(vm.config["vcpus"]) == 4 and int(vm.config["memory"]) == 8192
    assert vm.status == "running" and not vm.pending and "size=150G" in vm.config["scsi0"]
    assert server.pending_changes == []
    assert Subscription.objects.get().plan.slug == "nvme-vps-m"
    settle()  # the update's own webhooks change nothing more
    assert server.operations.filter(kind="resize").count() == 1
    entry = server.events.get(message__startswith="Upgraded to NVMe VPS M (")
    assert f"({shown} charged, VAT included)" in entry.message and entry.actor == "customer"


def test_the_amount_due_is_prorated_from_the_time_the_quote_is_made_at(
    client, world, demo_sandbox, german, paid_server, settle
):
    """A caller on another clock (beat, the soak test on the sandbox's) gives the time: half
    the period gone, half of a month's difference is due, and exactly that is charged."""
    server = paid_server(german)
    subscription = Subscription.objects.get()
    demo_sandbox.advance(15 * 86400)
    halfway = datetime.fromtimestamp(demo_sandbox.now(), tz=UTC)
    options = upgrades.upgrade_options(german, server, now=halfway)
    [option] = [o for o in options if o.plan.slug == "nvme-vps-m"]
    start, end = subscription.current_period_start, subscription.current_period_end
    left = (end - halfway) / (end - start)
    month = (849 - 499) * 1.19  # a month of NVMe VPS M instead of S, VAT included
    assert abs(option.due_now_cents - month * left) <= 2
    upgrades.upgrade_confirm(user=german, instance=server, token=option.token)
    [invoice] = update_invoices(demo_sandbox)
    assert invoice.amount_paid == option.due_now_cents


def test_confirming_twice_charges_once(client, world, demo_sandbox, german, paid_server, settle):
    server = paid_server(german)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS L")
    confirm(client, server, token)
    confirm(client, server, token)  # a double click, or a second tab
    assert len(update_invoices(demo_sandbox)) == 1
    assert Upgrade.objects.count() == 1
    settle()
    assert server.operations.filter(kind="resize").count() == 1


def test_a_declined_payment_changes_nothing_until_the_invoice_is_paid(
    client, world, demo_sandbox, german, paid_server, settle
):
    server = paid_server(german, card=LATER_DECLINED)
    old_price = stripe_price(demo_sandbox, server)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    response = confirm(client, server, token)
    assert response["Location"] == f"/billing/servers/{server.pk}/upgrade/"
    upgrade = Upgrade.objects.get()
    assert upgrade.state == State.AWAITING_PAYMENT and upgrade.hosted_invoice_url
    assert upgrade.expires_at - timezone.now() > timedelta(hours=22)
    page = upgrade_page(client, server)
    assert "waits for payment" in page and upgrade.hosted_invoice_url in page
    settle()
    server.refresh_from_db()
    assert not server.operations.filter(kind="resize").exists()
    assert (server.vcpus, stripe_price(demo_sandbox, server)) == (2, old_price)
    assert int(world.vm(server.vmid).config["vcpus"]) == 2

    demo_sandbox.pay_invoice(upgrade.stripe_invoice_id, GOOD_CARD)  # on Stripe's hosted page
    settle()
    upgrade.refresh_from_db()
    assert upgrade.state == State.APPLIED
    assert resized(server).vcpus == 4
    settle()
    assert server.operations.filter(kind="resize").count() == 1


def test_an_unpaid_upgrade_expires_and_can_be_chosen_again(
    client, world, demo_sandbox, german, paid_server, settle
):
    server = paid_server(german, card=LATER_DECLINED)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    confirm(client, server, token)
    demo_sandbox.advance(24 * 3600)
    settle()
    upgrade = Upgrade.objects.get()
    assert upgrade.state == State.EXPIRED
    page = upgrade_page(client, server)
    assert "was not paid in time" in page
    quote_on(page, "NVMe VPS M")  # offered again
    assert not server.operations.filter(kind="resize").exists()


def test_an_old_quote_is_refused_and_the_current_price_shown(
    client, world, demo_sandbox, german, paid_server
):
    server = paid_server(german)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    later = timezone.now() + timedelta(seconds=upgrades.QUOTE_MAX_AGE + 60)
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=later.timestamp()):
        response = confirm(client, server, token, follow=True)
    assert "quoted a while ago" in response.content.decode()
    assert not Upgrade.objects.exists() and not update_invoices(demo_sandbox)


def test_a_forged_quote_is_refused(client, world, demo_sandbox, german, paid_server):
    server = paid_server(german)
    response = confirm(client, server, "not-a-quote", follow=True)
    assert "Choose one of the sizes offered." in response.content.decode()
    assert not Upgrade.objects.exists()


def test_a_downgrade_that_would_shrink_the_disk_is_refused(
    client, world, demo_sandbox, german, paid_server
):
    server = paid_server(german, plan="nvme-vps-m")
    page = upgrade_page(client, server)
    assert "Not possible: Its disk is 75 GiB and yours is 150 GiB: disks never shrink." in page
    small = Plan.objects.get(slug="nvme-vps-s")
    response = client.post(
        f"/billing/servers/{server.pk}/downgrade/", {"plan": small.pk}, follow=True
    )
    assert "disks never shrink" in response.content.decode()
    assert not Upgrade.objects.exists()


def test_cpu_and_ram_only_then_a_downgrade_from_the_next_period(
    client, world, demo_sandbox, german, paid_server, settle
):
    server = paid_server(german)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    confirm(client, server, token, keep_disk="1")
    server = resized(server)
    assert (server.vcpus, server.disk_gib) == (4, 75)  # the disk kept its size

    small = Plan.objects.get(slug="nvme-vps-s")
    client.post(f"/billing/servers/{server.pk}/downgrade/", {"plan": small.pk})
    downgrade = Upgrade.objects.get(kind=Upgrade.Kind.DOWNGRADE)
    assert downgrade.state == State.SCHEDULED
    assert stripe_price(demo_sandbox, server) == small.stripe_price_id
    assert len(update_invoices(demo_sandbox)) == 1  # no refund, no invoice for the downgrade
    assert "moves to NVMe VPS S on" in upgrade_page(client, server)
    assert upgrades.upgrades_due() == 0  # not before the period ends

    demo_sandbox.advance(
        32 * 86400
    )  # the next period begins; its invoice charges the smaller price
    settle()
    assert upgrades.upgrades_due(now=timezone.now() + timedelta(days=32)) == 1
    server = resized(server)
    assert (server.plan_name, server.vcpus, server.memory_mib) == ("NVMe VPS S", 2, 4096)
    assert Subscription.objects.get().plan == small


def test_a_planned_downgrade_can_be_taken_back(client, world, demo_sandbox, german, paid_server):
    server = paid_server(german)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    confirm(client, server, token, keep_disk="1")
    resized(server)
    small = Plan.objects.get(slug="nvme-vps-s")
    client.post(f"/billing/servers/{server.pk}/downgrade/", {"plan": small.pk})
    client.post(f"/billing/servers/{server.pk}/downgrade/", {"cancel": "1"})
    assert Upgrade.objects.get(kind="downgrade").state == State.CANCELLED
    assert stripe_price(demo_sandbox, server) == Plan.objects.get(slug="nvme-vps-m").stripe_price_id


def test_another_customers_upgrade_page_does_not_exist(
    client, world, demo_sandbox, german, mallory, paid_server
):
    server = paid_server(german)
    token, _shown = quote_on(upgrade_page(client, server), "NVMe VPS M")
    client.force_login(mallory)
    assert client.get(f"/billing/servers/{server.pk}/upgrade/").status_code == 404
    assert confirm(client, server, token).status_code == 404
    assert client.post(f"/billing/servers/{server.pk}/downgrade/", {"plan": 1}).status_code == 404
    assert not Upgrade.objects.exists()
