"""Tenant isolation over every customer URL, table-driven from the URL resolver.

For each URL of the customer side: the owner (alice) gets the page, another customer (mallory)
gets 404 (never 403: another customer's things do not exist for them), an anonymous visitor is
sent to the login page; and every POST by mallory changes nothing, in the portal or in PVE.
A new URL without a row in TABLE fails the first test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import SSHKey
from api.models import APIToken
from api.tokens import token_create
from billing.models import Order, Plan
from instances.models import InstanceOperation
from tests.instances.operations import running_server

NAMESPACES = ("accounts", "instances", "billing", "api")


@dataclass(frozen=True)
class Row:
    kwarg: str | None  # the object the URL names: instance_id, order_id, key_id; None: own data
    method: str = "GET"
    data: dict | None = None


# The firewall page's POST: switched on, no rules (the formset's management form).
FIREWALL_FORM = {"enabled": "on", "policy_in": "DROP", "policy_out": "ACCEPT"}
FIREWALL_FORM |= {"rules-TOTAL_FORMS": "0", "rules-INITIAL_FORMS": "0"}
TABLE = {
    "accounts:overview": Row(None),
    "accounts:profile": Row(None),
    "accounts:ssh_keys": Row(None),
    "accounts:ssh_key_delete": Row("key_id", "POST"),
    "instances:list": Row(None),
    "instances:detail": Row("instance_id"),
    "instances:graphs": Row("instance_id"),
    "instances:power": Row("instance_id", "POST", {"action": "reboot"}),
    "instances:rename": Row("instance_id", "POST", {"hostname": "taken-over"}),
    "instances:reinstall": Row("instance_id", "POST", {"image": 0, "confirm_hostname": "web1"}),
    "instances:password": Row("instance_id", "POST", {"allow_reboot": "on"}),
    "instances:password_reveal": Row("instance_id", "POST"),
    "instances:reboot_plan": Row("instance_id", "POST", {"at": "2030-01-01T03:00"}),
    "instances:firewall": Row("instance_id", "POST", FIREWALL_FORM),
    "instances:firewall_preset": Row("instance_id", "POST", {"preset": "ssh"}),
    "instances:reverse_dns": Row("instance_id", "POST", {"address": "1.2.3.4", "ptr": "x.example"}),
    "instances:console": Row("instance_id"),
    "instances:console_session": Row("instance_id", "POST", {"kind": "terminal"}),
    "instances:snapshot_take": Row("instance_id", "POST", {"label": "taken-over"}),
    "instances:snapshot_rollback": Row("instance_id", "POST", {"snapshot": 1}),
    "instances:snapshot_delete": Row("instance_id", "POST", {"snapshot": 1}),
    "instances:backup_now": Row("instance_id", "POST"),
    "instances:backup_restore": Row("instance_id", "POST", {"backup": 1}),
    "api:tokens": Row(None),
    "api:token_revoke": Row("token_id", "POST"),
    "billing:overview": Row(None),
    "billing:order_new": Row(None),
    "billing:order_summary": Row(None),
    "billing:customer_portal": Row(None, "POST"),
    "billing:order": Row("order_id"),
    "billing:order_pay": Row("order_id", "POST"),
    "billing:order_pay_saved": Row("order_id", "POST"),
    "billing:order_cancel": Row("order_id", "POST"),
    "billing:order_password": Row("order_id", "POST"),
    "billing:upgrade": Row("instance_id"),
    "billing:upgrade_confirm": Row("instance_id", "POST", {"quote": "x"}),
    "billing:downgrade": Row("instance_id", "POST", {"plan": 1}),
    "billing:cancel": Row("instance_id", "POST", {"action": "now", "confirm_hostname": "web1"}),
}
# Answers anyone, by design: Stripe's signed webhook (the signature is the check).
PUBLIC = {"billing:stripe_webhook"}


def customer_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace in NAMESPACES and pattern.name:
                names.add(f"{namespace}:{pattern.name}")

    walk(get_resolver().url_patterns, None)
    return names


def test_every_customer_url_has_a_row():
    assert customer_url_names() - PUBLIC == set(TABLE)


@pytest.fixture
def things(world, demo_location, alice, stripe_settings):
    """One of each of alice's things a URL can name."""
    server = running_server(alice, demo_location)
    plan = Plan.objects.get(slug="nvme-vps-s")  # the demo catalog seed_demo made
    order = Order.objects.create(
        owner=alice,
        plan=plan,
        location=demo_location,
        os_image=server.os_image,
        hostname="shop",
        currency="EUR",
        monthly_net_cents=499,
        monthly_vat_cents=95,
        setup_net_cents=0,
        setup_vat_cents=0,
        vat_treatment="domestic",
        vat_country="DE",
        vat_rate=19,
        stripe_price_id="price_x",
    )
    token, _secret = token_create(owner=alice, name="ci", scope=APIToken.Scope.WRITE)
    return {
        "instance_id": server.pk,
        "order_id": order.pk,
        "key_id": alice.ssh_keys.get().pk,
        "token_id": token.pk,
    }


def url_for(name: str, row: Row, things: dict) -> str:
    return reverse(name, kwargs={row.kwarg: things[row.kwarg]} if row.kwarg else None)


def send(client, name: str, row: Row, things: dict):
    url = url_for(name, row, things)
    if row.method == "POST":
        return client.post(url, row.data or {})
    return client.get(url)


def snapshot(world) -> tuple:
    return (
        InstanceOperation.objects.count(),
        list(Order.objects.values_list("status", "updated_at")),
        SSHKey.objects.count(),
        list(APIToken.objects.values_list("pk", "revoked_at")),
        len(world.tasklog),
        sorted((vm.vmid, vm.name, vm.status) for vm in world.vms),
    )


@pytest.mark.parametrize("name", sorted(name for name, row in TABLE.items() if row.kwarg))
def test_another_customers_thing_is_404_and_nothing_changes(client, things, mallory, world, name):
    row = TABLE[name]
    client.force_login(mallory)
    before = snapshot(world)
    response = send(client, name, row, things)
    assert response.status_code == 404, f"{name} answered {response.status_code}"
    if row.method == "POST":
        assert snapshot(world) == before
    for method in ("get", "post"):  # whichever method the URL takes, never a 403
        assert getattr(client, method)(url_for(name, row, things)).status_code in {404, 405}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_anonymous_visitors_are_sent_to_the_login_page(client, things, world, name):
    before = snapshot(world)
    response = send(client, name, TABLE[name], things)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert snapshot(world) == before


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_owner_is_served(client, things, alice, name):
    client.force_login(alice)
    response = send(client, name, TABLE[name], things)
    assert response.status_code in {200, 204, 302}, f"{name} answered {response.status_code}"
    if response.status_code == 302:
        assert not response["Location"].startswith(reverse("account_login"))
