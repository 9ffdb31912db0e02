"""Builders for the API's objects, in the shapes of the current API version ("basil" and later).

Each builder returns a full dict (fields the sandbox does not model are null or empty) and
stores it; nothing here emits events or decides business rules (that is `billing.py`).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .invoice_objects import InvoiceObjects
from .store import Store, lst

__all__ = ["Objects", "lst"]

EMPTY_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_months(ts: int, months: int) -> int:
    """`ts` moved by calendar months, the day clamped to the month's length (31 Jan → 28 Feb)."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return int(d.replace(year=year, month=month, day=min(d.day, last_day)).timestamp())


def address(value: Any) -> dict:
    out = dict(EMPTY_ADDRESS)
    if isinstance(value, dict):
        out.update({k: v or None for k, v in value.items() if k in EMPTY_ADDRESS})
    return out


def as_bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def as_int(value: Any, param: str) -> int:
    from .store import StripeError

    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(
            f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
        ) from None


class Objects(InvoiceObjects):
    def __init__(self, store: Store, public_url: str):
        self.s = store
        self.public_url = public_url

    def _base(self, kind: str, prefix: str, **fields: Any) -> dict:
        obj = {
            "id": self.s.new_id(prefix),
            "object": kind,
            "created": self.s.now(),
            "livemode": False,
        }
        obj.update(fields)
        return obj

    # -- catalogue -----------------------------------------------------------------------

    def customer(self, p: dict) -> dict:
        self.s.customer_seq += 1
        return self.s.add(
            self._base(
                "customer",
                "cus_",
                address=address(p.get("address")) if p.get("address") else None,
                balance=0,
                currency=None,
                default_source=None,
                delinquent=False,
                description=p.get("description"),
                discount=None,
                email=p.get("email"),
                invoice_prefix=f"SBX{self.s.customer_seq}",
                invoice_settings={
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                metadata=dict(p.get("metadata") or {}),
                name=p.get("name"),
                next_invoice_sequence=1,
                phone=p.get("phone"),
                preferred_locales=list(p.get("preferred_locales") or []),
                shipping=None,
                tax_exempt=p.get("tax_exempt") or "none",
                test_clock=None,
                customer_account=None,
            )
        )

    def product(self, p: dict) -> dict:
        now = self.s.now()
        return self.s.add(
            self._base(
                "product",
                "prod_",
                active=as_bool(p.get("active", True)),
                default_price=None,
                description=p.get("description"),
                images=list(p.get("images") or []),
                marketing_features=[],
                metadata=dict(p.get("metadata") or {}),
                name=p["name"],
                package_dimensions=None,
                shippable=None,
                statement_descriptor=None,
                tax_code=p.get("tax_code"),
                type="service",
                unit_label=p.get("unit_label"),
                updated=now,
                url=None,
            )
        )

    def price(self, p: dict, product_id: str, unit_amount: int) -> dict:
        recurring = None
        if isinstance(p.get("recurring"), dict):
            r = p["recurring"]
            recurring = {
                "interval": r.get("interval", "month"),
                "interval_count": int(r.get("interval_count", 1)),
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        return self.s.add(
            self._base(
                "price",
                "price_",
                active=as_bool(p.get("active", True)),
                billing_scheme="per_unit",
                currency=str(p["currency"]).lower(),
                custom_unit_amount=None,
                lookup_key=p.get("lookup_key"),
                metadata=dict(p.get("metadata") or {}),
                nickname=p.get("nickname"),
                product=product_id,
                recurring=recurring,
                tax_behavior=p.get("tax_behavior") or "unspecified",
                tiers_mode=None,
                transform_quantity=None,
                type="recurring" if recurring else "one_time",
                unit_amount=unit_amount,
                unit_amount_decimal=str(unit_amount),
            )
        )

    def tax_rate(self, p: dict) -> dict:
        percentage = Decimal(str(p["percentage"]))
        return self.s.add(
            self._base(
                "tax_rate",
                "txr_",
                active=as_bool(p.get("active", True)),
                country=p.get("country"),
                description=p.get("description"),
                display_name=p["display_name"],
                effective_percentage=float(percentage),
                flat_amount=None,
                inclusive=as_bool(p["inclusive"]),
                jurisdiction=p.get("jurisdiction"),
                jurisdiction_level=None,
                metadata=dict(p.get("metadata") or {}),
                percentage=float(percentage),
                rate_type="percentage",
                state=p.get("state"),
                tax_type=p.get("tax_type") or "vat",
            )
        )

    # -- payments ------------------------------------------------------------------------

    def payment_method(self, customer: dict, number: str, name: str | None, expiry: tuple) -> dict:
        pm = self._base(
            "payment_method",
            "pm_",
            allow_redisplay="always",
            billing_details={
                "address": customer.get("address") or dict(EMPTY_ADDRESS),
                "email": customer.get("email"),
                "name": name or customer.get("name"),
                "phone": None,
                "tax_id": None,
            },
            card={
                "brand": "visa",
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": "visa",
                "exp_month": expiry[0],
                "exp_year": expiry[1],
                "fingerprint": "sbx" + number[-8:],
                "funding": "credit",
                "generated_from": None,
                "last4": number[-4:],
                "networks": {"available": ["visa"], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            customer=customer["id"],
            customer_account=None,
            metadata={},
            type="card",
        )
        self.s.priv(pm["id"])["number"] = number
        return self.s.add(pm)

    def sepa_payment_method(self, customer: dict, iban: str, name: str | None) -> dict:
        pm = self._base(
            "payment_method",
            "pm_",
            allow_redisplay="always",
            billing_details={
                "address": customer.get("address") or dict(EMPTY_ADDRESS),
                "email": customer.get("email"),
                "name": name or customer.get("name"),
                "phone": None,
                "tax_id": None,
            },
            customer=customer["id"],
            customer_account=None,
            metadata={},
            sepa_debit={
                "bank_code": iban[4:12],
                "branch_code": "",
                "country": iban[:2],
                "fingerprint": "sbx" + iban[-8:],
                "generated_from": {"charge": None, "setup_attempt": None},
                "last4": iban[-4:],
            },
            type="sepa_debit",
        )
        self.s.priv(pm["id"]).update(iban=iban, set_up=True)  # the mandate allows later debits
        return self.s.add(pm)

    def payment_intent(self, invoice: dict, pm_id: str | None) -> dict:
        pi = self._base(
            "payment_intent",
            "pi_",
            amount=invoice["amount_due"],
            amount_capturable=0,
            amount_details={"tip": {}},
            amount_received=0,
            application=None,
            application_fee_amount=None,
            automatic_payment_methods=None,
            canceled_at=None,
            cancellation_reason=None,
            capture_method="automatic",
            confirmation_method="automatic",
            currency=invoice["currency"],
            customer=invoice["customer"],
            customer_account=None,
            description="Subscription creation"
            if invoice["billing_reason"] == "subscription_create"
            else "Subscription update",
            excluded_payment_method_types=None,
            last_payment_error=None,
            latest_charge=None,
            managed_payments=None,
            metadata={},
            next_action=None,
            on_behalf_of=None,
            payment_method=pm_id,
            payment_method_configuration_details=None,
            payment_method_options={"card": {"request_three_d_secure": "automatic"}},
            payment_method_types=["card"],
            processing=None,
            receipt_email=None,
            review=None,
            setup_future_usage=None,
            shipping=None,
            source=None,
            statement_descriptor=None,
            statement_descriptor_suffix=None,
            status="requires_confirmation",
            transfer_data=None,
            transfer_group=None,
        )
        pi["client_secret"] = f"{pi['id']}_secret_{self.s.new_id('', 16)}"
        return self.s.add(pi)

    def charge(self, pi: dict, pm: dict | None, ok: bool, failure: tuple | None) -> dict:
        card = (pm or {}).get("card") or {}
        ch = self._base(
            "charge",
            "ch_",
            amount=pi["amount"],
            amount_captured=pi["amount"] if ok else 0,
            amount_refunded=0,
            application=None,
            application_fee=None,
            application_fee_amount=None,
            balance_transaction=None,
            billing_details=(pm or {}).get("billing_details"),
            calculated_statement_descriptor="SANDBOX",
            captured=ok,
            currency=pi["currency"],
            customer=pi["customer"],
            description=pi["description"],
            disputed=False,
            failure_balance_transaction=None,
            failure_code=failure[0] if failure else None,
            failure_message=failure[1] if failure else None,
            fraud_details={},
            metadata={},
            on_behalf_of=None,
            outcome={
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network" if ok else "declined_by_network",
                "reason": None if ok else "generic_decline",
                "risk_level": "normal",
                "seller_message": "Payment complete."
                if ok
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if ok else "issuer_declined",
            },
            paid=ok,
            payment_intent=pi["id"],
            payment_method=(pm or {}).get("id"),
            payment_method_details={
                "card": {
                    "brand": card.get("brand"),
                    "country": card.get("country"),
                    "exp_month": card.get("exp_month"),
                    "exp_year": card.get("exp_year"),
                    "fingerprint": card.get("fingerprint"),
                    "funding": card.get("funding"),
                    "last4": card.get("last4"),
                    "network": card.get("brand"),
                },
                "type": "card",
            },
            receipt_email=None,
            receipt_number=None,
            receipt_url=None,
            refunded=False,
            review=None,
            shipping=None,
            source=None,
            source_transfer=None,
            statement_descriptor=None,
            statement_descriptor_suffix=None,
            status="succeeded" if ok else "failed",
            transfer_data=None,
            transfer_group=None,
        )
        ch["refunds"] = lst(f"/v1/charges/{ch['id']}/refunds", [])
        return self.s.add(ch)

    def balance_transaction(
        self, kind: str, amount: int, currency: str, source: str, fee: int = 0, days: int = 0
    ) -> dict:
        now = self.s.now()
        descriptions = {"charge": "Subscription payment", "refund": "REFUND FOR CHARGE"}
        return self.s.add(
            self._base(
                "balance_transaction",
                "txn_",
                amount=amount,
                available_on=now + days * 86400,
                balance_type="payments",
                currency=currency,
                description=descriptions.get(kind, "STRIPE PAYOUT"),
                exchange_rate=None,
                fee=fee,
                fee_details=[
                    {
                        "amount": fee,
                        "application": None,
                        "currency": currency,
                        "description": "Stripe processing fees",
                        "type": "stripe_fee",
                    }
                ]
                if fee
                else [],
                net=amount - fee,
                reporting_category=kind,
                source=source,
                status="pending" if days else "available",
                type=kind,
            )
        )

    def refund(self, charge: dict, amount: int, p: dict) -> dict:
        return self.s.add(
            self._base(
                "refund",
                "re_",
                amount=amount,
                balance_transaction=None,
                charge=charge["id"],
                currency=charge["currency"],
                customer=charge["customer"],
                customer_account=None,
                description=None,
                destination_details={
                    "card": {
                        "reference": None,
                        "reference_status": "pending",
                        "reference_type": "acquirer_reference_number",
                        "type": "refund",
                    },
                    "type": "card",
                },
                metadata=dict(p.get("metadata") or {}),
                payment_intent=charge["payment_intent"],
                payment_method=charge["payment_method"],
                reason=p.get("reason"),
                receipt_number=None,
                source_transfer_reversal=None,
                status="succeeded",
                transfer_reversal=None,
            )
        )

    def payout(self, amount: int, currency: str) -> dict:
        now = self.s.now()
        return self.s.add(
            self._base(
                "payout",
                "po_",
                amount=amount,
                application_fee=None,
                application_fee_amount=None,
                arrival_date=(now // 86400 + 1) * 86400,
                automatic=True,
                balance_transaction=None,
                currency=currency,
                description="STRIPE PAYOUT",
                destination="ba_sandbox000000000000000000",
                failure_balance_transaction=None,
                failure_code=None,
                failure_message=None,
                metadata={},
                method="standard",
                original_payout=None,
                payout_method=None,
                reconciliation_status="completed",
                reversed_by=None,
                source_type="card",
                statement_descriptor=None,
                status="paid",
                trace_id={"status": "supported", "value": None},
                type="bank_account",
            )
        )
