"""What happens to money: checkout completion, invoices and their taxes, payments, proration,
subscription updates, renewals and dunning, refunds, credit notes, payouts, the clock.

Card behaviour is decided by the card number the customer typed (see `CARDS`).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from decimal import Decimal
from typing import Any

from .objects import EMPTY_ADDRESS, Objects, add_months, as_bool, as_int, lst, round_half_up
from .store import Store, StripeError, missing

SUCCEEDS, DECLINED, LATER_DECLINED = "succeeds", "declined", "later_declined"
CARDS = {
    "4242424242424242": SUCCEEDS,
    "4000000000000002": DECLINED,
    "4000000000000341": LATER_DECLINED,
}
MAX_ATTEMPTS = 4
RETRY_DELAY = 3 * 86400
DECLINE = ("card_declined", "Your card was declined.")


def card_error(code: str, message: str, decline_code: str | None = None) -> StripeError:
    return StripeError(message, status=402, type="card_error", code=code, decline_code=decline_code)


def check_card(number: str, expiry: str = "12 / 34", cvc: str = "123") -> tuple[str, tuple]:
    """The normalised number and (month, year), or a card_error as Checkout would show it."""
    number = re.sub(r"[\s-]", "", number or "")
    behaviour = CARDS.get(number)
    if behaviour is None:
        raise card_error("incorrect_number", "Your card number is incorrect.")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry or "")
    if not match or not 1 <= int(match[1]) <= 12:
        raise card_error("invalid_expiry_month", "Your card's expiration date is incomplete.")
    year = int(match[2]) + (2000 if len(match[2]) == 2 else 0)
    if not re.fullmatch(r"\d{3,4}", (cvc or "").strip()):
        raise card_error("incorrect_cvc", "Your card's security code is incomplete.")
    if behaviour == DECLINED:
        raise card_error(DECLINE[0], DECLINE[1], "generic_decline")
    return number, (int(match[1]), year)


def diff(before: dict, after: dict) -> dict:
    """previous_attributes: the top-level values that changed."""
    return {k: v for k, v in before.items() if after.get(k) != v}


class Billing:
    def __init__(self, store: Store, public_url: str):
        self.s = store
        self.o = Objects(store, public_url)

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

    # -- checkout ------------------------------------------------------------------------

    def create_checkout_session(self, p: dict) -> dict:
        if p.get("mode") != "subscription":
            raise StripeError(
                "The sandbox supports mode=subscription only.",
                param="mode",
                code="parameter_invalid_string" if p.get("mode") else "parameter_missing",
            )
        if not p.get("success_url"):
            raise missing("success_url")
        if not p.get("line_items"):
            raise missing("line_items")
        customer = self.s.get(p["customer"], "customer", "customer") if p.get("customer") else None
        now = self.s.now()
        items = []
        for n, li in enumerate(p["line_items"]):
            param = f"line_items[{n}]"
            if li.get("price"):
                price = self.s.get(li["price"], "price", f"{param}[price]")
            elif isinstance(li.get("price_data"), dict):
                price = self.inline_price(li["price_data"], f"{param}[price_data]")
            else:
                raise missing(f"{param}[price]")
            quantity = as_int(li.get("quantity", 1), f"{param}[quantity]")
            rates = self.tax_rates(li.get("tax_rates"), f"{param}[tax_rates]")
            items.append({"price": price["id"], "quantity": quantity, "tax_rates": rates})
        prices = [self.s.get(i["price"]) for i in items]
        if not any(price["recurring"] for price in prices):
            raise StripeError(
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        if len({price["currency"] for price in prices}) > 1:
            raise StripeError("All prices must use the same currency.", param="line_items")
        specs = [
            self.spec(price, i["quantity"], i["tax_rates"], (now, now))
            for price, i in zip(prices, items, strict=True)
        ]
        subtotal = sum(s["amount"] for s in specs)
        tax = sum(t["amount"] for s in specs for t in s["taxes"])
        excl = sum(
            t["amount"] for s in specs for t in s["taxes"] if t["tax_behavior"] == "exclusive"
        )
        cs_id = self.s.new_id("cs_test_", 58)
        session = {
            "id": cs_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": subtotal,
            "amount_total": subtotal + excl,
            "automatic_tax": {
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "billing_address_collection": p.get("billing_address_collection"),
            "cancel_url": p.get("cancel_url"),
            "client_reference_id": p.get("client_reference_id"),
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": prices[0]["currency"],
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer["id"] if customer else None,
            "customer_account": None,
            "customer_creation": None if customer else "always",
            "customer_details": None,
            "customer_email": p.get("customer_email"),
            "discounts": [],
            "expires_at": as_int(p.get("expires_at", now + 86400), "expires_at"),
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": p.get("locale"),
            "metadata": dict(p.get("metadata") or {}),
            "managed_payments": None,
            "mode": "subscription",
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always",
            "payment_method_configuration_details": None,
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": p["success_url"],
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax},
            "ui_mode": "hosted",
            "url": f"{self.public_url}/c/pay/{cs_id}",
            "wallet_options": None,
        }
        private = self.s.priv(cs_id)
        private["items"] = items
        private["subscription_metadata"] = dict(
            (p.get("subscription_data") or {}).get("metadata") or {}
        )
        return self.s.add(session)

    def inline_price(self, data: dict, param: str) -> dict:
        if data.get("product"):
            product = self.s.get(data["product"], "product", f"{param}[product]")
        elif isinstance(data.get("product_data"), dict):
            product = self.o.product(data["product_data"])
        else:
            raise missing(f"{param}[product]")
        if not data.get("currency"):
            raise missing(f"{param}[currency]")
        if data.get("unit_amount") is None:
            raise missing(f"{param}[unit_amount]")
        amount = as_int(data["unit_amount"], f"{param}[unit_amount]")
        return self.o.price(dict(data, active=False), product["id"], amount)

    def expire_if_due(self, session: dict) -> None:
        if session["status"] == "open" and session["expires_at"] <= self.s.now():
            self.expire(session)

    def expire(self, session: dict) -> dict:
        if session["status"] != "open":
            raise StripeError(
                f"Only Checkout Sessions with a status in ['open'] can be expired. This "
                f"Checkout Session has a status of '{session['status']}'.",
            )
        session["status"] = "expired"
        self.s.emit("checkout.session.expired", session)
        return session

    def pay_checkout(
        self,
        session: dict,
        number: str,
        expiry: str = "12 / 34",
        cvc: str = "123",
        name: str | None = None,
    ) -> dict:
        self.expire_if_due(session)
        if session["status"] != "open":
            raise StripeError(
                f"This Checkout Session is no longer active (status {session['status']}).",
                code="checkout_session_inactive",
            )
        number, exp = check_card(number, expiry, cvc)
        private = self.s.priv(session["id"])
        customer = self.s.find(session["customer"])
        if customer is None:
            customer = self.o.customer({"email": session["customer_email"], "name": name})
        pm = self.o.payment_method(customer, number, name, exp)
        customer["invoice_settings"]["default_payment_method"] = pm["id"]
        now = self.s.now()
        end = add_months(now, 1)
        sub = self.new_subscription(customer, session, private, pm, (now, end))
        specs = []
        for entry in private["items"]:
            price = self.s.get(entry["price"])
            if price["recurring"]:
                item = next(i for i in sub["items"]["data"] if i["price"]["id"] == price["id"])
                specs.append(
                    self.spec(
                        price, entry["quantity"], entry["tax_rates"], (now, end), item=item["id"]
                    )
                )
            else:
                specs.append(self.spec(price, entry["quantity"], entry["tax_rates"], (now, now)))
        self.s.emit("customer.subscription.created", sub)
        invoice = self.new_invoice(customer, sub, specs, "subscription_create", (now, now))
        sub["latest_invoice"] = invoice["id"]
        self.collect(invoice, off_session=False)
        session.update(
            status="complete",
            payment_status="paid",
            customer=customer["id"],
            subscription=sub["id"],
            invoice=invoice["id"],
            customer_details={
                "address": customer["address"] or dict(EMPTY_ADDRESS),
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
        return session

    def new_subscription(
        self, customer: dict, session: dict, private: dict, pm: dict, period: tuple[int, int]
    ) -> dict:
        sub_id = self.s.new_id("sub_")
        now = self.s.now()
        items = []
        for entry in private["items"]:
            price = self.s.get(entry["price"])
            if not price["recurring"]:
                continue
            items.append(
                {
                    "id": self.s.new_id("si_", 14),
                    "object": "subscription_item",
                    "billing_thresholds": None,
                    "created": now,
                    "current_period_end": period[1],
                    "current_period_start": period[0],
                    "discounts": [],
                    "metadata": {},
                    "plan": None,
                    "price": copy.deepcopy(price),
                    "quantity": entry["quantity"],
                    "subscription": sub_id,
                    "tax_rates": copy.deepcopy(entry["tax_rates"]),
                }
            )
        for item in items:
            item["plan"] = self.plan(item["price"])
        sub = {
            "id": sub_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": now,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"type": "classic"},
            "billing_schedules": [],
            "managed_payments": None,
            "billing_thresholds": None,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": items[0]["price"]["currency"],
            "customer": customer["id"],
            "customer_account": None,
            "days_until_due": None,
            "default_payment_method": pm["id"],
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": lst(f"/v1/subscription_items?subscription={sub_id}", items),
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(private["subscription_metadata"]),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "active",
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
        }
        self.s.priv(sub_id).update(cycle=0, pending=[])
        return self.s.add(sub)

    @staticmethod
    def plan(price: dict) -> dict:
        return {
            "id": price["id"],
            "object": "plan",
            "active": price["active"],
            "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "interval": price["recurring"]["interval"],
            "interval_count": price["recurring"]["interval_count"],
            "livemode": False,
            "metadata": price["metadata"],
            "meter": None,
            "nickname": price["nickname"],
            "product": price["product"],
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }

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

    # -- subscriptions -------------------------------------------------------------------

    def period_of(self, sub: dict) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return item["current_period_start"], item["current_period_end"]

    def proration_specs(
        self, sub: dict, changes: list[tuple[dict, dict, int]], when: int
    ) -> list[dict]:
        specs = []
        for item, price, quantity in changes:
            start, end = item["current_period_start"], item["current_period_end"]
            when_ = min(max(when, start), end)
            left = Decimal(end - when_) / Decimal(end - start)
            day = dt.datetime.fromtimestamp(when_, dt.UTC).strftime("%d %b %Y")
            old, rates = item["price"], item["tax_rates"]
            specs.append(
                self.spec(
                    old,
                    item["quantity"],
                    rates,
                    (when_, end),
                    item=item["id"],
                    proration=True,
                    amount=-round_half_up(old["unit_amount"] * item["quantity"] * left),
                    description=f"Unused time on {self.product_name(old)} after {day}",
                )
            )
            specs.append(
                self.spec(
                    price,
                    quantity,
                    rates,
                    (when_, end),
                    item=item["id"],
                    proration=True,
                    amount=round_half_up(price["unit_amount"] * quantity * left),
                    description=f"Remaining time on {quantity} × {self.product_name(price)} "
                    f"after {day}",
                )
            )
        return specs

    def item_changes(self, sub: dict, items: Any) -> list[tuple[dict, dict, int]]:
        changes = []
        for n, entry in enumerate(items or []):
            by_id = {i["id"]: i for i in sub["items"]["data"]}
            if not entry.get("id"):
                raise StripeError(
                    "The sandbox can only change existing items: give items[n][id].",
                    param=f"items[{n}][id]",
                )
            item = by_id.get(entry["id"])
            if item is None:
                raise StripeError(
                    f"No such subscription item: '{entry['id']}'",
                    param=f"items[{n}][id]",
                    code="resource_missing",
                    status=404,
                )
            price = (
                self.s.get(entry["price"], "price", f"items[{n}][price]")
                if entry.get("price")
                else item["price"]
            )
            if not price["recurring"]:
                raise StripeError(
                    "The price specified is set to `type=one_time` but this field only accepts "
                    "prices with `type=recurring`.",
                    param=f"items[{n}][price]",
                )
            quantity = as_int(entry.get("quantity", item["quantity"]), f"items[{n}][quantity]")
            changes.append((item, price, quantity))
        return changes

    def preview(self, p: dict) -> dict:
        sub = (
            self.s.get(p["subscription"], "subscription", "subscription")
            if p.get("subscription")
            else None
        )
        if sub is None:
            raise missing("subscription")
        customer = self.s.get(p.get("customer") or sub["customer"], "customer", "customer")
        details = p.get("subscription_details") or {}
        behaviour = details.get("proration_behavior", "create_prorations")
        when = as_int(
            details.get("proration_date", self.s.now()), "subscription_details[proration_date]"
        )
        changes = self.item_changes(sub, details.get("items"))
        specs = self.proration_specs(sub, changes, when) if behaviour != "none" else []
        period = self.period_of(sub)
        if behaviour == "always_invoice":
            return self.o.invoice(customer, sub, specs, "subscription_update", (when, when), True)
        specs += self.s.priv(sub["id"])["pending"]
        changed = {item["id"]: (price, qty) for item, price, qty in changes}
        nxt = (
            period[1],
            add_months(sub["billing_cycle_anchor"], self.s.priv(sub["id"])["cycle"] + 2),
        )
        for item in sub["items"]["data"]:
            price, qty = changed.get(item["id"], (item["price"], item["quantity"]))
            specs.append(self.spec(price, qty, item["tax_rates"], nxt, item=item["id"]))
        return self.o.invoice(customer, sub, specs, "subscription_cycle", period, True)

    def update_subscription(self, sub: dict, p: dict) -> dict:
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
        before = copy.deepcopy(sub)
        behaviour = p.get("proration_behavior", "create_prorations")
        if behaviour not in ("none", "create_prorations", "always_invoice"):
            raise StripeError(
                f"Invalid proration_behavior: {behaviour}", param="proration_behavior"
            )
        when = as_int(p.get("proration_date", self.s.now()), "proration_date")
        changes = [
            c
            for c in self.item_changes(sub, p.get("items"))
            if c[1] is not c[0]["price"] or c[2] != c[0]["quantity"]
        ]
        specs = self.proration_specs(sub, changes, when) if behaviour != "none" else []
        customer = self.s.get(sub["customer"])
        if (
            behaviour == "always_invoice"
            and specs
            and p.get("payment_behavior") == ("error_if_incomplete")
        ):
            pm = self.s.find(sub["default_payment_method"])
            number = self.s.priv(pm["id"]).get("number") if pm else None
            if CARDS.get(number or "") != SUCCEEDS:
                raise card_error(DECLINE[0], DECLINE[1], "generic_decline")
        for item, price, quantity in changes:
            item["price"], item["quantity"], item["plan"] = (
                copy.deepcopy(price),
                quantity,
                self.plan(price),
            )
        if "metadata" in p:
            metadata = dict(sub["metadata"])
            for key, value in (p["metadata"] or {}).items():
                if value in ("", None):
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            sub["metadata"] = metadata
        if "cancel_at_period_end" in p:
            on = as_bool(p["cancel_at_period_end"])
            sub["cancel_at_period_end"] = on
            sub["cancel_at"] = self.period_of(sub)[1] if on else None
            sub["canceled_at"] = self.s.now() if on else None
            sub["cancellation_details"]["reason"] = "cancellation_requested" if on else None
        if p.get("default_payment_method"):
            sub["default_payment_method"] = self.s.get(
                p["default_payment_method"], "payment_method", "default_payment_method"
            )["id"]
        invoice = None
        if behaviour == "always_invoice" and specs:
            invoice = self.new_invoice(customer, sub, specs, "subscription_update", (when, when))
            sub["latest_invoice"] = invoice["id"]
        elif behaviour == "create_prorations":
            self.s.priv(sub["id"])["pending"] += specs
        if invoice is not None and not self.collect(invoice):
            sub["status"] = "past_due"
        previous = diff(before, sub)
        if previous:
            self.s.emit("customer.subscription.updated", sub, previous)
        return sub

    def cancel(self, sub: dict) -> dict:
        if sub["status"] == "canceled":
            raise StripeError(
                f"No such subscription: '{sub['id']}'",
                status=404,
                code="resource_missing",
                param="id",
            )
        now = self.s.now()
        sub.update(status="canceled", canceled_at=sub["canceled_at"] or now, ended_at=now)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
        self.s.emit("customer.subscription.deleted", sub)
        return sub

    def renew(self, sub: dict) -> None:
        """The period ended: cancel if asked, else invoice the next one and charge it."""
        if sub["cancel_at_period_end"]:
            self.cancel(sub)
            return
        before = copy.deepcopy(sub)
        private = self.s.priv(sub["id"])
        private["cycle"] += 1
        start = add_months(sub["billing_cycle_anchor"], private["cycle"])
        end = add_months(sub["billing_cycle_anchor"], private["cycle"] + 1)
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end
        specs = private["pending"] + [
            self.spec(
                item["price"], item["quantity"], item["tax_rates"], (start, end), item=item["id"]
            )
            for item in sub["items"]["data"]
        ]
        private["pending"] = []
        customer = self.s.get(sub["customer"])
        invoice = self.new_invoice(
            customer, sub, specs, "subscription_cycle", (before_start(before), start)
        )
        sub["latest_invoice"] = invoice["id"]
        if not self.collect(invoice) and sub["status"] == "active":
            sub["status"] = "past_due"
        self.s.emit("customer.subscription.updated", sub, diff(before, sub))

    def retry(self, invoice: dict) -> None:
        sub = self.s.find(
            (invoice["parent"] or {}).get("subscription_details", {}).get("subscription")
        )
        paid = self.collect(invoice)
        if sub is None or sub["status"] == "canceled":
            return
        before = copy.deepcopy(sub)
        open_left = any(
            i["status"] == "open"
            and i["parent"]["subscription_details"]["subscription"] == sub["id"]
            for i in self.s.all("invoice")
            if i["parent"]
        )
        if paid and not open_left:
            sub["status"] = "active"
        elif not paid and invoice["next_payment_attempt"] is None:
            sub["status"] = "unpaid"
        if sub["status"] != before["status"]:
            self.s.emit("customer.subscription.updated", sub, diff(before, sub))

    # -- refunds and credit notes -------------------------------------------------------

    def refund(self, p: dict) -> dict:
        if p.get("charge"):
            charge = self.s.get(p["charge"], "charge", "charge")
        elif p.get("payment_intent"):
            pi = self.s.get(p["payment_intent"], "payment_intent", "payment_intent")
            charge = self.s.find(pi["latest_charge"])
            if charge is None or charge["status"] != "succeeded":
                raise StripeError(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                )
        else:
            raise missing("charge")
        left = charge["amount"] - charge["amount_refunded"]
        amount = as_int(p.get("amount", left), "amount")
        if charge["status"] != "succeeded":
            raise StripeError("Charge has not succeeded and cannot be refunded.", param="charge")
        if left == 0:
            raise StripeError(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount <= 0 or amount > left:
            raise StripeError(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                param="amount",
                code="amount_too_large",
            )
        refund = self.o.refund(charge, amount, p)
        txn = self.o.balance_transaction("refund", -amount, charge["currency"], refund["id"])
        refund["balance_transaction"] = txn["id"]
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        self.s.emit("charge.refunded", charge)
        self.s.emit("refund.created", refund)
        return refund

    def credit_note(self, p: dict) -> dict:
        if not p.get("invoice"):
            raise missing("invoice")
        invoice = self.s.get(p["invoice"], "invoice", "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise StripeError(
                "You can only create credit notes for open or paid invoices.", param="invoice"
            )
        cn_id = self.s.new_id("cn_")
        lines = []
        by_id = {line["id"]: line for line in invoice["lines"]["data"]}
        raw = p.get("lines") or (
            [
                {
                    "type": "custom_line_item",
                    "unit_amount": p["amount"],
                    "quantity": 1,
                    "description": "Credit",
                }
            ]
            if p.get("amount") is not None
            else []
        )
        if not raw:
            raise missing("lines")
        for n, entry in enumerate(raw):
            param = f"lines[{n}]"
            kind = entry.get("type")
            if kind == "invoice_line_item":
                line = by_id.get(entry.get("invoice_line_item"))
                if line is None:
                    raise StripeError(
                        "No such invoice line item.",
                        param=f"{param}[invoice_line_item]",
                        code="resource_missing",
                        status=404,
                    )
                amount = as_int(entry.get("amount", line["amount"]), f"{param}[amount]")
                share = Decimal(amount) / Decimal(line["amount"] or 1)
                taxes = [
                    dict(t, amount=round_half_up(t["amount"] * share), taxable_amount=amount)
                    for t in line["taxes"]
                ]
                description, quantity, unit = line["description"], line["quantity"], None
            elif kind == "custom_line_item":
                quantity = as_int(entry.get("quantity", 1), f"{param}[quantity]")
                unit = as_int(entry.get("unit_amount"), f"{param}[unit_amount]")
                amount = unit * quantity
                rates = self.tax_rates(entry.get("tax_rates"), f"{param}[tax_rates]")
                taxes = self.taxes(amount, rates)
                description = entry.get("description") or "Credit"
            else:
                raise StripeError("Invalid line type.", param=f"{param}[type]")
            lines.append(
                {
                    "id": self.s.new_id("cnli_"),
                    "object": "credit_note_line_item",
                    "amount": amount,
                    "description": description,
                    "discount_amount": 0,
                    "discount_amounts": [],
                    "invoice_line_item": entry.get("invoice_line_item"),
                    "livemode": False,
                    "metadata": {},
                    "pretax_credit_amounts": [],
                    "quantity": quantity,
                    "tax_rates": [self.s.get(t["tax_rate_details"]["tax_rate"]) for t in taxes],
                    "taxes": taxes,
                    "type": kind,
                    "unit_amount": unit,
                    "unit_amount_decimal": None if unit is None else str(unit),
                }
            )
        subtotal = sum(line["amount"] for line in lines)
        tax_total = sum(
            t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "exclusive"
        )
        total = subtotal + tax_total
        refund_amount = as_int(p.get("refund_amount", 0), "refund_amount")
        credit_amount = as_int(p.get("credit_amount", 0), "credit_amount")
        oob_amount = as_int(p.get("out_of_band_amount", 0), "out_of_band_amount")
        post = invoice["status"] == "paid"
        if post and not (refund_amount or credit_amount or oob_amount):
            credit_amount = total
        if post and refund_amount + credit_amount + oob_amount != total:
            raise StripeError(
                f"The sum of credit amount, refund amount and out of band amount ("
                f"{refund_amount + credit_amount + oob_amount}) must equal the credit note "
                f"amount ({total}).",
            )
        if (
            total
            > invoice["total"]
            - invoice["pre_payment_credit_notes_amount"]
            - invoice["post_payment_credit_notes_amount"]
        ):
            raise StripeError(
                "The credit note amount exceeds the invoice's remaining total.", param="amount"
            )
        refunds = []
        if refund_amount:
            pi_id = self.s.priv(invoice["id"]).get("payment_intent")
            refund = self.refund(
                {
                    "payment_intent": pi_id,
                    "amount": refund_amount,
                    "metadata": {"credit_note": cn_id},
                }
            )
            refunds.append(
                {
                    "amount_refunded": refund_amount,
                    "refund": refund["id"],
                    "payment_record_refund": None,
                    "type": "refund",
                }
            )
        customer = self.s.get(invoice["customer"])
        if credit_amount:
            customer["balance"] -= credit_amount
        if post:
            invoice["post_payment_credit_notes_amount"] += total
        else:
            invoice["pre_payment_credit_notes_amount"] += total
            invoice["amount_due"] = max(0, invoice["amount_due"] - total)
            invoice["amount_remaining"] = max(0, invoice["amount_remaining"] - total)
        count = self.s.priv(invoice["id"]).get("credit_notes", 0) + 1
        self.s.priv(invoice["id"])["credit_notes"] = count
        total_taxes = [t for line in lines for t in line["taxes"]]
        note = {
            "id": cn_id,
            "object": "credit_note",
            "amount": total,
            "amount_shipping": 0,
            "created": self.s.now(),
            "currency": invoice["currency"],
            "customer": customer["id"],
            "customer_account": None,
            "customer_balance_transaction": None,
            "discount_amount": 0,
            "discount_amounts": [],
            "effective_at": self.s.now(),
            "invoice": invoice["id"],
            "lines": lst(f"/v1/credit_notes/{cn_id}/lines", lines),
            "livemode": False,
            "memo": p.get("memo"),
            "metadata": dict(p.get("metadata") or {}),
            "number": f"{invoice['number']}-CN-{count:02d}",
            "out_of_band_amount": oob_amount or None,
            "pdf": f"{self.public_url}/i/{invoice['id']}/pdf",
            "post_payment_amount": total if post else 0,
            "pre_payment_amount": 0 if post else total,
            "pretax_credit_amounts": [],
            "reason": p.get("reason"),
            "refunds": refunds,
            "shipping_cost": None,
            "status": "issued",
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "total": total,
            "total_excluding_tax": subtotal,
            "total_taxes": total_taxes,
            "type": "post_payment" if post else "pre_payment",
            "voided_at": None,
        }
        self.s.add(note)
        self.s.emit("credit_note.created", note)
        return note

    # -- portal --------------------------------------------------------------------------

    def portal_session(self, p: dict) -> dict:
        if not p.get("customer"):
            raise missing("customer")
        customer = self.s.get(p["customer"], "customer", "customer")
        bps_id = self.s.new_id("bps_")
        return self.s.add(
            {
                "id": bps_id,
                "object": "billing_portal.session",
                "configuration": "bpc_sandbox000000000000000000",
                "created": self.s.now(),
                "customer": customer["id"],
                "customer_account": None,
                "flow": None,
                "livemode": False,
                "locale": p.get("locale"),
                "on_behalf_of": None,
                "return_url": p.get("return_url"),
                "url": f"{self.public_url}/p/session/{bps_id}",
            }
        )

    def replace_card(self, customer: dict, number: str, expiry: str, cvc: str, name: str | None):
        number, exp = check_card(number, expiry, cvc)
        pm = self.o.payment_method(customer, number, name, exp)
        customer["invoice_settings"]["default_payment_method"] = pm["id"]
        for sub in self.s.all("subscription"):
            if sub["customer"] == customer["id"] and sub["status"] != "canceled":
                sub["default_payment_method"] = pm["id"]
        return pm

    # -- clock ---------------------------------------------------------------------------

    def payout(self, at: int) -> None:
        taken = []
        for txn in self.s.all("balance_transaction"):
            if txn["available_on"] <= at and txn["status"] == "pending":
                txn["status"] = "available"
            private = self.s.priv(txn["id"])
            if (
                txn["type"] in ("charge", "refund")
                and txn["available_on"] <= at
                and "payout" not in private
            ):
                taken.append(txn)
        by_currency: dict[str, list[dict]] = {}
        for txn in taken:
            by_currency.setdefault(txn["currency"], []).append(txn)
        for currency, txns in sorted(by_currency.items()):
            amount = sum(t["net"] for t in txns)
            if amount <= 0:
                continue
            po = self.o.payout(amount, currency)
            txn = self.o.balance_transaction("payout", -amount, currency, po["id"])
            po["balance_transaction"] = txn["id"]
            for t in [*txns, txn]:
                self.s.priv(t["id"])["payout"] = po["id"]
            self.s.emit("payout.created", po)
            self.s.emit("payout.paid", po)

    def advance(self, seconds: float) -> int:
        start = self.s.now()
        target = start + int(seconds)
        try:
            while True:
                due = self.next_due()
                if due is None or due[0] > target:
                    break
                at, _, action, obj = due
                self.s.freeze(max(at, start))
                if action == "renew":
                    self.renew(obj)
                elif action == "retry":
                    self.retry(obj)
                elif action == "expire":
                    self.expire(obj)
                else:
                    self.s.last_payout_day += 1
                    self.payout(at)
        finally:
            self.s.freeze(None)
        self.s.offset += target - self.s.now()
        return self.s.now()

    def next_due(self) -> tuple | None:
        due: list[tuple] = [((self.s.last_payout_day + 1) * 86400, 2, "payout", None)]
        for sub in self.s.all("subscription"):
            if sub["status"] in ("active", "past_due"):
                due.append((self.period_of(sub)[1], 0, "renew", sub))
        for invoice in self.s.all("invoice"):
            if invoice["status"] == "open" and invoice["next_payment_attempt"]:
                due.append((invoice["next_payment_attempt"], 1, "retry", invoice))
        for session in self.s.all("checkout.session"):
            if session["status"] == "open":
                due.append((session["expires_at"], 3, "expire", session))
        return min(due, key=lambda d: d[:2])


def before_start(sub: dict) -> int:
    return sub["items"]["data"][0]["current_period_start"]
