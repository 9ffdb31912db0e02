"""Customer tax IDs: `/v1/customers/{id}/tax_ids` (create, list, retrieve, delete) and
`tax_id_data` when a customer is created.

As Stripe does: the type must be one Stripe knows, an `eu_vat` value must have the shape of its
member state's number (prefix included; Stripe checks the format, VIES the registration) or the
request fails with `tax_id_invalid`; `customer.tax_ids` is left out unless expanded; an invoice
copies the customer's tax IDs (`customer_tax_ids`, type and value) until it is finalized.
Verification (Stripe asks VIES in the background) stays `pending`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal, get_args, get_origin

from .params import fields_of, params_class
from .store import Store, StripeError, lst, missing, no_such

# Stripe's format check for eu_vat: the prefix (EL for Greece, XI for Northern Ireland) and the
# shape of what follows it, per member state.
EU_VAT_FORMATS = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"\d{2,10}",
    "SE": r"\d{12}",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
    "XI": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
}
_COUNTRY_OF_PREFIX = {"EL": "GR", "XI": "GB"}
MAX_PER_CUSTOMER = 25


@functools.cache
def known_types() -> frozenset[str]:
    """The tax ID types of the API version stripe-python pins (its create parameters' Literal)."""
    hint = fields_of(params_class("CustomerTaxIdCreateParams"))["type"]
    pending, found = [hint], set()
    while pending:
        tp = pending.pop()
        if get_origin(tp) is Literal:
            found.update(get_args(tp))
        else:
            pending.extend(get_args(tp))
    return frozenset(found)


def check(tax_type: Any, value: Any, param: str = "") -> tuple[str, str]:
    """The (type, value) Stripe would store, or the error it would give."""
    name = (lambda field: f"{param}[{field}]") if param else (lambda field: field)
    if not tax_type:
        raise missing(name("type"))
    if not value:
        raise missing(name("value"))
    if tax_type not in known_types():
        raise StripeError(
            f"Invalid {name('type')}: must be one of {', '.join(sorted(known_types()))}",
            param=name("type"),
        )
    value = str(value).strip()
    if tax_type == "eu_vat":
        pattern = EU_VAT_FORMATS.get(value[:2].upper())
        if pattern is None or not re.fullmatch(pattern, value[2:].upper()):
            raise StripeError(
                "Invalid value for eu_vat.", code="tax_id_invalid", param=name("value")
            )
    return tax_type, value


def invoice_tax_ids(customer: dict) -> list[dict]:
    """What an invoice keeps of the customer's tax IDs."""
    return [
        {"type": tax_id["type"], "value": tax_id["value"]}
        for tax_id in (customer.get("tax_ids") or {}).get("data") or []
    ]


class TaxIds:
    def __init__(self, store: Store):
        self.s = store

    def held(self, customer: dict) -> list[dict]:
        if not customer.get("tax_ids"):
            customer["tax_ids"] = lst(f"/v1/customers/{customer['id']}/tax_ids", [])
        return customer["tax_ids"]["data"]

    def add(self, customer: dict, tax_type: str, value: str) -> dict:
        """Store a checked tax ID on the customer."""
        held = self.held(customer)
        if len(held) >= MAX_PER_CUSTOMER:
            raise StripeError(
                f"A customer can have at most {MAX_PER_CUSTOMER} tax IDs.", param="value"
            )
        prefix = value[:2].upper()
        tax_id = {
            "id": self.s.new_id("txi_"),
            "object": "tax_id",
            "country": _COUNTRY_OF_PREFIX.get(prefix, prefix) if tax_type == "eu_vat" else None,
            "created": self.s.now(),
            "customer": customer["id"],
            "customer_account": None,
            "livemode": False,
            "owner": {"customer": customer["id"], "customer_account": None, "type": "customer"},
            "type": tax_type,
            "value": value,
            "verification": {"status": "pending", "verified_address": None, "verified_name": None}
            if tax_type == "eu_vat"
            else None,
        }
        held.append(tax_id)
        return self.s.add(tax_id)

    def create(self, customer: dict, p: dict) -> dict:
        return self.add(customer, *check(p.get("type"), p.get("value")))

    def get(self, customer: dict, tax_id: str) -> dict:
        for held in self.held(customer):
            if held["id"] == tax_id:
                return held
        raise no_such("tax_id", tax_id)

    def delete(self, customer: dict, tax_id: str) -> dict:
        held = self.get(customer, tax_id)
        self.held(customer).remove(held)
        self.s.objects.pop(tax_id, None)
        ids = self.s.by_type.get("tax_id", [])
        if tax_id in ids:
            ids.remove(tax_id)
        return {"id": tax_id, "object": "tax_id", "deleted": True}

    def listing(self, customer: dict) -> list[dict]:
        """Newest first, as Stripe lists them."""
        return list(reversed(self.held(customer)))
