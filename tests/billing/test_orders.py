"""The order form and the order page: what the customer sees, what the server computes, and
what tampering gets (refused, nothing created)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import CustomerProfile
from accounts.services import sshkey_add
from billing.models import Order, Plan
from billing.vat import DOMESTIC, EU_B2C, OUTSIDE_EU, REVERSE_CHARGE
from instances.models import Instance, IPAddress
from tests.accounts.test_ssh_keys import ED25519_KEY as ED25519
from tests.billing.conftest import DECLINED_CARD, pay, place, process_all, sandbox_events

pytestmark = pytest.mark.django_db


def form_data(shop, plan="nvme", **overrides):
    return {
        "plan": shop[plan].pk,
        "location": shop["location"].pk,
        "os_image": shop["image"].pk,
        "hostname": "web-1",
        "generate_password": "on",
    } | overrides


def test_order_needs_login(client, shop):
    response = client.get(reverse("billing:order_new"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_order_needs_a_billing_profile_first(client, shop, alice):
    CustomerProfile.objects.filter(user=alice).delete()
    client.force_login(alice)
    response = client.get(reverse("billing:order_new") + "?plan=nvme-vps-s")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:profile") + "?next=")


def test_form_shows_net_vat_and_total(client, shop, french):
    client.force_login(french)
    response = client.get(reverse("billing:order_new") + "?plan=vds-s")
    assert response.status_code == 200
    page = response.content.decode()
    # €29.99 + €10.00 setup; French consumer: 20% → €6.00 + €2.00; €47.99 due today.
    assert "€29.99" in page and "€10.00" in page
    assert "VAT at 20% (FR)" in page
    assert "€8.00" in page
    assert "€47.99" in page
    assert "€35.99" in page  # then monthly incl. VAT


def test_summary_partial_follows_the_plan(client, shop, american):
    client.force_login(american)
    response = client.get(reverse("billing:order_summary"), {"plan": shop["nvme"].pk})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="order-summary"' in page and "<html" not in page
    assert "No EU VAT" in page and "€4.99" in page


@pytest.mark.parametrize(
    "who,treatment,vat,total",
    [
        ("german", DOMESTIC, 95, 594),
        ("french", EU_B2C, 100, 599),
        ("french_business", REVERSE_CHARGE, 0, 499),
        ("american", OUTSIDE_EU, 0, 499),
    ],
)
def test_order_amounts_by_vat_situation(request, client, shop, who, treatment, vat, total):
    """The order and Stripe's invoice agree to the cent for each VAT situation."""
    user = request.getfixturevalue(who)
    sandbox = request.getfixturevalue("stripe_settings")
    client.force_login(user)
    response = client.post(reverse("billing:order_new"), form_data(shop))
    order = Order.objects.get(owner=user)
    assert response.status_code == 302
    assert response["Location"] == f"{sandbox.url}/c/pay/{order.stripe_checkout_session_id}"
    assert order.vat_treatment == treatment
    assert (order.monthly_net_cents, order.monthly_vat_cents) == (499, vat)
    assert order.first_total_cents == total
    pay(sandbox, order)
    invoice = next(e["data"]["object"] for e in sandbox_events(sandbox, "invoice.paid"))
    assert invoice["total"] == total
    assert invoice["amount_paid"] == total
    assert sum(t["amount"] for t in invoice.get("total_taxes") or []) == vat


def test_posting_a_price_changes_nothing(client, shop, german):
    """Amounts are never fields: a posted price (or another plan's) is ignored."""
    client.force_login(german)
    client.post(
        reverse("billing:order_new"),
        form_data(shop) | {"price_cents": 1, "monthly_net_cents": 1, "stripe_price_id": "x"},
    )
    order = Order.objects.get()
    assert order.monthly_net_cents == 499
    assert order.stripe_price_id == shop["nvme"].stripe_price_id


def test_another_customers_ssh_key_is_refused(client, shop, german, french):
    key = sshkey_add(owner=french, name="theirs", public_key=ED25519)
    client.force_login(german)
    response = client.post(
        reverse("billing:order_new"),
        form_data(shop, ssh_keys=[key.pk], generate_password=""),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Order.objects.count() == 0


def test_service_refuses_another_customers_key_too(shop, german, french):
    from billing.orders import OrderError

    key = sshkey_add(owner=french, name="theirs", public_key=ED25519)
    with pytest.raises(OrderError, match="not yours"):
        place(german, shop, keys=[key.pk])
    assert Order.objects.count() == 0


def test_inactive_plan_and_unknown_ids_are_refused(client, shop, german):
    Plan.objects.filter(pk=shop["storage"].pk).update(active=False)
    client.force_login(german)
    for bad in (
        {"plan": shop["storage"].pk},
        {"plan": 999999},
        {"location": 999999},
        {"os_image": 999999},
    ):
        response = client.post(reverse("billing:order_new"), form_data(shop) | bad)
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    assert Order.objects.count() == 0


@pytest.mark.parametrize("hostname", ["-web", "web_1", "a" * 64, "", "web 1", "wéb"])
def test_bad_hostname_keeps_the_input(client, shop, german, hostname):
    client.force_login(german)
    response = client.post(reverse("billing:order_new"), form_data(shop, hostname=hostname))
    assert response.status_code == 200
    page = response.content.decode()
    assert "hostname" in page.lower()
    assert 'class="errorlist' in page
    assert Order.objects.count() == 0


def test_no_key_and_no_password_is_refused(client, shop, german):
    client.force_login(german)
    response = client.post(reverse("billing:order_new"), form_data(shop, generate_password=""))
    assert "Choose at least one SSH key or ask for a root password." in response.content.decode()
    assert Order.objects.count() == 0


def test_sold_out_location_is_refused(client, shop, german):
    IPAddress.objects.update(state=IPAddress.State.RESERVED)
    client.force_login(german)
    response = client.post(reverse("billing:order_new"), form_data(shop))
    assert response.status_code == 200
    assert "sold out" in response.content.decode()
    assert Order.objects.count() == 0


def test_plans_page_says_sold_out(client, shop):
    page = client.get(reverse("plans")).content.decode()
    assert "NVMe VPS S" in page and "€4.99" in page and "sold out" not in page
    IPAddress.objects.update(state=IPAddress.State.RESERVED)
    page = client.get(reverse("plans")).content.decode()
    assert "Test eu-test-1: sold out" in page


def test_another_customers_order_is_404(client, shop, german, french):
    order = place(german, shop)
    client.force_login(french)
    assert client.get(reverse("billing:order", args=[order.pk])).status_code == 404
    for name in ("billing:order_pay", "billing:order_cancel", "billing:order_password"):
        assert client.post(reverse(name, args=[order.pk])).status_code == 404
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT
    assert not order.stripe_checkout_session_id


def test_state_changes_need_post(client, shop, german):
    order = place(german, shop)
    client.force_login(german)
    for name in ("billing:order_pay", "billing:order_cancel", "billing:order_password"):
        assert client.get(reverse(name, args=[order.pk])).status_code == 405


def test_cancelled_checkout_leaves_the_order_payable(client, shop, german, stripe_settings):
    order = place(german, shop)
    client.force_login(german)
    first = client.post(reverse("billing:order_pay", args=[order.pk]))
    assert first.status_code == 302
    # Back from Stripe's cancel link: the order page offers to pay again, same open session.
    page = client.get(reverse("billing:order", args=[order.pk])).content.decode()
    assert "Awaiting payment" in page and "Pay €5.94" in page
    again = client.post(reverse("billing:order_pay", args=[order.pk]))
    assert again["Location"] == first["Location"]


def test_declined_card_creates_nothing(client, shop, german, stripe_settings):
    order = place(german, shop)
    with pytest.raises(Exception, match="declined"):
        pay(stripe_settings, order, DECLINED_CARD)
    for event in sandbox_events(stripe_settings):
        from tests.billing.conftest import deliver

        deliver(client, event)
    process_all()
    order.refresh_from_db()
    assert order.status == Order.Status.AWAITING_PAYMENT
    assert Instance.objects.count() == 0


def test_cancel_order(client, shop, german):
    order = place(german, shop)
    client.force_login(german)
    client.post(reverse("billing:order_cancel", args=[order.pk]))
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELED
    response = client.post(reverse("billing:order_pay", args=[order.pk]), follow=True)
    assert "not awaiting payment" in response.content.decode()


def test_generated_password_is_shown_once(client, shop, german, stripe_settings):
    from tests.billing.conftest import deliver

    order = place(german, shop)
    pay(stripe_settings, order)
    for event in sandbox_events(stripe_settings):
        deliver(client, event)
    process_all()
    order.refresh_from_db()
    assert order.instance.new_password_encrypted
    client.force_login(german)
    page = client.get(reverse("billing:order", args=[order.pk])).content.decode()
    assert "Show the root password" in page
    shown = client.post(reverse("billing:order_password", args=[order.pk]))
    password = shown.context["password"]
    assert len(password) >= 16 and password in shown.content.decode()
    assert Instance.objects.get().new_password_encrypted == ""
    again = client.post(reverse("billing:order_password", args=[order.pk]), follow=True)
    assert password not in again.content.decode()
    assert "already shown once" in again.content.decode()


def test_cancelling_closes_the_checkout_page(client, shop, german, stripe_settings):
    order = place(german, shop)
    client.force_login(german)
    client.post(reverse("billing:order_pay", args=[order.pk]))
    order.refresh_from_db()
    client.post(reverse("billing:order_cancel", args=[order.pk]))
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELED
    with pytest.raises(Exception, match="no longer active"):
        stripe_settings.pay(order.stripe_checkout_session_id, "4242424242424242")


def test_an_old_unpaid_order_after_a_price_change_says_so(client, shop, german):
    from billing.catalog import plan_sync

    order = place(german, shop)
    Plan.objects.filter(pk=shop["nvme"].pk).update(price_cents=549)
    plan_sync(Plan.objects.get(pk=shop["nvme"].pk))
    client.force_login(german)
    response = client.post(reverse("billing:order_pay", args=[order.pk]), follow=True)
    assert "price of NVMe VPS S changed" in response.content.decode()
    order.refresh_from_db()
    assert not order.stripe_checkout_session_id
