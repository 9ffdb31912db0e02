"""Subscriptions: the object, prorations and previews, updates, cancelling, renewals, retries."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from .cards import (
    CARDS,
    DECLINE,
    SUCCEEDS,
    card_error,
)
from .objects import Objects, add_months, as_bool, as_int, lst, round_half_up
from .store import Store, StripeError, diff, missing


class Subscriptions:
    s: Store
    o: Objects

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


def before_start(sub: dict) -> int:
    return sub["items"]["data"][0]["current_period_start"]
