"""Invoices and their lines and taxes; one payment attempt on an invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .cards import (
    CARDS,
    DECLINE,
    LATER_DECLINED,
    MAX_ATTEMPTS,
    RETRY_DELAY,
    SUCCEEDS,
)
from .objects import Objects, round_half_up
from .store import Store


class Invoicing:
    """Line specs, taxes, new invoices (created, finalized), marking paid, collecting."""

    s: Store
    o: Objects

    @property
    def public_url(self) -> str:
        return self.o.public_url

    # -- taxes and line specs ------------------------------------------------------------

    def taxes(self, amount: int, rates: list[dict]) -> list[dict]:
        out = []
        for rate in rates:
            pct = Decimal(str(rate["percentage"]))
            if rate["inclusive"]:
                tax = amount - round_half_up(Decimal(amount) * 100 / (100 + pct))
                behaviour, taxable = "inclusive", amount - tax
            else:
                tax = round_half_up(Decimal(amount) * pct / 100)
                behaviour, taxable = "exclusive", amount
            out.append(
                {
                    "amount": tax,
                    "tax_behavior": behaviour,
                    "tax_rate_details": {"tax_rate": rate["id"]},
                    "taxability_reason": "standard_rated",
                    "taxable_amount": taxable,
                    "type": "tax_rate_details",
                }
            )
        return out

    def product_name(self, price: dict) -> str:
        product = self.s.find(price["product"])
        return product["name"] if product else price["product"]

    def spec(
        self,
        price: dict,
        quantity: int,
        rates: list[dict],
        period: tuple[int, int],
        *,
        item: str | None = None,
        amount: int | None = None,
        description: str | None = None,
        proration: bool = False,
    ) -> dict:
        if amount is None:
            amount = price["unit_amount"] * quantity
        if description is None:
            description = f"{quantity} × {self.product_name(price)}"
            if price["recurring"]:
                start, end = (
                    dt.datetime.fromtimestamp(t, dt.UTC).strftime("%d %b %Y") for t in period
                )
                description += f" ({start} – {end})"
        return {
            "price": price,
            "quantity": quantity,
            "amount": amount,
            "description": description,
            "period": {"start": period[0], "end": period[1]},
            "subscription_item": item,
            "proration": proration,
            "taxes": self.taxes(amount, rates),
        }

    def tax_rates(self, ids: Any, param: str) -> list[dict]:
        return [self.s.get(i, "tax_rate", param) for i in (ids or [])]

    # -- invoices and payments -----------------------------------------------------------

    def new_invoice(
        self, customer: dict, sub: dict | None, specs: list[dict], reason: str, period: tuple
    ) -> dict:
        invoice = self.o.invoice(customer, sub, specs, reason, period)
        customer["balance"] = invoice["ending_balance"]
        self.s.emit("invoice.created", invoice)
        now = self.s.now()
        seq = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = seq + 1
        invoice.update(
            status="open",
            number=f"{customer['invoice_prefix']}-{seq:04d}",
            effective_at=now,
            hosted_invoice_url=f"{self.public_url}/i/{invoice['id']}",
            invoice_pdf=f"{self.public_url}/i/{invoice['id']}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = now
        self.s.emit("invoice.finalized", invoice)
        return invoice

    def mark_paid(self, invoice: dict) -> None:
        invoice.update(
            status="paid",
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
            auto_advance=False,
        )
        invoice["status_transitions"]["paid_at"] = self.s.now()
        self.s.emit("invoice.paid", invoice)
        self.s.emit("invoice.payment_succeeded", invoice)

    def collect(self, invoice: dict, off_session: bool = True) -> bool:
        """One payment attempt on an open invoice; True if it is paid afterwards."""
        if invoice["amount_due"] == 0:
            self.mark_paid(invoice)
            return True
        sub = self.s.find(
            (invoice["parent"] or {}).get("subscription_details", {}).get("subscription")
        )
        customer = self.s.get(invoice["customer"])
        pm = self.s.find(
            (sub or {}).get("default_payment_method")
            or customer["invoice_settings"]["default_payment_method"]
        )
        private = self.s.priv(invoice["id"])
        pi = self.s.find(private.get("payment_intent"))
        if pi is None:
            pi = self.o.payment_intent(invoice, pm and pm["id"])
            private["payment_intent"] = pi["id"]
            invoice["payments"]["data"].append(self.o.invoice_payment(invoice, pi))
        pi["payment_method"] = pm and pm["id"]
        behaviour = CARDS.get(self.s.priv(pm["id"]).get("number", "")) if pm else None
        ok = behaviour == SUCCEEDS or (behaviour == LATER_DECLINED and not off_session)
        charge = self.o.charge(pi, pm, ok, None if ok else DECLINE)
        pi["latest_charge"] = charge["id"]
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        now = self.s.now()
        if ok:
            fee = round_half_up(Decimal(charge["amount"]) * Decimal("0.015")) + 25
            txn = self.o.balance_transaction(
                "charge", charge["amount"], charge["currency"], charge["id"], fee, days=2
            )
            charge["balance_transaction"] = txn["id"]
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
            payment = invoice["payments"]["data"][-1]
            payment.update(status="paid", amount_paid=pi["amount"])
            payment["status_transitions"]["paid_at"] = now
            self.mark_paid(invoice)
            return True
        pi.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "card_error",
                "code": DECLINE[0],
                "decline_code": "generic_decline",
                "message": DECLINE[1],
                "charge": charge["id"],
                "payment_method": pm,
            },
        )
        exhausted = invoice["attempt_count"] >= MAX_ATTEMPTS
        invoice["next_payment_attempt"] = None if exhausted else now + RETRY_DELAY
        self.s.emit("invoice.payment_failed", invoice)
        return False
