"""Paying a Checkout Session (subscription mode): by card, with 3-D Secure where the card asks
for it, or by SEPA Direct Debit, which settles later.

- A card that pays: the subscription starts `active`, the first invoice is paid,
  `checkout.session.completed` with `payment_status=paid`.
- A card that needs authentication and is not authenticated (the customer left the
  challenge): the subscription starts `incomplete`, its invoice stays open with the payment
  intent in `requires_action` (`invoice.payment_action_required`), the session stays open.
  Completing the challenge later pays it (`incomplete` → `active`, then the session completes);
  a failed challenge leaves it to another card on the same session. Unpaid after 23 hours
  the subscription is `incomplete_expired` and its invoice voided (see `Subscriptions`).
- SEPA Direct Debit: the subscription is `active` while the debit is processing, the session
  completes with `payment_status=unpaid`; when the debit settles on the sandbox clock
  (`SEPA_SETTLE_SECONDS`) `checkout.session.async_payment_succeeded` (invoice paid) or
  `checkout.session.async_payment_failed` (invoice open, subscription `past_due`).
"""

from __future__ import annotations

import copy
import re

from .cards import PAID, card_error, check_card
from .objects import EMPTY_ADDRESS, Objects
from .store import Store, StripeError

SEPA_SUCCEEDS, SEPA_FAILS = "succeeds", "fails"
IBANS = {"DE89370400440532013000": SEPA_SUCCEEDS, "DE62370400440532013001": SEPA_FAILS}
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


def check_iban(iban: str) -> str:
    iban = re.sub(r"\s", "", iban or "").upper()
    if iban not in IBANS:
        raise StripeError(
            "Your IBAN is invalid (the sandbox knows Stripe's test IBANs "
            "DE89370400440532013000 and DE62370400440532013001).",
            code="invalid_bank_account_iban",
            param="iban",
        )
    return iban


class CheckoutPayments:
    s: Store
    o: Objects

    def pay_checkout(
        self,
        session: dict,
        number: str,
        expiry: str = "12 / 34",
        cvc: str = "123",
        name: str | None = None,
        *,
        authenticate: bool = True,
    ) -> dict:
        """The customer pays by card on the hosted page; `authenticate`: they complete the
        3-D Secure challenge if the card asks for one (False: they leave it)."""
        self.check_payable(session)
        number, exp = check_card(number, expiry, cvc)
        customer = self.checkout_customer(session, name)
        pm = self.o.payment_method(customer, number, name, exp)
        expected = self.charge_outcome(pm, off_session=False, authenticated=authenticate)
        sub, invoice = self.checkout_subscription(
            session, customer, pm, "active" if expected == PAID else "incomplete"
        )
        if self.collect(invoice, off_session=False, pm=pm, authenticated=authenticate) == PAID:
            self.s.priv(pm["id"])["set_up"] = True  # saved for off-session renewals
            self.complete_checkout(session, customer, sub, invoice, name, "paid")
        return session

    def authenticate_checkout(self, session: dict, *, complete: bool = True) -> dict:
        """The customer completes (or fails) the 3-D Secure challenge of the session's card."""
        self.check_payable(session)
        sub = self.s.find(self.s.priv(session["id"]).get("subscription"))
        invoice = self.s.find(sub["latest_invoice"]) if sub else None
        pi = self.s.find(self.s.priv(invoice["id"]).get("payment_intent")) if invoice else None
        if pi is None or pi["status"] != "requires_action":
            raise StripeError("This Checkout Session has no payment waiting for authentication.")
        pm = self.s.get(pi["payment_method"])
        if not complete:
            pi.update(
                status="requires_payment_method",
                next_action=None,
                last_payment_error={
                    "type": "card_error",
                    "code": "payment_intent_authentication_failure",
                    "message": AUTHENTICATION_FAILED,
                    "payment_method": pm,
                },
            )
            self.s.emit("invoice.payment_failed", invoice)
            raise card_error("payment_intent_authentication_failure", AUTHENTICATION_FAILED)
        if self.collect(invoice, off_session=False, pm=pm, authenticated=True) == PAID:
            self.s.priv(pm["id"])["set_up"] = True
            customer = self.s.get(sub["customer"])
            self.complete_checkout(session, customer, sub, invoice, None, "paid")
        return session

    def pay_checkout_sepa(self, session: dict, iban: str, name: str | None = None) -> dict:
        """The customer gives an IBAN and accepts the mandate; the debit settles later."""
        self.check_payable(session)
        iban = check_iban(iban)
        customer = self.checkout_customer(session, name)
        pm = self.o.sepa_payment_method(customer, iban, name)
        sub, invoice = self.checkout_subscription(session, customer, pm, "active")
        self.s.priv(invoice["id"])["checkout_session"] = session["id"]
        paid = self.collect(invoice, off_session=False, pm=pm) == PAID  # processing, usually
        self.complete_checkout(session, customer, sub, invoice, name, "paid" if paid else "unpaid")
        return session

    def settle_checkout(self, invoice: dict, paid: bool) -> None:
        """A session's delayed payment settled (called when its debit settles)."""
        session = self.s.find(self.s.priv(invoice["id"]).get("checkout_session"))
        if session is None or session["payment_status"] != "unpaid":
            return
        if paid:
            session["payment_status"] = "paid"
            self.s.emit("checkout.session.async_payment_succeeded", session)
        else:
            self.s.emit("checkout.session.async_payment_failed", session)

    # -- steps ------------------------------------------------------------------------------

    def check_payable(self, session: dict) -> None:
        self.expire_if_due(session)
        if session["status"] != "open":
            raise StripeError(
                f"This Checkout Session is no longer active (status {session['status']}).",
                code="checkout_session_inactive",
            )

    def checkout_customer(self, session: dict, name: str | None) -> dict:
        customer = self.s.find(session["customer"])
        if customer is None:
            sub = self.s.find(self.s.priv(session["id"]).get("subscription"))
            customer = self.s.find(sub["customer"]) if sub else None
        if customer is None:
            customer = self.o.customer({"email": session["customer_email"], "name": name})
        return customer

    def checkout_subscription(
        self, session: dict, customer: dict, pm: dict, status: str
    ) -> tuple[dict, dict]:
        """The session's subscription and first invoice: new, or (a second try on the same
        session after a card needed authentication) the incomplete ones, paid with `pm`.
        The card is attached to the customer and is the subscription's default payment method;
        as on Stripe, the customer's `invoice_settings.default_payment_method` stays as it was."""
        private = self.s.priv(session["id"])
        sub = self.s.find(private.get("subscription"))
        if sub is not None:
            sub["default_payment_method"] = pm["id"]
            return sub, self.s.get(sub["latest_invoice"])
        sub, invoice = self.start_subscription(customer, private, pm, status)
        private["subscription"] = sub["id"]
        return sub, invoice

    def complete_checkout(
        self,
        session: dict,
        customer: dict,
        sub: dict,
        invoice: dict,
        name: str | None,
        payment_status: str,
    ) -> None:
        session.update(
            status="complete",
            payment_status=payment_status,
            customer=customer["id"],
            subscription=sub["id"],
            invoice=invoice["id"],
            customer_details={
                "address": copy.deepcopy(customer["address"]) or dict(EMPTY_ADDRESS),
                "business_name": None,
                "email": customer["email"],
                "individual_name": None,
                "name": customer["name"] or name,
                "phone": customer["phone"],
                "tax_exempt": customer["tax_exempt"],
                "tax_ids": [],
            },
        )
        self.s.emit("checkout.session.completed", session)
