"""Disputes (chargebacks): the customer is flagged for staff while one is open, and no new order
is taken from them meanwhile; the ledger books the money withdrawn (billing/ledger.py) and, when
the dispute is won, given back. charge.dispute.* webhooks lead here (billing/events.py)."""

from __future__ import annotations

import logging

from billing import ledger, payouts, stripe_client
from billing.models import BillingAccount, LedgerEntry

logger = logging.getLogger(__name__)
OPEN = {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}


def dispute_read(obj: dict) -> dict:
    dispute = stripe_client.dispute_retrieve(obj["id"])
    charge = stripe_client.charge_retrieve(dispute["charge"]) if dispute.get("charge") else {}
    return {"dispute": dispute, "customer": charge.get("customer") or ""}


def dispute_apply(read: dict, event) -> None:
    """Flag or unflag the customer, and book what moved."""
    dispute = read["dispute"]
    account = (
        BillingAccount.objects.select_for_update()
        .filter(stripe_customer_id=read["customer"])
        .first()
    )
    if account is not None:
        open_ids = [d for d in account.open_disputes if d != dispute["id"]]
        if dispute.get("status") in OPEN:
            open_ids.append(dispute["id"])
        if open_ids != account.open_disputes:
            BillingAccount.objects.filter(pk=account.pk).update(open_disputes=open_ids)
            logger.info("customer %s: open disputes %s", account.user_id, open_ids)
    payouts.dispute_recorded(dispute, event.event_id)
    if dispute.get("status") == "won":
        _reinstated(dispute, event.event_id)


def _reinstated(dispute: dict, event_id: str) -> None:
    """The amount a won dispute gave back, once, as the withdrawal's opposite."""
    withdrawn = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.DISPUTE, stripe_object_id=dispute["id"]
    ).first()
    back = [t for t in dispute.get("balance_transactions") or [] if (t.get("amount") or 0) > 0]
    if withdrawn is None or not back:
        return
    ledger.record_entry(
        kind=LedgerEntry.Kind.DISPUTE,
        stripe_object_id=back[0]["id"],
        occurred_at=ledger.when(back[0].get("created")),
        customer=withdrawn.customer,
        currency=withdrawn.currency,
        net_cents=-withdrawn.net_cents,
        vat_cents=-withdrawn.vat_cents,
        gross_cents=-withdrawn.gross_cents,
        country=withdrawn.country,
        vat_treatment=withdrawn.vat_treatment,
        vat_rate=withdrawn.vat_rate,
        plan=withdrawn.plan,
        category="dispute_reversal",
        description=f"Dispute {dispute['id']} won: the amount is back",
        document_number=withdrawn.document_number,
        customer_name=withdrawn.customer_name,
        stripe_invoice_id=withdrawn.stripe_invoice_id,
        stripe_customer_id=withdrawn.stripe_customer_id,
        stripe_event_id=event_id,
        stripe_subscription_id=withdrawn.stripe_subscription_id,
        stripe_payment_id=withdrawn.stripe_payment_id,
        stripe_source_id=withdrawn.stripe_source_id,
    )


def has_open_dispute(user) -> bool:
    account = BillingAccount.objects.filter(user=user).only("open_disputes").first()
    return bool(account and account.open_disputes)
