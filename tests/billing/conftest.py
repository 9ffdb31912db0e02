"""Billing fixtures: a shop (location, image, plans pushed to the Stripe sandbox), customers in
each VAT situation, and helpers that deliver the sandbox's events as signed webhooks."""

from __future__ import annotations

import json
import urllib.request

import pytest
import stripe

from billing import stripe_client
from billing.catalog import plan_sync
from billing.models import Plan, StripeEvent
from billing.orders import checkout_url, order_place
from instances.models import OSTemplate
from tests.factories import ProfileFactory, make_location_with_capacity, make_os_image
from tests.stripe_webhooks import deliver, signature  # noqa: F401 - billing tests import them from here

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@pytest.fixture
def shop(db, stripe_settings):
    """One location with room, Debian 12 offered there, and three plans in Stripe."""
    location = make_location_with_capacity()
    image = make_os_image()
    OSTemplate.objects.create(image=image, cluster=location.clusters.get(), vmid=9000)
    plans = {
        "nvme": Plan.objects.create(
            family="nvme_vps",
            name="NVMe VPS S",
            slug="nvme-vps-s",
            vcpus=2,
            memory_mib=4096,
            disk_gib=75,
            storage_class="nvme",
            price_cents=499,
        ),
        "storage": Plan.objects.create(
            family="storage_vps",
            name="Storage VPS S",
            slug="storage-vps-s",
            vcpus=2,
            memory_mib=4096,
            disk_gib=400,
            storage_class="bulk",
            price_cents=499,
        ),
        "vds": Plan.objects.create(
            family="vds",
            name="VDS S",
            slug="vds-s",
            vcpus=2,
            dedicated_cores=True,
            memory_mib=16384,
            disk_gib=240,
            storage_class="nvme",
            price_cents=2999,
            setup_fee_cents=1000,
        ),
    }
    for plan in plans.values():
        plan_sync(plan)
        plan.refresh_from_db()
    return {"location": location, "image": image, **plans}


def customer(email: str, country: str, vat_id: str = "", **profile):
    return ProfileFactory(
        user__email=email, country=country, vat_id=vat_id, full_name=email, **profile
    ).user


@pytest.fixture
def german(db):
    return customer("hans@example.de", "DE")


@pytest.fixture
def french(db):
    return customer("marie@example.fr", "FR")


@pytest.fixture
def french_business(db):
    """Registered in the VIES stand-in, and VIES confirmed it: reverse charge."""
    return customer(
        "compta@example.fr",
        "FR",
        "FR44732829320",
        company="Exemple SARL",
        vat_id_status="confirmed",
        vat_id_consultation="WAPIexample00001",
    )


@pytest.fixture
def american(db):
    return customer("joe@example.com", "US")


def place(owner, shop, plan="nvme", *, keys=(), password=True, hostname="web-1"):
    return order_place(
        owner=owner,
        plan_id=shop[plan].pk,
        location_id=shop["location"].pk,
        os_image_id=shop["image"].pk,
        hostname=hostname,
        ssh_key_ids=list(keys),
        generate_password=password,
    )


def pay(sandbox, order, card: str = GOOD_CARD) -> dict:
    """Open the order's checkout (as the Pay button does) and pay it on the sandbox."""
    url = checkout_url(order)
    order.refresh_from_db()
    assert url.endswith(order.stripe_checkout_session_id)
    return sandbox.pay(order.stripe_checkout_session_id, card)


def stripe_api(sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox.api_key,
        stripe_version=stripe_client.API_VERSION,
        base_addresses={"api": sandbox.url},
    )


def sandbox_events(sandbox, *types: str) -> list[dict]:
    """The sandbox's events as JSON (what a webhook carries), oldest first; optionally only
    these types."""
    request = urllib.request.Request(
        f"{sandbox.url}/v1/events?limit=100",
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        found = json.load(response)["data"]
    found.reverse()
    return [event for event in found if not types or event["type"] in types]


def process_all() -> None:
    """What the worker does with the stored events (in the order they arrived)."""
    from billing.events import event_process

    for pk in (
        StripeEvent.objects.filter(processed_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    ):
        event_process(pk)


# --- The demo cluster and catalog, paid on the sandbox: for upgrades and the lifecycle ---------

LATER_DECLINED = "4000000000000341"  # pays at checkout; every later charge is declined


@pytest.fixture
def demo_sandbox(world, demo_location, stripe_settings):
    """seed_demo's catalog pushed to the Stripe sandbox, next to the demo cluster in fakepve."""
    for plan in Plan.objects.all():
        plan_sync(plan)
    return stripe_settings


def deliver_all(client, sandbox) -> None:
    """Every event the sandbox made so far and the portal has not stored, signed, then
    processed as the worker does."""
    seen = set(StripeEvent.objects.values_list("event_id", flat=True))
    for event in sandbox_events(sandbox):
        if event["id"] not in seen:
            deliver(client, event)
    process_all()


@pytest.fixture
def settle(client, demo_sandbox, django_capture_on_commit_callbacks):
    """Deliver and process the sandbox's new events, running what waits for the commit (mail)."""

    def run() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            deliver_all(client, demo_sandbox)

    return run


@pytest.fixture
def paid_server(client, demo_sandbox):
    """An order paid on the sandbox (card: GOOD_CARD or another), its server built on the demo
    cluster; the owner signed in. Returns the Instance."""
    from instances.models import Instance, InstanceOperation, Location
    from tests.instances.world import drive, image

    def make(owner, card: str = GOOD_CARD, plan: str = "nvme-vps-s") -> Instance:
        order = order_place(
            owner=owner,
            plan_id=Plan.objects.get(slug=plan).pk,
            location_id=Location.objects.get().pk,
            os_image_id=image().pk,
            hostname="web-1",
            ssh_key_ids=[],
            generate_password=True,
        )
        pay(demo_sandbox, order, card)
        deliver_all(client, demo_sandbox)
        order.refresh_from_db()
        built = drive(order.instance.operations.get().pk)
        assert built.state == InstanceOperation.State.SUCCEEDED
        client.force_login(owner)
        return Instance.objects.get(pk=order.instance_id)

    return make
