"""The API does what the pages do, through the same services: order and pay, follow the build,
power, rename, reinstall, read a generated password once, graphs data, upgrades."""

from __future__ import annotations

import pytest

from billing.models import Order
from instances.models import Instance, InstanceOperation
from instances.tasks import refresh_usage
from tests.billing.conftest import GOOD_CARD, deliver_all
from tests.instances.operations import running_server
from tests.instances.world import drive

SUCCEEDED = InstanceOperation.State.SUCCEEDED


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def test_a_server_ordered_and_paid_through_the_api_is_built_once(
    client, world, demo_sandbox, api_as, alice
):
    api = api_as(alice)
    [location] = api.get("/locations").json()
    images = api.get("/images", location=location["code"]).json()
    plans = api.get("/plans").json()
    assert any(plan["slug"] == "nvme-vps-s" for plan in plans)
    order_body = {
        "plan": "nvme-vps-s",
        "location": location["code"],
        "image": images[0]["slug"],
        "hostname": "api-1",
        "generate_password": True,
    }
    created = api.post("/servers", order_body, headers={"Idempotency-Key": "order-1"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["checkout_url"].startswith(demo_sandbox.url) and body["payment_error"] is None
    assert body["order"]["status"] == "awaiting_payment" and body["order"]["server_id"] is None
    # A retry of the same request does not order twice.
    again = api.post("/servers", order_body, headers={"Idempotency-Key": "order-1"})
    assert again.json()["order"]["id"] == body["order"]["id"]
    assert Order.objects.count() == 1
    order = Order.objects.get()
    demo_sandbox.pay(order.stripe_checkout_session_id, GOOD_CARD)
    deliver_all(client, demo_sandbox)
    paid = api.get(f"/orders/{order.pk}").json()
    assert paid["status"] == "paid" and paid["server_id"]
    server = api.get(f"/servers/{paid['server_id']}").json()
    assert server["status"] == "queued" and server["operation"]["kind"] == "build"
    drive(server["operation"]["id"])
    built = api.get(f"/servers/{paid['server_id']}").json()
    assert built["status"] == "running" and built["ipv4"] and built["operation"] is None
    assert "reboot" in built["actions"]
    assert Instance.objects.count() == 1
    password = api.post(f"/servers/{paid['server_id']}/password/reveal")
    assert password.status_code == 200 and len(password.json()["password"]) >= 16
    gone = api.post(f"/servers/{paid['server_id']}/password/reveal")
    assert gone.status_code == 410 and gone.json()["code"] == "password_gone"


def test_an_order_the_rules_refuse_names_the_field_and_places_nothing(
    world, demo_sandbox, api_as, alice
):
    api = api_as(alice)
    response = api.post(
        "/servers",
        {"plan": "nvme-vps-s", "location": "nowhere", "image": "debian-12", "hostname": "a"},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "location"
    bad_name = api.post(
        "/servers",
        {"plan": "nvme-vps-s", "location": "fra1", "image": "debian-12", "hostname": "-x-"},
    )
    assert bad_name.json()["field"] in {"hostname", "location"}
    assert not Order.objects.exists()


def test_a_power_action_answers_with_its_operation_to_poll(server, api_as, alice):
    api = api_as(alice)
    response = api.post(f"/servers/{server.pk}/power", {"action": "reboot"})
    assert response.status_code == 202
    operation = response.json()
    assert operation["kind"] == "reboot" and operation["state"] == "queued"
    assert operation["steps"] and operation["percent"] == 0
    busy = api.post(f"/servers/{server.pk}/power", {"action": "stop"})
    assert busy.status_code == 409 and busy.json()["code"] == "busy"
    assert "in progress" in busy.json()["message"]
    drive(operation["id"])
    done = api.get(f"/operations/{operation['id']}").json()
    assert done["state"] == "succeeded" and done["percent"] == 100
    history = api.get(f"/servers/{server.pk}/operations").json()
    assert [item["kind"] for item in history["items"]][:2] == ["reboot", "build"]


def test_an_unknown_power_action_is_refused_by_the_schema(server, api_as, alice):
    response = api_as(alice).post(f"/servers/{server.pk}/power", {"action": "explode"})
    assert response.status_code == 422 and response.json()["field"] == "action"
    assert server.operations.count() == 1  # the build only


def test_rename_and_reinstall_apply_the_pages_rules(server, api_as, alice, world):
    api = api_as(alice)
    bad = api.post(f"/servers/{server.pk}/rename", {"hostname": "Not_Valid"})
    assert bad.status_code == 422 and bad.json()["field"] == "hostname"
    unconfirmed = api.post(
        f"/servers/{server.pk}/reinstall",
        {"image": "debian-12", "generate_password": True, "confirm_hostname": "oops"},
    )
    assert unconfirmed.status_code == 422 and "web1" in unconfirmed.json()["message"]
    renamed = api.post(f"/servers/{server.pk}/rename", {"hostname": "web-renamed"})
    assert renamed.status_code == 202
    drive(renamed.json()["id"])
    assert api.get(f"/servers/{server.pk}").json()["hostname"] == "web-renamed"
    assert world.vm(server.vmid).config["name"] == "web-renamed"


def test_graphs_data_comes_from_the_worker_not_the_request(server, api_as, alice):
    api = api_as(alice)
    first = api.get(f"/servers/{server.pk}/metrics", timeframe="hour")
    assert first.status_code == 202 and first.json()["state"] == "loading"
    assert first["Retry-After"] == "2"
    refresh_usage(server.pk, "hour")  # what the worker the request asked does
    ready = api.get(f"/servers/{server.pk}/metrics", timeframe="hour")
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    assert ready.json()["samples"] and "time" in ready.json()["samples"][0]
    assert api.get(f"/servers/{server.pk}/metrics", timeframe="year").status_code == 422


def test_an_upgrade_is_quoted_and_applied_as_on_the_page(
    client, world, demo_sandbox, german, paid_server, settle, api_as
):
    server = paid_server(german)
    api = api_as(german)
    options = api.get(f"/servers/{server.pk}/upgrades").json()
    [medium] = [option for option in options if option["plan"] == "nvme-vps-m"]
    assert medium["kind"] == "upgrade" and medium["due_now_cents"] > 0 and medium["quote"]
    applied = api.post(f"/servers/{server.pk}/upgrade", {"quote": medium["quote"]})
    assert applied.status_code == 202, applied.content
    assert applied.json()["to_plan"] == "nvme-vps-m"
    assert applied.json()["amount_due_cents"] == medium["due_now_cents"]
    settle()
    drive(server.operations.get(kind="resize").pk)
    grown = api.get(f"/servers/{server.pk}").json()
    assert (grown["plan"], grown["vcpus"]) == ("NVMe VPS M", 4)
    forged = api.post(f"/servers/{server.pk}/upgrade", {"quote": "forged"})
    assert forged.status_code == 422 and forged.json()["field"] == "quote"


def test_a_server_without_a_subscription_has_no_upgrades(server, api_as, alice):
    response = api_as(alice).get(f"/servers/{server.pk}/upgrades")
    assert response.status_code == 422 and "contact support" in response.json()["message"]
