"""Corrections by staff in the admin: a credit note on a paid invoice, refunded to the card or
credited to the balance, with its share of VAT; the invoice itself never changes; a
cancellation from the subscription list. Through Stripe (the sandbox), booked by the ledger."""

from __future__ import annotations

import pytest

from billing.models import BillingEvent, Invoice, LedgerEntry
from tests.billing.conftest import stripe_api

Kind = LedgerEntry.Kind


@pytest.fixture
def paid_invoice(client, world, demo_sandbox, german, paid_server):  # noqa: F811
    server = paid_server(german)
    return server, Invoice.objects.get(status="paid")


def credit(client, invoice, **form):
    return client.post(f"/admin/billing/invoice/{invoice.pk}/credit/", form, follow=True)


def test_a_partial_refund_with_its_share_of_vat(client, staff, paid_invoice, demo_sandbox, settle):  # noqa: F811
    _server, invoice = paid_invoice
    client.force_login(staff)
    page = client.get(f"/admin/billing/invoice/{invoice.pk}/credit/").content.decode()
    assert "Issue the credit note" in page
    response = credit(
        client, invoice, amount="1.19", method="refund", reason="product_unsatisfactory"
    )
    shown = [str(m) for m in response.context["messages"]]
    assert shown[0].startswith("Credit note of €1.19 on"), shown
    [note] = stripe_api(demo_sandbox).v1.credit_notes.list({"limit": 10}).data
    assert note.total == 119 and note.refunds[0].amount_refunded == 119
    assert sum(tax.amount for tax in note.total_taxes) == 19  # 19 % of €1.00
    settle()
    booked = LedgerEntry.objects.get(kind=Kind.CREDIT_NOTE)
    assert (booked.gross_cents, booked.vat_cents, booked.net_cents) == (-119, -19, -100)
    assert LedgerEntry.objects.get(kind=Kind.REFUND).gross_cents == -119
    invoice.refresh_from_db()
    assert invoice.total_cents == 594 and invoice.status == "paid"  # never edited
    assert BillingEvent.objects.filter(
        field="credit_note", actor="staff", actor_user=staff
    ).exists()


def test_an_amount_the_cents_cannot_reach_credits_the_nearest_below(
    client, staff, paid_invoice, demo_sandbox
):
    _server, invoice = paid_invoice
    client.force_login(staff)
    response = credit(client, invoice, amount="2.97", method="refund", reason="duplicate")
    assert str(list(response.context["messages"])[0]).startswith("Credit note of €2.96 on")
    [note] = stripe_api(demo_sandbox).v1.credit_notes.list({"limit": 10}).data
    assert note.total == 296  # €2.49 + 19 % VAT rounded; €2.50 would make €2.98


def test_a_credit_to_the_balance_refunds_nothing(client, staff, paid_invoice, demo_sandbox):  # noqa: F811
    _server, invoice = paid_invoice
    client.force_login(staff)
    credit(client, invoice, amount="5.94", method="balance", reason="order_change")
    [note] = stripe_api(demo_sandbox).v1.credit_notes.list({"limit": 10}).data
    assert note.total == 594 and note.customer_balance_transaction and not note.refunds
    assert not stripe_api(demo_sandbox).v1.refunds.list({"limit": 10}).data


def test_more_than_was_paid_is_refused(client, staff, paid_invoice, demo_sandbox):  # noqa: F811
    _server, invoice = paid_invoice
    client.force_login(staff)
    response = credit(client, invoice, amount="9.99", method="refund", reason="duplicate")
    assert "Credit between 0.01 and 5.94 EUR" in response.content.decode()
    assert not stripe_api(demo_sandbox).v1.credit_notes.list({"limit": 10}).data


def test_staff_cancel_from_the_subscription_list(client, staff, paid_invoice, settle):  # noqa: F811
    server, _invoice = paid_invoice
    from billing.models import Subscription

    subscription = Subscription.objects.get()
    client.force_login(staff)
    client.post(
        "/admin/billing/subscription/",
        {"action": "cancel_now_with_refund", "_selected_action": [subscription.pk]},
    )
    settle()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert server.operations.filter(kind="terminate").exists()
    assert LedgerEntry.objects.filter(kind=Kind.REFUND).exists()


def test_customers_cannot_reach_corrections(client, paid_invoice, german):
    _server, invoice = paid_invoice
    client.force_login(german)
    response = client.get(f"/admin/billing/invoice/{invoice.pk}/credit/")
    assert response.status_code in (302, 403)
