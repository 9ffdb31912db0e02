"""Checkout Sessions: creating one and expiring it (paying one: `checkout_payments.py`)."""

from __future__ import annotations

from .objects import Objects, as_int
from .store import Store, StripeError, missing


class Checkout:
    s: Store
    o: Objects

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
            "payment_method_types": ["card", "sepa_debit"]
            if prices[0]["currency"] == "eur"
            else ["card"],
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
