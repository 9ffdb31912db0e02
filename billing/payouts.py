"""Payouts and disputes in the ledger: money moving between Stripe's balance and the bank.

Payout and balance-transaction rows carry no VAT (net = gross) and Stripe's fee in fee_cents;
each balance transaction names the payment it came from, so the payout reconciliation export
finds our invoice number. A dispute books the money it withdrew (and, won, gave back:
billing/disputes.py), with the VAT share of the payment it disputes.
"""

from __future__ import annotations

from billing import stripe_client
from billing.ledger import Kind, LedgerNotReady, record_entry, vat_share, when
from billing.models import LedgerEntry


def payout_read(obj: dict) -> dict:
    """The payout (of a payout.* event) and every balance transaction it pays out, from Stripe."""
    return {
        "payout": stripe_client.payout_retrieve(obj["id"]),
        "transactions": stripe_client.balance_transactions_of_payout(obj["id"]),
    }


def payout_apply(read: dict, event) -> None:
    payout_recorded(read["payout"], read["transactions"], event.event_id)


def _payment_row(payment_id: str, charge_id: str) -> LedgerEntry | None:
    rows = LedgerEntry.objects.filter(kind=Kind.PAYMENT)
    if payment_id:
        found = rows.filter(stripe_object_id=payment_id).first()
        if found:
            return found
    return rows.filter(stripe_source_id=charge_id).first() if charge_id else None


def _source_of(txn: dict) -> tuple[str, str, str]:
    """(source id, charge id, payment intent id) of a balance transaction (source expanded)."""
    source = txn.get("source")
    if not isinstance(source, dict):
        return source or "", "", ""
    charge = source.get("charge") if source.get("object") != "charge" else source.get("id")
    if isinstance(charge, dict):
        charge = charge.get("id")
    intent = source.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return source.get("id") or "", charge or "", intent or ""


def payout_recorded(payout: dict, transactions: list[dict], event_id: str) -> None:
    """A paid (or failed) payout, with its balance transactions, once each."""
    if payout.get("status") not in ("paid", "failed"):
        return
    currency = (payout.get("currency") or "eur").upper()
    amount = payout.get("amount") or 0
    common = {"currency": currency, "vat_cents": 0, "stripe_payout_id": payout["id"]}
    common["stripe_event_id"] = event_id
    record_entry(
        kind=Kind.PAYOUT,
        stripe_object_id=payout["id"],
        occurred_at=when(payout.get("arrival_date") or payout.get("created")),
        net_cents=amount,
        gross_cents=amount,
        category=payout.get("type") or "bank_account",
        description=f"Payout {payout['id']} to the bank",
        **common,
    )
    for txn in transactions:
        if txn.get("type") == "payout" and _source_of(txn)[0] == payout["id"]:
            continue  # the payout itself: the row above
        source, charge, intent = _source_of(txn)
        payment = _payment_row(intent, charge)
        linked = {}
        if payment is not None:
            linked = {
                "customer": payment.customer,
                "customer_name": payment.customer_name,
                "document_number": payment.document_number,
                "stripe_invoice_id": payment.stripe_invoice_id,
                "stripe_customer_id": payment.stripe_customer_id,
                "plan": payment.plan,
            }
        gross = txn.get("amount") or 0
        record_entry(
            kind=Kind.BALANCE_TRANSACTION,
            stripe_object_id=txn["id"],
            occurred_at=when(txn.get("created")),
            net_cents=gross,
            gross_cents=gross,
            fee_cents=txn.get("fee") or 0,
            category=txn.get("reporting_category") or txn.get("type") or "",
            description=(txn.get("description") or txn.get("type") or "")[:200],
            stripe_source_id=source,
            stripe_payment_id=intent or (payment.stripe_object_id if payment else ""),
            **(common | linked),
        )
    if payout.get("status") == "failed":
        record_entry(
            kind=Kind.PAYOUT_FAILED,
            stripe_object_id=payout["id"],
            occurred_at=when(payout.get("created")),
            net_cents=-amount,
            gross_cents=-amount,
            category=payout.get("failure_code") or "",
            failure_reason=(payout.get("failure_message") or "")[:200],
            description=f"Payout {payout['id']} failed; the amount is back in the balance",
            **common,
        )


def dispute_recorded(dispute: dict, event_id: str) -> None:
    """The money a dispute withdrew (amount and Stripe's dispute fee), once per dispute."""
    withdrawn = [t for t in dispute.get("balance_transactions") or [] if (t.get("amount") or 0) < 0]
    if not withdrawn:
        return
    charge = dispute.get("charge") or ""
    intent = dispute.get("payment_intent") or ""
    payment = _payment_row(intent, charge)
    if payment is None:
        raise LedgerNotReady(
            f"dispute {dispute['id']}: payment {intent or charge} not in the ledger"
        )
    amount = -sum(t["amount"] for t in withdrawn)
    vat = vat_share(payment.vat_cents, amount, payment.gross_cents)
    record_entry(
        kind=Kind.DISPUTE,
        stripe_object_id=dispute["id"],
        occurred_at=when(withdrawn[0].get("created") or dispute.get("created")),
        customer=payment.customer,
        currency=(dispute.get("currency") or "eur").upper(),
        net_cents=-(amount - vat),
        vat_cents=-vat,
        gross_cents=-amount,
        fee_cents=sum(t.get("fee") or 0 for t in withdrawn),
        country=payment.country,
        vat_treatment=payment.vat_treatment,
        vat_rate=payment.vat_rate,
        plan=payment.plan,
        category=dispute.get("reason") or "",
        description=f"Dispute of {charge} ({dispute.get('reason') or 'no reason given'})",
        document_number=payment.document_number,
        customer_name=payment.customer_name,
        stripe_invoice_id=payment.stripe_invoice_id,
        stripe_customer_id=payment.stripe_customer_id,
        stripe_event_id=event_id,
        stripe_subscription_id=payment.stripe_subscription_id,
        stripe_payment_id=payment.stripe_object_id,
        stripe_source_id=charge,
    )
