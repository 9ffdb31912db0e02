"""`POST /v1/subscriptions/{id}`: changing a subscription, with Stripe's `payment_behavior`.

- `allow_incomplete` (the default): the change applies at once; a proration invoice that cannot
  be paid stays open and the subscription goes `past_due`.
- `default_incomplete`: the same, but the invoice is left for the integration to confirm.
- `error_if_incomplete`: a payment that would fail or need authentication refuses the whole
  update with 402; nothing changes and no invoice is kept.
- `pending_if_incomplete`: the change waits in `pending_update` until its proration invoice is
  paid (then `customer.subscription.pending_update_applied`), or is dropped when it expires
  23 hours later (`customer.subscription.pending_update_expired`, the invoice voided). Only the
  parameters Stripe's "Pending updates reference" lists are accepted with it; since API version
  2026-05-27.dahlia that includes `metadata` (kept in `pending_update.metadata`, merged when
  applied) and `discounts`.
"""

from __future__ import annotations

import copy
from typing import Any

from .cards import DECLINE, FAILED, NEEDS_ACTION, PAID, PROCESSING, card_error
from .objects import Objects, as_bool, as_int
from .prorations import proration_behavior
from .store import Store, StripeError, diff

PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)
PENDING_ALLOWED = {
    "add_invoice_items",
    "billing_cycle_anchor",
    "discounts",
    "expand",
    "items",
    "metadata",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "trial_end",
    "trial_from_plan",
}
PENDING_ITEM_ALLOWED = {"id", "price", "quantity", "discounts"}
PENDING_LIFETIME = 23 * 3600
PENDING_DOCS = "https://stripe.com/docs/billing/subscriptions/pending-updates-reference"


def payment_behavior(p: dict) -> str:
    value = p.get("payment_behavior", "allow_incomplete")
    if value not in PAYMENT_BEHAVIORS:
        raise StripeError(
            f"Invalid payment_behavior: must be one of {', '.join(PAYMENT_BEHAVIORS)}",
            param="payment_behavior",
            code="parameter_invalid_string",
        )
    return value


def refuse_unsupported_with_pending(p: dict) -> None:
    refused = sorted(k for k in p if k not in PENDING_ALLOWED)
    for n, entry in enumerate(p.get("items") or []):
        if isinstance(entry, dict):
            refused += [f"items[{n}][{k}]" for k in entry if k not in PENDING_ITEM_ALLOWED]
    if refused:
        raise StripeError(
            "The following parameters are not supported with "
            f"`payment_behavior=pending_if_incomplete`: {', '.join(refused)}. Only the "
            f"attributes listed at {PENDING_DOCS} can create a pending update.",
            param=refused[0],
        )


def merge_metadata(current: dict, changes: Any) -> dict:
    merged = dict(current)
    for key, value in (changes or {}).items():
        if value in ("", None):
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class SubscriptionUpdates:
    s: Store
    o: Objects

    def update_subscription(self, sub: dict, p: dict) -> dict:
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
        behaviour = payment_behavior(p)
        if behaviour == "pending_if_incomplete":
            refuse_unsupported_with_pending(p)
        prorations = proration_behavior(p)
        when = as_int(p.get("proration_date", self.s.now()), "proration_date")
        changes = self.item_changes(sub, p.get("items"))
        specs = self.proration_specs(sub, changes, when) if prorations != "none" else []
        invoiced = prorations == "always_invoice" and bool(specs)
        if invoiced and behaviour == "error_if_incomplete":
            self.refuse_if_unpayable(sub, p)
        if invoiced and behaviour == "pending_if_incomplete":
            return self.update_pending_if_incomplete(sub, p, changes, specs, when)
        before = copy.deepcopy(sub)
        private = self.s.priv(sub["id"])
        private["busy"] = True  # one customer.subscription.updated for all of it, below
        try:
            self.apply_item_changes(sub, changes)
            self.apply_attributes(sub, p)
            if invoiced:
                invoice = self.new_invoice(
                    self.s.get(sub["customer"]), sub, specs, "subscription_update", (when, when)
                )
                sub["latest_invoice"] = invoice["id"]
                result = FAILED if behaviour == "default_incomplete" else self.collect(invoice)
                if result not in (PAID, PROCESSING):
                    sub["status"] = "past_due"
            elif prorations == "create_prorations":
                private["pending"] += specs
        finally:
            private["busy"] = False
        previous = diff(before, sub)
        if previous:
            self.s.emit("customer.subscription.updated", sub, previous)
        return sub

    def refuse_if_unpayable(self, sub: dict, p: dict) -> None:
        """error_if_incomplete: decide before anything changes, so nothing has to be undone."""
        customer = self.s.get(sub["customer"])
        pm = self.s.find(
            p.get("default_payment_method")
            or sub["default_payment_method"]
            or customer["invoice_settings"]["default_payment_method"]
        )
        self.refuse_unpayable(pm, "updated")

    def refuse_unpayable(self, pm: dict | None, done: str, *, off_session: bool = True) -> None:
        """402 for a charge on `pm` that would be declined or need authentication (the
        subscription was not `done`: created, updated)."""
        result = self.charge_outcome(pm, off_session=off_session)
        if result == FAILED:
            raise card_error(DECLINE[0], DECLINE[1], "generic_decline")
        if result == NEEDS_ACTION:
            raise card_error(
                "invoice_payment_intent_requires_action",
                "This payment requires additional user action before it can be completed "
                f"successfully. The subscription was not {done}.",
            )

    def apply_item_changes(self, sub: dict, changes: list[tuple[dict, dict, int]]) -> None:
        for item, price, quantity in changes:
            item["price"], item["quantity"], item["plan"] = (
                copy.deepcopy(price),
                quantity,
                self.plan(price),
            )

    def apply_attributes(self, sub: dict, p: dict) -> None:
        if "metadata" in p:
            sub["metadata"] = merge_metadata(sub["metadata"], p["metadata"])
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

    # -- pending updates -----------------------------------------------------------------

    def update_pending_if_incomplete(
        self, sub: dict, p: dict, changes: list, specs: list[dict], when: int
    ) -> dict:
        before = copy.deepcopy(sub)
        customer = self.s.get(sub["customer"])
        invoice = self.new_invoice(customer, sub, specs, "subscription_update", (when, when))
        sub["latest_invoice"] = invoice["id"]
        private = self.s.priv(sub["id"])
        private["pending_update"] = {
            "invoice": invoice["id"],
            "changes": [(item["id"], price["id"], quantity) for item, price, quantity in changes],
            "metadata": p.get("metadata"),
        }
        self.s.priv(invoice["id"])["pending_update_of"] = sub["id"]
        sub["pending_update"] = self.pending_update_shape(sub, changes, p.get("metadata"))
        private["busy"] = True
        try:
            paid = self.collect(invoice) == PAID  # paid: applied by on_invoice_paid
        finally:
            private["busy"] = False
        if paid:
            previous = diff(before, sub)
            previous.pop("pending_update", None)  # it came and went within the request
            self.s.emit("customer.subscription.updated", sub, previous)
        else:
            self.s.emit("customer.subscription.updated", sub, diff(before, sub))
        return sub

    def pending_update_shape(self, sub: dict, changes: list, metadata: Any) -> dict:
        items = []
        for item, price, quantity in changes:
            after = copy.deepcopy(item)
            after.update(price=copy.deepcopy(price), quantity=quantity, plan=self.plan(price))
            items.append(after)
        return {
            "billing_cycle_anchor": None,
            "discount": None,
            "discounts": [],
            "expires_at": self.s.now() + PENDING_LIFETIME,
            "subscription_items": items,
            "trial_end": None,
            "trial_from_plan": None,
            "metadata": dict(metadata) if metadata else None,
        }

    def apply_pending_update(self, sub: dict) -> None:
        """Its invoice is paid: the items (and metadata) change now."""
        private = self.s.priv(sub["id"])
        pending = private.pop("pending_update")
        before = copy.deepcopy(sub)
        by_id = {item["id"]: item for item in sub["items"]["data"]}
        changes = [
            (by_id[item_id], self.s.get(price_id), quantity)
            for item_id, price_id, quantity in pending["changes"]
            if item_id in by_id
        ]
        self.apply_item_changes(sub, changes)
        if pending["metadata"]:
            sub["metadata"] = merge_metadata(sub["metadata"], pending["metadata"])
        sub["pending_update"] = None
        if private.get("busy"):
            return  # the update request itself paid it: it emits the one updated event
        self.s.emit("customer.subscription.updated", sub, diff(before, sub))
        self.s.emit("customer.subscription.pending_update_applied", sub)

    def expire_pending_update(self, sub: dict) -> None:
        """Not paid within 23 hours: the change is dropped and its invoice voided."""
        private = self.s.priv(sub["id"])
        pending = private.pop("pending_update", None)
        before = copy.deepcopy(sub)
        sub["pending_update"] = None
        invoice = self.s.find((pending or {}).get("invoice"))
        if invoice is not None and invoice["status"] == "open":
            self.void(invoice)
        self.s.emit("customer.subscription.updated", sub, diff(before, sub))
        self.s.emit("customer.subscription.pending_update_expired", sub)
