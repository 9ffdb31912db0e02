"""Refunds and credit notes."""

from __future__ import annotations

from decimal import Decimal

from .objects import Objects, as_int, lst, round_half_up
from .store import Store, StripeError, missing


class Refunds:
    s: Store
    o: Objects

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
        outcome = self.s.settings["refund_outcome"]
        if outcome != "succeeded":
            # Some refunds take days (the bank answers later): pending, then refund.updated.
            refund["status"] = "pending"
            refund["destination_details"]["card"]["reference_status"] = "pending"
            private = self.s.priv(refund["id"])
            private["settles_at"] = self.s.now() + int(self.s.settings["refund_delay"])
            private["fails"] = outcome == "pending_fails"
        self.s.emit("charge.refunded", charge)
        self.s.emit("refund.created", refund)
        return refund

    def settle_refund(self, refund: dict) -> None:
        """A pending refund's answer: succeeded, or failed (the money comes back)."""
        private = self.s.priv(refund["id"])
        private.pop("settles_at", None)
        before = {"status": refund["status"]}
        if not private.get("fails"):
            refund["status"] = "succeeded"
            refund["destination_details"]["card"]["reference_status"] = "available"
            self.s.emit("refund.updated", refund, before)
            return
        charge = self.s.get(refund["charge"])
        txn = self.o.balance_transaction(
            "refund_failure", refund["amount"], refund["currency"], refund["id"]
        )
        refund.update(
            status="failed",
            failure_reason="expired_or_canceled_card",
            failure_balance_transaction=txn["id"],
        )
        refund["destination_details"]["card"]["reference_status"] = "unavailable"
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        self.s.emit("refund.failed", refund)
        self.s.emit("refund.updated", refund, before)

    def void_credit_note(self, note: dict) -> dict:
        """Void a credit note: its credit leaves the invoice and the customer's balance. One
        that refunded money cannot be voided (the money has gone back to the card)."""
        if note["status"] == "void":
            raise StripeError("This credit note is already void.", param="id")
        if note["refunds"]:
            raise StripeError("A credit note with refunds cannot be voided.", param="id")
        invoice = self.s.get(note["invoice"])
        customer = self.s.get(note["customer"])
        if note["type"] == "post_payment":
            invoice["post_payment_credit_notes_amount"] -= note["total"]
        else:
            invoice["pre_payment_credit_notes_amount"] -= note["total"]
        if note["customer_balance_transaction"]:
            customer["balance"] += note["total"] - (note["out_of_band_amount"] or 0)
        note.update(status="void", voided_at=self.s.now())
        self.s.emit("credit_note.voided", note)
        return note

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
        balance_txn = None
        if credit_amount:  # Stripe records it as a customer balance transaction
            customer["balance"] -= credit_amount
            balance_txn = self.s.new_id("cbtxn_")
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
            "customer_balance_transaction": balance_txn,
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
