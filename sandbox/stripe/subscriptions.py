"""Subscriptions: the object, prorations and previews, updates, cancelling, renewals, retries."""

from __future__ import annotations

import copy

from .cards import (
    FAILED,
    NEEDS_ACTION,
    PAID,
    PROCESSING,
)
from .objects import Objects, add_months, lst
from .store import Store, StripeError, diff

DRAFT_HOURS = 1
INCOMPLETE_HOURS = 23


class Subscriptions:
    s: Store
    o: Objects

    def new_subscription(
        self,
        customer: dict,
        session: dict | None,
        private: dict,
        pm: dict | None,
        period: tuple[int, int],
        status: str = "active",
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
            "default_payment_method": pm["id"] if pm else None,
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
            "status": status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": None,
        }
        self.s.priv(sub_id).update(cycle=0, pending=[])
        return self.s.add(sub)

    def start_subscription(
        self, customer: dict, private: dict, pm: dict | None, status: str
    ) -> tuple[dict, dict]:
        """A new subscription for `private["items"]` (recurring prices become its items, one-time
        ones go on the first invoice only) and its first invoice, finalized: what Checkout and
        `POST /v1/subscriptions` both make. Collecting the invoice is the caller's."""
        now = self.s.now()
        end = add_months(now, 1)
        sub = self.new_subscription(customer, None, private, pm, (now, end), status)
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
        return sub, invoice

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

    def cancel(self, sub: dict, reason: str = "cancellation_requested") -> dict:
        if sub["status"] == "canceled":
            raise StripeError(
                f"No such subscription: '{sub['id']}'",
                status=404,
                code="resource_missing",
                param="id",
            )
        now = self.s.now()
        sub.update(status="canceled", canceled_at=sub["canceled_at"] or now, ended_at=now)
        sub["cancellation_details"]["reason"] = reason
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
        # As on Stripe, a renewal invoice stays a draft for about an hour (integrations may
        # add lines to it), then is finalized and charged: see finalize_renewal.
        invoice = self.draft_invoice(
            customer, sub, specs, "subscription_cycle", (before_start(before), start)
        )
        invoice["automatically_finalizes_at"] = self.s.now() + DRAFT_HOURS * 3600
        sub["latest_invoice"] = invoice["id"]
        self.s.emit("customer.subscription.updated", sub, diff(before, sub))

    def finalize_renewal(self, invoice: dict) -> None:
        """The renewal's draft hour is over: finalize it and charge it."""
        self.finalize(invoice)
        sub = self.invoice_subscription(invoice)
        before = copy.deepcopy(sub) if sub else None
        private = self.s.priv(sub["id"]) if sub else {}
        private["busy"] = True
        try:
            if (
                self.collect(invoice) in (FAILED, NEEDS_ACTION)
                and sub
                and sub["status"] == "active"
            ):
                sub["status"] = "past_due"
        finally:
            private["busy"] = False
        if sub and (previous := diff(before, sub)):
            self.s.emit("customer.subscription.updated", sub, previous)

    def retry(self, invoice: dict) -> None:
        """A scheduled retry of an open invoice; after the last one the subscription is unpaid."""
        sub = self.invoice_subscription(invoice)
        if self.collect(invoice) in (PAID, PROCESSING):
            return  # paid: on_invoice_paid brought the subscription back; a debit settles later
        if sub is None or sub["status"] == "canceled":
            return
        if self.s.priv(invoice["id"]).get("pending_update_of"):
            return  # a pending update's invoice never changes the subscription's status
        if invoice["next_payment_attempt"] is None:
            self.end_of_retries(sub)

    def end_of_retries(self, sub: dict) -> None:
        """The account's setting for a subscription whose last retry failed (Stripe's
        "Manage failed payments": cancel it, mark it unpaid, or leave it past due)."""
        setting = self.s.settings["subscription_retries_end"]
        if setting == "cancel":
            self.cancel(sub, reason="payment_failed")
        elif setting == "unpaid" and sub["status"] != "unpaid":
            before = copy.deepcopy(sub)
            sub["status"] = "unpaid"
            self.s.emit("customer.subscription.updated", sub, diff(before, sub))

    def expire_incomplete(self, sub: dict) -> None:
        """23 hours without its first payment: the subscription ends, its invoice is voided."""
        before = copy.deepcopy(sub)
        now = self.s.now()
        sub.update(status="incomplete_expired", canceled_at=now, ended_at=now)
        invoice = self.s.find(sub["latest_invoice"])
        if invoice is not None and invoice["status"] == "open":
            self.void(invoice)
        self.s.emit("customer.subscription.updated", sub, diff(before, sub))

    def on_invoice_paid(self, invoice: dict) -> None:
        """A paid invoice applies the pending update it carries, and a subscription with no
        open invoice left is active again."""
        sub = self.invoice_subscription(invoice)
        if sub is None or sub["status"] in ("canceled", "incomplete_expired"):
            return
        private = self.s.priv(sub["id"])
        if (private.get("pending_update") or {}).get("invoice") == invoice["id"]:
            self.apply_pending_update(sub)
        if sub["status"] not in ("past_due", "unpaid", "incomplete"):
            return
        open_left = any(
            i["status"] == "open" and not self.s.priv(i["id"]).get("pending_update_of")
            for i in self.s.all("invoice")
            if self.invoice_subscription(i) is sub
        )
        if open_left:
            return
        before = copy.deepcopy(sub)
        sub["status"] = "active"
        if not private.get("busy"):
            self.s.emit("customer.subscription.updated", sub, diff(before, sub))


def before_start(sub: dict) -> int:
    return sub["items"]["data"][0]["current_period_start"]
