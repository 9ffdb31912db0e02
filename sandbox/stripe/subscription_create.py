"""`POST /v1/subscriptions`: a subscription made by the API, charged at once with a saved card.

It is what a Checkout payment makes (`Subscriptions.start_subscription`: the same items, first
invoice, taxes and events), paid with a payment method attached to the customer instead of a
card typed on the hosted page:

- `items[]` (recurring prices, or `price_data` with `recurring`) become the subscription's
  items; `add_invoice_items[]` (one-time prices, or `price_data`: a setup fee) go on the first
  invoice only; `tax_rates` per entry, `default_tax_rates` for entries without.
- The card charged is `default_payment_method` (which must be attached to the customer), or
  else the customer's `invoice_settings.default_payment_method`; with neither, and something to
  pay, 400 as on Stripe (except `default_incomplete`, which charges nothing yet).
- `off_session` (Stripe's default: false) says whether the customer is present: a card that
  asks for 3-D Secure on payments made on session asks here too (`cards.py`).
- `payment_behavior`: `allow_incomplete` (default) keeps a subscription whose first payment
  failed or needs authentication as `incomplete` (its invoice open; `incomplete_expired` after
  23 hours unpaid, as for Checkout); `default_incomplete` makes it `incomplete` with its invoice
  open and not attempted (nothing due: `active`); `error_if_incomplete` refuses with 402
  (`card_declined`, or `invoice_payment_intent_requires_action`) and makes nothing: no
  subscription, no invoice, no event. `pending_if_incomplete` exists only for updates (a
  pending update needs a subscription to wait on): 400.
- `payment_settings[save_default_payment_method]=on_subscription` makes the card that paid the
  subscription's default payment method.
- Events: `customer.subscription.created`, `invoice.created`, `invoice.finalized`, then
  `invoice.paid` and `invoice.payment_succeeded` (or `invoice.payment_failed` /
  `invoice.payment_action_required`), as for a Checkout subscription.

Listing a customer's payment methods (`GET /v1/customers/{id}/payment_methods`,
`GET /v1/payment_methods?customer=…`) is `PaymentMethods` below.
"""

from __future__ import annotations

from typing import Any

from .cards import PAID
from .objects import Objects, as_bool, as_int
from .store import Store, StripeError, missing, no_such
from .subscription_updates import payment_behavior

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting"
    "#payment-method-priority."
)


class SubscriptionCreate:
    s: Store
    o: Objects

    def create_subscription(self, p: dict) -> dict:
        behaviour = payment_behavior(p)
        if behaviour == "pending_if_incomplete":
            raise StripeError(
                "`payment_behavior=pending_if_incomplete` can only be used when updating a "
                "subscription.",
                param="payment_behavior",
            )
        if not p.get("customer"):
            raise missing("customer")
        customer = self.s.get(p["customer"], "customer", "customer")
        entries = self.subscription_entries(p)
        pm = self.subscription_payment_method(customer, p)
        off_session = as_bool(p.get("off_session", False))
        due = self.first_amount_due(customer, entries)
        if due and pm is None and behaviour != "default_incomplete":
            raise StripeError(NO_PAYMENT_METHOD, code="resource_missing")
        if due and behaviour == "error_if_incomplete":
            self.refuse_unpayable(pm, "created", off_session=off_session)
        expected = self.charge_outcome(pm, off_session=off_session) if due else PAID
        paying = behaviour != "default_incomplete" or not due
        status = "active" if paying and expected == PAID else "incomplete"
        terms = {"items": entries, "subscription_metadata": dict(p.get("metadata") or {})}
        sub, invoice = self.start_subscription(customer, terms, pm, status)
        sub["default_payment_method"] = p.get("default_payment_method") or None
        sub["description"] = p.get("description") or None
        save = (p.get("payment_settings") or {}).get("save_default_payment_method") or "off"
        sub["payment_settings"]["save_default_payment_method"] = save
        if not paying:
            self.invoice_payment_intent(invoice, pm)  # left for the integration to confirm
            return sub
        if self.collect(invoice, off_session=off_session, pm=pm) == PAID:
            if pm is not None:
                self.s.priv(pm["id"])["set_up"] = True  # saved for later off-session charges
                if save == "on_subscription":
                    sub["default_payment_method"] = pm["id"]
        elif invoice["status"] == "open":
            # A first invoice is not retried on a schedule: it is paid within 23 hours (hosted
            # invoice page, another card) or the subscription expires.
            invoice["next_payment_attempt"] = None
        return sub

    # -- parameters ----------------------------------------------------------------------

    def subscription_entries(self, p: dict) -> list[dict]:
        """`items` (recurring) then `add_invoice_items` (one-time), as {price, quantity,
        tax_rates}: the shape Checkout keeps its line items in."""
        items = p.get("items")
        if not items:
            raise missing("items")
        defaults = p.get("default_tax_rates") or []
        entries = []
        for n, entry in enumerate(_as_list(items)):
            param = f"items[{n}]"
            price = self.entry_price(entry, param, recurring=True)
            entries.append(self.entry(entry, price, param, defaults))
        for n, entry in enumerate(_as_list(p.get("add_invoice_items"))):
            param = f"add_invoice_items[{n}]"
            price = self.entry_price(entry, param, recurring=False)
            entries.append(self.entry(entry, price, param, defaults))
        currencies = {self.s.get(e["price"])["currency"] for e in entries}
        if len(currencies) > 1:
            raise StripeError(
                "All prices on a subscription must have the same currency.", param="items"
            )
        return entries

    def entry_price(self, entry: dict, param: str, *, recurring: bool) -> dict:
        if entry.get("price"):
            price = self.s.get(entry["price"], "price", f"{param}[price]")
        elif isinstance(entry.get("price_data"), dict):
            data = entry["price_data"]
            if recurring and not isinstance(data.get("recurring"), dict):
                raise missing(f"{param}[price_data][recurring]")
            price = self.inline_price(data, f"{param}[price_data]")
        else:
            raise missing(f"{param}[price]")
        wanted, found = ("recurring", "one_time") if recurring else ("one_time", "recurring")
        if price["type"] != wanted:
            raise StripeError(
                f"The price specified is set to `type={found}` but this field only accepts "
                f"prices with `type={wanted}`.",
                param=f"{param}[price]",
            )
        if recurring and not price["active"] and entry.get("price"):
            raise StripeError(
                "The price specified is inactive. This field only accepts active prices.",
                param=f"{param}[price]",
            )
        return price

    def entry(self, entry: dict, price: dict, param: str, defaults: list) -> dict:
        quantity = as_int(entry.get("quantity", 1), f"{param}[quantity]")
        if quantity < 1:
            raise StripeError("Invalid quantity: must be at least 1", param=f"{param}[quantity]")
        rates = entry.get("tax_rates")
        if rates in (None, ""):
            rates, rates_param = defaults, "default_tax_rates"
        else:
            rates_param = f"{param}[tax_rates]"
        return {
            "price": price["id"],
            "quantity": quantity,
            "tax_rates": self.tax_rates(rates, rates_param),
        }

    def subscription_payment_method(self, customer: dict, p: dict) -> dict | None:
        if p.get("default_payment_method"):
            pm = self.s.get(p["default_payment_method"], "payment_method", "default_payment_method")
            if pm["customer"] != customer["id"]:
                raise StripeError(
                    f"The customer does not have a payment method with the ID {pm['id']}. The "
                    "payment method must be attached to the customer.",
                    code="resource_missing",
                    param="default_payment_method",
                )
            return pm
        return self.s.find(customer["invoice_settings"]["default_payment_method"])

    def first_amount_due(self, customer: dict, entries: list[dict]) -> int:
        now = self.s.now()
        total = 0
        for entry in entries:
            spec = self.spec(
                self.s.get(entry["price"]), entry["quantity"], entry["tax_rates"], (now, now)
            )
            total += spec["amount"] + sum(
                t["amount"] for t in spec["taxes"] if t["tax_behavior"] == "exclusive"
            )
        return max(0, total + customer["balance"])


def _as_list(value: Any) -> list[dict]:
    if value in (None, ""):
        return []
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


class PaymentMethods:
    """A customer's payment methods: every card attached to them (a card paid with on Checkout,
    saved in the billing portal), newest first, as `GET /v1/customers/{id}/payment_methods`
    and `GET /v1/payment_methods?customer=…` list them."""

    def __init__(self, store: Store):
        self.s = store

    def add_routes(self, api: Any) -> None:
        api._route("GET", "/v1/customers/{id}/payment_methods", self.list_of_customer(api))
        api._route(
            "GET",
            "/v1/customers/{id}/payment_methods/{pm}",
            lambda p, id, pm: self.of_customer_one(self.s.get(id, "customer"), pm),
        )
        api._route(
            "GET",
            "/v1/payment_methods",
            lambda p: api.page(p, self.listing(p), "/v1/payment_methods"),
        )

    def list_of_customer(self, api: Any) -> Any:
        def handler(p: dict, id: str) -> dict:
            found = self.of_customer(self.s.get(id, "customer"), p)
            return api.page(p, found, f"/v1/customers/{id}/payment_methods")

        return handler

    def of_customer(self, customer: dict, p: dict) -> list[dict]:
        found = [pm for pm in self.s.all("payment_method") if pm["customer"] == customer["id"]]
        if p.get("type"):
            found = [pm for pm in found if pm["type"] == p["type"]]
        if p.get("allow_redisplay"):
            found = [pm for pm in found if pm["allow_redisplay"] == p["allow_redisplay"]]
        return found

    def listing(self, p: dict) -> list[dict]:
        """`GET /v1/payment_methods`: with `customer`, that customer's; without, the payment
        methods attached to nobody (Stripe lists Treasury ones there)."""
        if p.get("customer"):
            return self.of_customer(self.s.get(p["customer"], "customer", "customer"), p)
        found = [pm for pm in self.s.all("payment_method") if pm["customer"] is None]
        return [pm for pm in found if not p.get("type") or pm["type"] == p["type"]]

    def of_customer_one(self, customer: dict, pm_id: str) -> dict:
        pm = self.s.find(pm_id)
        if pm is None or pm.get("object") != "payment_method" or pm["customer"] != customer["id"]:
            raise no_such("payment_method", pm_id, "payment_method")
        return pm
