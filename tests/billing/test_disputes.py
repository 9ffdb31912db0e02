"""A customer disputes a payment with their bank: staff see the customer flagged, no new order
is taken from them while it is open, and the ledger books the money withdrawn and, when the
dispute is won, given back. Through the Stripe sandbox's disputes and their webhooks."""

from __future__ import annotations

import pytest

from billing.models import BillingAccount, LedgerEntry
from billing.orders import OrderError, order_place
from tests.billing.conftest import stripe_api


@pytest.fixture
def disputed(paid_server, german, demo_sandbox, settle):
    server = paid_server(german)
    settle()
    invoice = stripe_api(demo_sandbox).v1.invoices.list({"limit": 1}).data[0]
    intent = (
        stripe_api(demo_sandbox)
        .v1.invoices.retrieve(invoice.id, {"expand": ["payments"]})
        .payments.data[0]
        .payment.payment_intent
    )
    charge = stripe_api(demo_sandbox).v1.payment_intents.retrieve(intent).latest_charge
    dispute = demo_sandbox.dispute(charge)
    settle()
    return server, dispute


def order_again(owner, server):
    from billing.models import Plan

    return order_place(
        owner=owner,
        plan_id=Plan.objects.get(slug="nvme-vps-s").pk,
        location_id=server.location_id,
        os_image_id=server.os_image_id,
        hostname="web-2",
        ssh_key_ids=[],
        generate_password=True,
    )


def test_an_open_dispute_flags_the_customer_and_refuses_new_orders(disputed, german):
    server, dispute = disputed
    assert BillingAccount.objects.get(user=german).open_disputes == [dispute["id"]]
    withdrawn = LedgerEntry.objects.get(kind=LedgerEntry.Kind.DISPUTE)
    assert withdrawn.gross_cents == -594 and withdrawn.customer == german
    with pytest.raises(OrderError, match="disputed with your bank"):
        order_again(german, server)


def test_a_won_dispute_gives_the_money_back_and_lifts_the_flag(
    disputed, german, demo_sandbox, settle
):
    server, dispute = disputed
    demo_sandbox.close_dispute(dispute["id"], "won")
    settle()
    assert BillingAccount.objects.get(user=german).open_disputes == []
    rows = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DISPUTE).order_by("gross_cents")
    assert [row.gross_cents for row in rows] == [-594, 594]
    settle()  # the same webhooks again change nothing
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DISPUTE).count() == 2
    assert order_again(german, server).pk


def test_a_lost_dispute_ends_the_flag_and_keeps_the_money_withdrawn(
    disputed, german, demo_sandbox, settle
):
    _server, dispute = disputed
    demo_sandbox.close_dispute(dispute["id"], "lost")
    settle()
    assert BillingAccount.objects.get(user=german).open_disputes == []
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DISPUTE).count() == 1
