"""The order form reads like a cloud console: sizes of one product line as cards with prices
with and without VAT, a location with room chosen, the newest SSH key ticked; and the page that
waits for the payment moves on to the server by itself."""

from __future__ import annotations

from django.urls import reverse

from accounts.services import sshkey_add
from billing.orders import order_mark_paid
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.billing.conftest import place


def test_sizes_of_the_chosen_family_come_as_cards_with_and_without_vat(client, shop, german):
    client.force_login(german)
    html = client.get(reverse("billing:order_new") + "?plan=nvme-vps-s").content.decode()
    assert html.count('class="plan-card"') == 1, "only the NVMe VPS sizes"
    assert "NVMe VPS S" in html and "Storage VPS S" not in html.split("plan-cards")[1]
    assert "€4.99</strong> a month excl. VAT · €5.94 incl. VAT" in html  # German VAT 19 %
    assert "75 GiB NVMe" in html and "32 TB traffic" in html
    assert 'href="?family=vds"' in html, "switch to another product line"
    other = client.get(reverse("billing:order_new") + "?family=vds").content.decode()
    assert "VDS S" in other and "setup €10.00" in other


def test_a_location_with_room_and_the_newest_key_are_chosen(client, shop, german):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.accounts.test_ssh_keys import openssh_public

    sshkey_add(owner=german, name="old laptop", public_key=ED25519_KEY)
    newest = sshkey_add(
        owner=german,
        name="new laptop",
        public_key=openssh_public(ed25519.Ed25519PrivateKey.generate(), "new"),
    )
    client.force_login(german)
    response = client.get(reverse("billing:order_new") + "?plan=nvme-vps-s")
    form = response.context["form"]
    assert form.initial["location"] == shop["location"]
    assert form.initial["ssh_keys"] == [newest.pk]
    assert form.initial["generate_password"] is False


def test_the_page_waiting_for_the_payment_moves_on_to_the_server(client, shop, german):
    order = place(german, shop)
    client.force_login(german)
    waiting = client.get(reverse("billing:order", args=[order.pk]), headers={"HX-Request": "true"})
    assert waiting.status_code == 200 and "HX-Redirect" not in waiting
    order = order_mark_paid(order_id=order.pk, subscription_id="sub_1", reason="paid")
    moved = client.get(reverse("billing:order", args=[order.pk]), headers={"HX-Request": "true"})
    assert moved["HX-Redirect"] == reverse("instances:detail", args=[order.instance_id])
