"""The billing portal's card change, payouts, and the clock that makes due things happen."""

from __future__ import annotations

from .cards import (
    check_card,
)
from .objects import Objects
from .store import Store, missing
from .subscriptions import INCOMPLETE_HOURS


class Clock:
    s: Store
    o: Objects

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
        self.s.priv(pm["id"])["set_up"] = True  # the portal saves cards for later payments
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
            # Everything available is paid out (charges, refunds, dispute adjustments, failed
            # refunds), except payouts and their failures themselves.
            if (
                txn["type"] not in ("payout", "payout_failure")
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
                elif action == "pending_expire":
                    self.expire_pending_update(obj)
                elif action == "finalize":
                    self.finalize_renewal(obj)
                elif action == "settle":
                    self.settle_debit(obj)
                elif action == "incomplete_expire":
                    self.expire_incomplete(obj)
                elif action == "refund_settle":
                    self.settle_refund(obj)
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
            if sub["status"] == "incomplete":
                due.append((sub["created"] + INCOMPLETE_HOURS * 3600, 1, "incomplete_expire", sub))
            if sub["pending_update"]:
                due.append((sub["pending_update"]["expires_at"], 1, "pending_expire", sub))
        for invoice in self.s.all("invoice"):
            if invoice["status"] == "open" and invoice["next_payment_attempt"]:
                due.append((invoice["next_payment_attempt"], 1, "retry", invoice))
            if settles_at := self.s.priv(invoice["id"]).get("settles_at"):
                due.append((settles_at, 1, "settle", invoice))
            if invoice["status"] == "draft" and invoice["automatically_finalizes_at"]:
                due.append((invoice["automatically_finalizes_at"], 1, "finalize", invoice))
        for refund in self.s.all("refund"):
            if refund["status"] == "pending" and (
                at := self.s.priv(refund["id"]).get("settles_at")
            ):
                due.append((at, 1, "refund_settle", refund))
        for session in self.s.all("checkout.session"):
            if session["status"] == "open":
                due.append((session["expires_at"], 3, "expire", session))
        return min(due, key=lambda d: d[:2])
