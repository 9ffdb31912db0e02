"""Tenant isolation over every API route, table-driven from the API's own routes.

For each route naming one of alice's things: mallory's token gets 404 (never 403) and changes
nothing, in the portal or in PVE; no token gets 401 and changes nothing; alice is served.
Lists show each customer only their own things. A new route without a row fails the first test.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from accounts.models import SSHKey
from api.main import api
from billing.models import Order, Plan
from instances.models import InstanceBackup, InstanceOperation, InstanceSnapshot
from instances.services import instance_power
from tests.api.conftest import Api, token_for
from tests.instances.operations import running_server


@dataclass(frozen=True)
class Row:
    names: str | None  # what the path names: server, order, key, operation, plan; None: lists
    body: dict | None = None


TABLE = {
    ("GET", "/servers"): Row(None),
    ("POST", "/servers"): Row(
        None,
        {
            "plan": "nvme-vps-s",
            "location": "x",
            "image": "x",
            "hostname": "mine",
            "generate_password": True,
        },
    ),
    ("GET", "/servers/{server_id}"): Row("server"),
    ("POST", "/servers/{server_id}/power"): Row("server", {"action": "reboot"}),
    ("POST", "/servers/{server_id}/rename"): Row("server", {"hostname": "taken-over"}),
    ("POST", "/servers/{server_id}/reinstall"): Row(
        "server", {"image": "debian-12", "generate_password": True, "confirm_hostname": "web1"}
    ),
    ("POST", "/servers/{server_id}/password-reset"): Row("server", {"allow_reboot": True}),
    ("POST", "/servers/{server_id}/password/reveal"): Row("server", {}),
    ("POST", "/servers/{server_id}/reboot-plan"): Row("server", {"at": "2030-01-01T03:00:00Z"}),
    ("GET", "/servers/{server_id}/metrics"): Row("server"),
    ("GET", "/servers/{server_id}/operations"): Row("server"),
    ("GET", "/servers/{server_id}/upgrades"): Row("server"),
    ("POST", "/servers/{server_id}/upgrade"): Row("server", {"quote": "x"}),
    ("POST", "/servers/{server_id}/downgrade"): Row("server", {"plan": "nvme-vps-s"}),
    ("GET", "/servers/{server_id}/reverse-dns"): Row("server"),
    ("POST", "/servers/{server_id}/reverse-dns"): Row(
        "server", {"address": "203.0.113.10", "ptr": "x.example"}
    ),
    ("GET", "/servers/{server_id}/firewall"): Row("server"),
    ("POST", "/servers/{server_id}/firewall"): Row(
        "server", {"enabled": True, "rules": [{"protocol": "tcp", "port": "22"}]}
    ),
    ("POST", "/servers/{server_id}/firewall/preset"): Row("server", {"preset": "web"}),
    ("GET", "/servers/{server_id}/snapshots"): Row("server"),
    ("POST", "/servers/{server_id}/snapshots"): Row("server", {"label": "taken-over"}),
    ("POST", "/servers/{server_id}/snapshots/{snapshot_id}/rollback"): Row("snapshot", {}),
    ("DELETE", "/servers/{server_id}/snapshots/{snapshot_id}"): Row("snapshot"),
    ("GET", "/servers/{server_id}/backups"): Row("server"),
    ("POST", "/servers/{server_id}/backups"): Row("server", {}),
    ("POST", "/servers/{server_id}/backups/{backup_id}/restore"): Row("backup", {}),
    ("GET", "/operations/{operation_id}"): Row("operation"),
    ("GET", "/orders"): Row(None),
    ("GET", "/orders/{order_id}"): Row("order"),
    ("POST", "/orders/{order_id}/checkout"): Row("order", {}),
    ("POST", "/orders/{order_id}/pay-with-saved-card"): Row("order", {}),
    ("POST", "/orders/{order_id}/cancel"): Row("order", {}),
    ("GET", "/saved-card"): Row(None),
    ("GET", "/plans"): Row(None),
    ("GET", "/plans/{slug}"): Row("plan"),
    ("GET", "/locations"): Row(None),
    ("GET", "/images"): Row(None),
    ("GET", "/ssh-keys"): Row(None),
    ("POST", "/ssh-keys"): Row(None, {"name": "x", "public_key": "not a key"}),
    ("DELETE", "/ssh-keys/{key_id}"): Row("key"),
}
# The catalogue is the same for everyone: its paths name no customer's thing.
SHARED = {"plan"}
PARAMETER = {
    "server": "server_id",
    "order": "order_id",
    "key": "key_id",
    "operation": "operation_id",
    "plan": "slug",
    "snapshot": "snapshot_id",
    "backup": "backup_id",
}


def routes() -> set[tuple[str, str]]:
    prefix = "/api/v1"
    return {
        (method.upper(), path.removeprefix(prefix))
        for path, methods in api.get_openapi_schema()["paths"].items()
        for method in methods
    }


def test_every_api_route_has_a_row():
    assert routes() == set(TABLE)


@pytest.fixture
def things(world, demo_location, alice, demo_sandbox):
    server = running_server(alice, demo_location)
    operation = instance_power(instance=server, action="reboot", actor="customer", actor_user=alice)
    InstanceOperation.objects.filter(pk=operation.pk).update(state="succeeded")
    plan = Plan.objects.get(slug="nvme-vps-s")
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
    snapshot = InstanceSnapshot.objects.create(
        instance=server, name="p1", label="before", state=InstanceSnapshot.State.READY
    )
    backup = InstanceBackup.objects.create(
        instance=server, trigger="manual", state=InstanceBackup.State.READY
    )
    return {
        "server": server.pk,
        "snapshot": snapshot.pk,
        "backup": backup.pk,
        "order": order.pk,
        "key": alice.ssh_keys.get().pk,
        "operation": operation.pk,
        "plan": plan.slug,
    }


def path_for(template: str, row: Row, things: dict) -> str:
    """The path with the things it names (a snapshot's path names its server too)."""
    for thing, parameter in PARAMETER.items():
        template = template.replace("{" + parameter + "}", str(things[thing]))
    return template


def send(api_client: Api, route: tuple[str, str], things: dict):
    method, template = route
    row = TABLE[route]
    return api_client.call(method, path_for(template, row, things), row.body)


def snapshot(world) -> tuple:
    return (
        InstanceOperation.objects.count(),
        list(InstanceSnapshot.objects.values_list("pk", "state")),
        list(InstanceBackup.objects.values_list("pk", "state")),
        list(Order.objects.values_list("pk", "status", "updated_at")),
        SSHKey.objects.count(),
        len(world.tasklog),
        sorted((vm.vmid, vm.name, vm.status) for vm in world.vms),
    )


@pytest.mark.parametrize("route", sorted(TABLE), ids=" ".join)
def test_another_customer_gets_404_and_changes_nothing_while_the_owner_is_served(
    client, things, alice, mallory, world, route
):
    """One server per route serves both looks (a build each is the slow part)."""
    if TABLE[route].names not in (None, *SHARED):  # mallory's token on alice's things
        before = snapshot(world)
        response = send(Api(client, token_for(mallory)), route, things)
        assert response.status_code == 404, f"{route} answered {response.status_code}"
        assert response.json()["code"] == "not_found"
        assert snapshot(world) == before
    response = send(Api(client, token_for(alice)), route, things)
    assert response.status_code not in {401, 403, 404} and response.status_code < 500, (
        f"{route} answered {response.status_code}: {response.content[:300]}"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("route", sorted(TABLE), ids=" ".join)
def test_without_a_token_every_route_is_401_and_nothing_changes(client, alice, route):
    """Refused before anything is looked up: no server needs to exist for it."""
    token_for(alice)  # a token exists; the request carries none
    before = (InstanceOperation.objects.count(), Order.objects.count(), SSHKey.objects.count())
    response = send(Api(client, None), route, dict.fromkeys(PARAMETER, 1))
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    after = (InstanceOperation.objects.count(), Order.objects.count(), SSHKey.objects.count())
    assert after == before


@pytest.mark.parametrize("path", ["/servers", "/orders", "/ssh-keys"])
def test_lists_show_only_the_customers_own_things(client, things, mallory, path):
    body = Api(client, token_for(mallory)).get(path).json()
    items = body["items"] if isinstance(body, dict) else body
    assert items == []


@pytest.mark.parametrize(
    "route",
    [route for route, row in sorted(TABLE.items()) if row.names in ("snapshot", "backup")],
    ids=" ".join,
)
def test_another_customers_snapshot_or_backup_is_404_through_ones_own_server_too(
    client, things, mallory, demo_location, world, route
):
    own = running_server(mallory, demo_location, hostname="mine")
    before = snapshot(world)
    method, template = route
    path = path_for(template, TABLE[route], things | {"server": own.pk})
    response = Api(client, token_for(mallory)).call(method, path, TABLE[route].body)
    assert response.status_code == 404
    assert snapshot(world) == before
