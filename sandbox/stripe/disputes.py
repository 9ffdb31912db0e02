"""Disputes (chargebacks) and failed payouts: money that leaves the balance after the fact.

A dispute withdraws the disputed amount and Stripe's dispute fee at once, as one balance
transaction of type `adjustment` (reporting category `dispute`), which the next payout nets
out; a failed payout gives its amount back to the balance (`payout_failure`).
"""

from __future__ import annotations

from .objects import Objects
from .store import Store, StripeError

# Stripe's dispute fee for an account in the EU (in the currency's minor unit).
DISPUTE_FEE = 2000


class Disputes:
    s: Store
    o: Objects

    def dispute(self, charge: dict, reason: str = "fraudulent") -> dict:
        if charge["status"] != "succeeded":
            raise StripeError("Only a succeeded charge can be disputed.", param="charge")
        if charge["disputed"]:
            raise StripeError(f"Charge {charge['id']} is already disputed.", param="charge")
        now = self.s.now()
        dispute_id = self.s.new_id("dp_")
        amount = charge["amount"] - charge["amount_refunded"]
        txn = self.o.balance_transaction(
            "adjustment", -amount, charge["currency"], dispute_id, DISPUTE_FEE
        )
        txn.update(
            reporting_category="dispute",
            description=f"Chargeback withdrawal for {charge['id']}",
        )
        txn["fee_details"][0]["description"] = "Dispute fee"
        dispute = self.s.add(
            {
                "id": dispute_id,
                "object": "dispute",
                "amount": amount,
                "balance_transactions": [txn],
                "charge": charge["id"],
                "created": now,
                "currency": charge["currency"],
                "enhanced_eligibility_types": [],
                "evidence": {},
                "evidence_details": {
                    "due_by": now + 21 * 86400,
                    "enhanced_eligibility": {},
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "payment_method_details": {
                    "card": {
                        "brand": "visa",
                        "case_type": "chargeback",
                        "network_reason_code": "10.4",
                    },
                    "type": "card",
                },
                "reason": reason,
                "status": "needs_response",
            }
        )
        charge["disputed"] = True
        self.s.emit("charge.dispute.created", dispute)
        self.s.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def close_dispute(self, dispute: dict, outcome: str) -> dict:
        """The card network decides: `won` gives the disputed amount back (the dispute fee stays
        with Stripe), `lost` keeps it withdrawn. Stripe emits charge.dispute.closed either way,
        and charge.dispute.funds_reinstated when won."""
        if outcome not in ("won", "lost"):
            raise StripeError("A dispute is won or lost.", param="status")
        if dispute["status"] in ("won", "lost"):
            raise StripeError(f"Dispute {dispute['id']} is closed already.", param="dispute")
        if outcome == "won":
            txn = self.o.balance_transaction(
                "adjustment", dispute["amount"], dispute["currency"], dispute["id"]
            )
            txn.update(
                reporting_category="dispute_reversal",
                description=f"Chargeback reversal for {dispute['charge']}",
            )
            dispute["balance_transactions"].append(txn)
        dispute["status"] = outcome
        if outcome == "won":
            self.s.emit("charge.dispute.funds_reinstated", dispute)
        self.s.emit("charge.dispute.closed", dispute)
        return dispute

    def fail_payout(self, payout: dict, code: str = "account_closed") -> dict:
        if payout["status"] != "paid":
            raise StripeError("Only a paid payout can fail here.", param="payout")
        txn = self.o.balance_transaction(
            "payout_failure", payout["amount"], payout["currency"], payout["id"]
        )
        payout.update(
            status="failed",
            failure_code=code,
            failure_message="The bank account has been closed.",
            failure_balance_transaction=txn["id"],
        )
        self.s.emit("payout.failed", payout)
        return payout
