"""Invoices and their lines and taxes; one payment attempt on an invoice."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from .cards import (
    CARDS,
    DECLINE,
    FAILED,
    MAX_ATTEMPTS,
    NEEDS_ACTION,
    PAID,
    PROCESSING,
    RETRY_DELAY,
    card_error,
    check_card,
    outcome,
)
from .checkout_payments import IBANS, SEPA_SUCCEEDS
from .objects import Objects, round_half_up
from .store import Store, StripeError, diff
from .tax_ids import invoice_tax_ids

SEPA_SETTLE_SECONDS = 180  # test IBANs settle after about three minutes on Stripe
SEPA_FEE = 35


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
        """A new invoice, finalized at once (checkout, updates)."""
        return self.finalize(self.draft_invoice(customer, sub, specs, reason, period))

    def draft_invoice(
        self, customer: dict, sub: dict | None, specs: list[dict], reason: str, period: tuple
    ) -> dict:
        invoice = self.o.invoice(customer, sub, specs, reason, period)
        customer["balance"] = invoice["ending_balance"]
        self.s.emit("invoice.created", invoice)
        return invoice

    def finalize(self, invoice: dict) -> dict:
        customer = self.s.get(invoice["customer"])
        now = self.s.now()
        seq = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = seq + 1
        invoice.update(
            status="open",
            number=f"{customer['invoice_prefix']}-{seq:04d}",
            customer_tax_ids=invoice_tax_ids(customer),  # kept as they are now from here on
            effective_at=now,
            automatically_finalizes_at=None,
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
        self.on_invoice_paid(invoice)

    def on_invoice_paid(self, invoice: dict) -> None:
        """What a paid invoice changes elsewhere (the subscription's; see Subscriptions)."""

    def void(self, invoice: dict) -> None:
        invoice.update(status="void", next_payment_attempt=None, auto_advance=False)
        invoice["status_transitions"]["voided_at"] = self.s.now()
        pi = self.s.find(self.s.priv(invoice["id"]).get("payment_intent"))
        if pi is not None and pi["status"] != "succeeded":
            pi.update(
                status="canceled",
                canceled_at=self.s.now(),
                cancellation_reason="void_invoice",
                next_action=None,
            )
        for payment in invoice["payments"]["data"]:
            if payment["status"] == "open":
                payment["status"] = "canceled"
                payment["status_transitions"]["canceled_at"] = self.s.now()
        self.s.emit("invoice.voided", invoice)

    def mark_uncollectible(self, invoice: dict) -> dict:
        """An open invoice given up on: no more attempts; what it owes stays owed."""
        if invoice["status"] != "open":
            raise StripeError(
                f"You can only mark an open invoice as uncollectible; this one is "
                f"{invoice['status']}.",
                param="invoice",
            )
        invoice.update(status="uncollectible", next_payment_attempt=None, auto_advance=False)
        invoice["status_transitions"]["marked_uncollectible_at"] = self.s.now()
        self.s.emit("invoice.marked_uncollectible", invoice)
        return invoice

    def invoice_subscription(self, invoice: dict) -> dict | None:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        return self.s.find(details.get("subscription"))

    def payment_method_for(self, invoice: dict) -> dict | None:
        sub = self.invoice_subscription(invoice)
        customer = self.s.get(invoice["customer"])
        return self.s.find(
            (sub or {}).get("default_payment_method")
            or customer["invoice_settings"]["default_payment_method"]
        )

    def charge_outcome(
        self, pm: dict | None, *, off_session: bool = True, authenticated: bool = False
    ) -> str:
        """What charging `pm` now would do (PAID, FAILED, NEEDS_ACTION), changing nothing."""
        if pm is None:
            return FAILED
        private = self.s.priv(pm["id"])
        return outcome(
            CARDS.get(private.get("number", "")),
            off_session=off_session,
            set_up=bool(private.get("set_up")),
            authenticated=authenticated,
        )

    def start_debit(self, invoice: dict, pi: dict, pm: dict) -> str:
        """A SEPA Direct Debit: submitted now, known to succeed or fail only when it settles."""
        charge = self.o.charge(pi, pm, True, None)
        charge.update(
            status="pending",
            paid=False,
            payment_method_details={
                "type": "sepa_debit",
                "sepa_debit": dict(pm["sepa_debit"], mandate="mandate_sandbox"),
            },
            outcome=None,
        )
        pi.update(
            status="processing",
            latest_charge=charge["id"],
            payment_method_types=["sepa_debit"],
            next_action=None,
            last_payment_error=None,
        )
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        invoice["next_payment_attempt"] = None
        self.s.priv(invoice["id"])["settles_at"] = self.s.now() + SEPA_SETTLE_SECONDS
        return PROCESSING

    def settle_debit(self, invoice: dict) -> None:
        """The bank answered: the debit succeeded (invoice paid) or failed (retries follow)."""
        private = self.s.priv(invoice["id"])
        private.pop("settles_at", None)
        pi = self.s.get(private["payment_intent"])
        charge = self.s.get(pi["latest_charge"])
        pm = self.s.get(pi["payment_method"])
        sub = self.invoice_subscription(invoice)
        if IBANS.get(self.s.priv(pm["id"]).get("iban", "")) == SEPA_SUCCEEDS:
            txn = self.o.balance_transaction(
                "charge", charge["amount"], charge["currency"], charge["id"], SEPA_FEE, days=2
            )
            charge.update(status="succeeded", paid=True, balance_transaction=txn["id"])
            pi.update(status="succeeded", amount_received=pi["amount"])
            payment = invoice["payments"]["data"][-1]
            payment.update(status="paid", amount_paid=pi["amount"])
            payment["status_transitions"]["paid_at"] = self.s.now()
            self.mark_paid(invoice)
            self.settle_checkout(invoice, True)
            return
        failure = ("insufficient_funds", "The account has insufficient funds to cover this debit.")
        charge.update(
            status="failed",
            captured=False,
            amount_captured=0,
            failure_code=failure[0],
            failure_message=failure[1],
        )
        pi.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "invalid_request_error",
                "code": failure[0],
                "message": failure[1],
                "charge": charge["id"],
                "payment_method": pm,
            },
        )
        exhausted = invoice["attempt_count"] >= MAX_ATTEMPTS
        invoice["next_payment_attempt"] = None if exhausted else self.s.now() + RETRY_DELAY
        self.s.emit("invoice.payment_failed", invoice)
        self.settle_checkout(invoice, False)
        if sub is not None and sub["status"] == "active":
            before = copy.deepcopy(sub)
            sub["status"] = "past_due"
            self.s.emit("customer.subscription.updated", sub, diff(before, sub))
        elif sub is not None and exhausted and sub["status"] == "past_due":
            self.end_of_retries(sub)

    def settle_checkout(self, invoice: dict, paid: bool) -> None:
        """Overridden by CheckoutPayments: a session waiting for this payment hears of it."""

    def pay_on_page(
        self,
        invoice: dict,
        number: str = "",
        expiry: str = "",
        cvc: str = "",
        name: str | None = None,
    ) -> str:
        """The customer pays an open invoice on the hosted invoice page: with a new card, or
        (no number) the card on file, completing the 3-D Secure challenge it asks for."""
        if invoice["status"] != "open":
            raise StripeError(
                f"This invoice can no longer be paid (status {invoice['status']}).",
                code="invoice_not_open",
            )
        pm = None
        if number:
            number, exp = check_card(number, expiry, cvc)
            pm = self.o.payment_method(self.s.get(invoice["customer"]), number, name, exp)
        elif self.payment_method_for(invoice) is None:
            raise StripeError("Enter a card to pay this invoice.", param="card_number")
        result = self.collect(invoice, off_session=False, pm=pm, authenticated=True)
        if result == FAILED:
            raise card_error(DECLINE[0], DECLINE[1], "generic_decline")
        return result

    def invoice_payment_intent(self, invoice: dict, pm: dict | None) -> dict:
        """The invoice's payment intent (made with its first attempt), now for `pm`."""
        private = self.s.priv(invoice["id"])
        pi = self.s.find(private.get("payment_intent"))
        if pi is None:
            pi = self.o.payment_intent(invoice, pm and pm["id"])
            private["payment_intent"] = pi["id"]
            invoice["payments"]["data"].append(self.o.invoice_payment(invoice, pi))
        pi["payment_method"] = pm and pm["id"]
        return pi

    def collect(
        self,
        invoice: dict,
        off_session: bool = True,
        *,
        pm: dict | None = None,
        authenticated: bool = False,
    ) -> str:
        """One payment attempt on an open invoice: PAID, FAILED or NEEDS_ACTION (3-D Secure)."""
        if invoice["amount_due"] == 0:
            self.mark_paid(invoice)
            return PAID
        pm = pm or self.payment_method_for(invoice)
        pi = self.invoice_payment_intent(invoice, pm)
        if pm is not None and pm["type"] == "sepa_debit":
            return self.start_debit(invoice, pi, pm)
        result = self.charge_outcome(pm, off_session=off_session, authenticated=authenticated)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        now = self.s.now()
        if result == NEEDS_ACTION:
            # Authentication comes before any charge: nothing is authorised yet.
            pi.update(
                status="requires_action",
                next_action={
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "return_url": invoice["hosted_invoice_url"],
                        "url": invoice["hosted_invoice_url"],
                    },
                },
                last_payment_error={
                    "type": "card_error",
                    "code": "authentication_required",
                    "decline_code": "authentication_required",
                    "message": "Your card was declined. This transaction requires authentication.",
                    "payment_method": pm,
                }
                if off_session
                else None,
            )
            exhausted = not off_session or invoice["attempt_count"] >= MAX_ATTEMPTS
            invoice["next_payment_attempt"] = None if exhausted else now + RETRY_DELAY
            self.s.emit("invoice.payment_action_required", invoice)
            return NEEDS_ACTION
        ok = result == PAID
        charge = self.o.charge(pi, pm, ok, None if ok else DECLINE)
        pi["latest_charge"] = charge["id"]
        if ok:
            fee = round_half_up(Decimal(charge["amount"]) * Decimal("0.015")) + 25
            txn = self.o.balance_transaction(
                "charge", charge["amount"], charge["currency"], charge["id"], fee, days=2
            )
            charge["balance_transaction"] = txn["id"]
            pi.update(
                status="succeeded",
                amount_received=pi["amount"],
                last_payment_error=None,
                next_action=None,
            )
            payment = invoice["payments"]["data"][-1]
            payment.update(status="paid", amount_paid=pi["amount"])
            payment["status_transitions"]["paid_at"] = now
            self.mark_paid(invoice)
            return PAID
        pi.update(
            status="requires_payment_method",
            next_action=None,
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
        return FAILED
