"""Prorations and the invoice preview: what changing a subscription's items costs.

The update (`subscription_updates.py`) and the preview share `item_changes` and
`proration_specs`, so a preview with a `proration_date` shows exactly what the update with the
same date then invoices.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .objects import Objects, add_months, as_int, round_half_up
from .store import Store, StripeError, missing

PRORATION_BEHAVIORS = ("none", "create_prorations", "always_invoice")


def proration_behavior(p: dict, param: str = "proration_behavior") -> str:
    value = p.get("proration_behavior", "create_prorations")
    if value not in PRORATION_BEHAVIORS:
        raise StripeError(
            f"Invalid {param}: must be one of {', '.join(PRORATION_BEHAVIORS)}",
            param=param,
            code="parameter_invalid_string",
        )
    return value


class Prorations:
    s: Store
    o: Objects

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

    def item_changes(
        self, sub: dict, items: Any, prefix: str = "items"
    ) -> list[tuple[dict, dict, int]]:
        """(item, new price, new quantity) for each item the request really changes."""
        changes = []
        by_id = {i["id"]: i for i in sub["items"]["data"]}
        for n, entry in enumerate(items or []):
            param = f"{prefix}[{n}]"
            if not entry.get("id"):
                raise StripeError(
                    f"The sandbox can only change existing items: give {param}[id].",
                    param=f"{param}[id]",
                )
            item = by_id.get(entry["id"])
            if item is None:
                raise StripeError(
                    f"No such subscription item: '{entry['id']}'",
                    param=f"{param}[id]",
                    code="resource_missing",
                    status=404,
                )
            price = (
                self.s.get(entry["price"], "price", f"{param}[price]")
                if entry.get("price")
                else item["price"]
            )
            if not price["recurring"]:
                raise StripeError(
                    "The price specified is set to `type=one_time` but this field only accepts "
                    "prices with `type=recurring`.",
                    param=f"{param}[price]",
                )
            quantity = as_int(entry.get("quantity", item["quantity"]), f"{param}[quantity]")
            if price["id"] != item["price"]["id"] or quantity != item["quantity"]:
                changes.append((item, price, quantity))
        return changes

    def preview(self, p: dict) -> dict:
        """The invoice an update with these details would bring: with
        `proration_behavior=always_invoice` the proration invoice the update creates at once
        (same amounts, same taxes, same customer balance), else the next renewal's."""
        sub = (
            self.s.get(p["subscription"], "subscription", "subscription")
            if p.get("subscription")
            else None
        )
        if sub is None:
            raise missing("subscription")
        customer = self.s.get(p.get("customer") or sub["customer"], "customer", "customer")
        details = p.get("subscription_details") or {}
        behaviour = proration_behavior(details, "subscription_details[proration_behavior]")
        when = as_int(
            details.get("proration_date", self.s.now()), "subscription_details[proration_date]"
        )
        changes = self.item_changes(sub, details.get("items"), "subscription_details[items]")
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
