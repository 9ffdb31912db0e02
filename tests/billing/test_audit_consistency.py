"""`manage.py audit_consistency` finds every way money, servers and Proxmox can disagree, and
is quiet when they agree. Against a real paid order, its server on the demo cluster, and the
Stripe sandbox; each violation is made at an edge (the fake, a row) the way it happens."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing import dunning
from billing.models import BillingEvent, LedgerEntry, StripeEvent, Subscription
from instances.models import Instance
from instances.state import instance_transition


def audit() -> str:
    out = io.StringIO()
    try:
        call_command("audit_consistency", stdout=out)
    except CommandError as error:
        return out.getvalue() + f"\nFAILED: {error}"
    return out.getvalue()


@pytest.fixture
def server(paid_server, german, settle):
    built = paid_server(german)
    settle()
    return built


def test_a_paid_order_and_its_server_agree(server):
    report = audit()
    assert "FAILED" not in report and "Money, servers and Proxmox agree." in report


def test_an_ended_subscription_whose_server_stays_is_reported_whatever_stripes_clock_says(
    server, demo_sandbox, settle, staff, settings
):
    """Stripe's clock is ahead of ours (as the sandbox's after renewals): the subscription ends
    at a canceled_at still in our future, and its server is never removed. Counted from when
    the portal learned of the end, it is reported."""
    demo_sandbox.advance(10 * 86400)
    settle()
    subscription = Subscription.objects.get()
    dunning.cancel_now(subscription=subscription, user=staff, actor=BillingEvent.Actor.STAFF)
    settle()  # the removal is asked for; no worker ever does it
    subscription.refresh_from_db()
    assert subscription.status == "canceled" and subscription.canceled_at > timezone.now()
    settings.AUDIT_SETTLE_MINUTES = 0
    assert "ended but server web-1 is running, not removed" in audit()


def test_a_vm_with_our_tag_and_no_server_is_an_orphan(server, world):
    world.add_vm(4242, "left-behind", node="pve-a", config={"tags": "portal;nvme-vps"})
    assert "VM 4242 (left-behind) carries the portal's tag but no server owns it" in audit()


def test_a_server_whose_vm_is_gone_is_reported(server, world):
    world.vms.remove(world.vm(server.vmid))
    assert f"VM {server.vmid} is not on" in audit()


def test_a_paid_server_that_is_suspended_is_reported(server):
    instance_transition(instance_id=server.pk, to=Instance.Status.SUSPENDED, reason="by hand")
    assert "is paid but server web-1 is suspended" in audit()


def test_an_address_cannot_be_held_twice_the_database_refuses_it(server, alice):
    """The audit's address check stands behind a unique constraint that already refuses it."""
    from django.db import IntegrityError, transaction

    from tests.factories import make_instance

    with pytest.raises(IntegrityError), transaction.atomic():
        make_instance(alice, server.location, hostname="twin", status="running", ipv4=server.ipv4)
    assert "addresses: ok" in audit()


def test_ledger_totals_must_match_stripes_invoices(server):
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.INVOICE_ISSUED, occurred_at=timezone.now(), currency="EUR",
        net_cents=100, vat_cents=19, gross_cents=119, stripe_object_id="in_not_at_stripe",
    )  # fmt: skip
    assert "ledger invoices minus credit notes 7.13 EUR, Stripe 5.94 EUR" in audit()


def test_an_event_never_processed_is_reported(server):
    StripeEvent.objects.create(event_id="evt_lost", type="invoice.paid", payload={})
    StripeEvent.objects.filter(event_id="evt_lost").update(
        received_at=timezone.now() - timedelta(hours=2)
    )
    assert "Stripe event evt_lost (invoice.paid) was never processed" in audit()
