"""Builders for invoices, their lines and their payments, in the current API version's shapes
(`parent`, `payments`, `total_taxes`, line `taxes` and `pricing`). Part of `Objects`."""

from __future__ import annotations

from .store import Store, lst
from .tax_ids import invoice_tax_ids


class InvoiceObjects:
    s: Store

    # -- invoices ------------------------------------------------------------------------

    def invoice_line(self, spec: dict, invoice_id: str | None, sub: dict | None) -> dict:
        price = spec["price"]
        sub_id = sub["id"] if sub else None
        if spec.get("subscription_item"):
            parent = {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": spec.get("invoice_item"),
                    "proration": bool(spec.get("proration")),
                    "proration_details": {"credited_items": None},
                    "subscription": sub_id,
                    "subscription_item": spec["subscription_item"],
                },
            }
        else:
            parent = {
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": spec.get("invoice_item") or self.s.new_id("ii_"),
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": sub_id,
                },
                "subscription_item_details": None,
            }
        prefix = "il_" if invoice_id and not invoice_id.startswith("upcoming_") else "il_tmp_"
        return {
            "id": self.s.new_id(prefix),
            "object": "line_item",
            "amount": spec["amount"],
            "currency": price["currency"],
            "description": spec["description"],
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": invoice_id,
            "livemode": False,
            "metadata": dict(sub["metadata"]) if sub and spec.get("subscription_item") else {},
            "parent": parent,
            "period": spec["period"],
            "pretax_credit_amounts": [],
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": str(price["unit_amount"]),
            },
            "quantity": spec["quantity"],
            "quantity_decimal": str(spec["quantity"]),
            "subtotal": spec["amount"],
            "taxes": spec["taxes"],
        }

    def invoice(
        self,
        customer: dict,
        sub: dict | None,
        specs: list[dict],
        billing_reason: str,
        period: tuple[int, int],
        preview: bool = False,
    ) -> dict:
        now = self.s.now()
        invoice_id = self.s.new_id("upcoming_in_") if preview else self.s.new_id("in_")
        lines = [self.invoice_line(spec, invoice_id, sub) for spec in specs]
        subtotal = sum(line["amount"] for line in lines)
        totals: dict[tuple, dict] = {}
        for line in lines:
            for tax in line["taxes"]:
                key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"])
                agg = totals.setdefault(key, dict(tax, amount=0, taxable_amount=0))
                agg["amount"] += tax["amount"]
                agg["taxable_amount"] += tax["taxable_amount"]
        exclusive = sum(t["amount"] for t in totals.values() if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for t in totals.values() if t["tax_behavior"] == "inclusive")
        total = subtotal + exclusive
        balance = customer["balance"]
        amount_due = max(0, total + balance)
        currency = specs[0]["price"]["currency"] if specs else "eur"
        inv = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "DE",
            "account_name": "Sandbox Hosting",
            "account_tax_ids": None,
            "amount_due": amount_due,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": amount_due,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": not preview,
            "automatic_tax": {
                "disabled_reason": None,
                "enabled": False,
                "liability": None,
                "provider": None,
                "status": None,
            },
            "automatically_finalizes_at": None,
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": currency,
            "custom_fields": None,
            "customer": customer["id"],
            "customer_account": None,
            "customer_address": customer["address"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": customer["phone"],
            "customer_shipping": None,
            "customer_tax_exempt": customer["tax_exempt"],
            "customer_tax_ids": invoice_tax_ids(customer),
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": None,
            "ending_balance": None if preview else min(0, total + balance),
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": lst(f"/v1/invoices/{invoice_id}/lines", lines),
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "on_behalf_of": None,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(sub["metadata"]),
                    "subscription": sub["id"],
                },
            }
            if sub
            else None,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "payments": lst(f"/v1/invoice_payments?invoice={invoice_id}", []),
            "period_end": period[1],
            "period_start": period[0],
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": balance,
            "statement_descriptor": None,
            "status": "draft",
            "subscription": None,
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal - inclusive,
            "test_clock": None,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": subtotal - inclusive,
            "total_pretax_credit_amounts": [],
            "total_taxes": list(totals.values()),
            "webhooks_delivered_at": None,
        }
        return inv if preview else self.s.add(inv)

    def invoice_payment(self, invoice: dict, pi: dict) -> dict:
        return {
            "id": self.s.new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_due"],
            "created": self.s.now(),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": pi["id"]},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
