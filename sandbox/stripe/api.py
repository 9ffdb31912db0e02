"""The /v1 API: form-parameter decoding, routes, list pagination, `expand[]`.

`Api.handle(method, path, params)` returns (status, body); errors are raised as StripeError
and turned into Stripe's error objects by the server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .billing import Billing
from .objects import as_bool, as_int
from .params import check as check_params
from .store import Store, StripeError, missing, no_such
from .subscription_create import PaymentMethods
from .tax_ids import TaxIds
from .tax_ids import check as check_tax_id

# -- parameters ------------------------------------------------------------------------


def decode_params(query: str) -> dict:
    """`a[b][0][c]=1&e[]=x` → {"a": {"b": [{"c": "1"}]}, "e": ["x"]}."""
    root: dict = {}
    counters: dict[tuple, int] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        path = _split(key)
        node = root
        for depth, part in enumerate(path):
            if part == "":  # "[]": the next free index
                prefix = tuple(path[:depth])
                part = str(counters.get(prefix, 0))
                counters[prefix] = int(part) + 1
                path[depth] = part
            if depth == len(path) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise StripeError(f"Invalid parameter: {key}", param=key)
    return _listify(root)


def _split(key: str) -> list[str]:
    head = key.split("[", 1)[0]
    return [head, *re.findall(r"\[([^\]]*)\]", key[len(head) :])]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


# -- the API ---------------------------------------------------------------------------

Route = tuple[str, str, re.Pattern, Callable[..., Any]]


class Api:
    def __init__(self, store: Store, billing: Billing):
        self.s = store
        self.b = billing
        self.tax_ids = TaxIds(store)
        self.payment_methods = PaymentMethods(store)  # its routes: add_routes, below
        self.routes: list[Route] = []
        r = self._route
        r("POST", "/v1/customers", self.create_customer)
        r("GET", "/v1/customers", self.list_of("customer", email="email"))
        r("GET", "/v1/customers/{id}", self.getter("customer"))
        r("POST", "/v1/customers/{id}", self.update_customer)
        r("POST", "/v1/customers/{id}/tax_ids", self.create_tax_id)
        r("GET", "/v1/customers/{id}/tax_ids", self.list_tax_ids)
        r("GET", "/v1/customers/{id}/tax_ids/{tax_id}", self.get_tax_id)
        r("DELETE", "/v1/customers/{id}/tax_ids/{tax_id}", self.delete_tax_id)
        r("POST", "/v1/products", self.create_product)
        r("GET", "/v1/products", self.list_of("product", active="active"))
        r("GET", "/v1/products/{id}", self.getter("product"))
        r("POST", "/v1/products/{id}", self.update_product)
        r("POST", "/v1/prices", self.create_price)
        r(
            "GET",
            "/v1/prices",
            self.list_of("price", product="product", active="active", lookup_keys="lookup_key"),
        )
        r("GET", "/v1/prices/{id}", self.getter("price"))
        r("POST", "/v1/prices/{id}", self.update_price)
        r("POST", "/v1/tax_rates", self.create_tax_rate)
        r("GET", "/v1/tax_rates", self.list_of("tax_rate", active="active"))
        r("GET", "/v1/tax_rates/{id}", self.getter("tax_rate"))
        r("POST", "/v1/checkout/sessions", lambda p: self.b.create_checkout_session(p))
        r(
            "GET",
            "/v1/checkout/sessions",
            self.list_of("checkout.session", customer="customer", subscription="subscription"),
        )
        r("GET", "/v1/checkout/sessions/{id}", self.get_session)
        r(
            "POST",
            "/v1/checkout/sessions/{id}/expire",
            lambda p, id: self.b.expire(self.s.get(id, "checkout.session")),
        )
        r("GET", "/v1/subscriptions", self.list_subscriptions)
        r("POST", "/v1/subscriptions", lambda p: self.b.create_subscription(p))
        r("GET", "/v1/subscriptions/{id}", self.getter("subscription"))
        r(
            "POST",
            "/v1/subscriptions/{id}",
            lambda p, id: self.b.update_subscription(self.s.get(id, "subscription"), p),
        )
        r(
            "DELETE",
            "/v1/subscriptions/{id}",
            lambda p, id: self.b.cancel(self.s.get(id, "subscription")),
        )
        r(
            "GET",
            "/v1/invoices",
            self.list_of(
                "invoice",
                customer="customer",
                status="status",
                subscription=self.invoice_subscription,
            ),
        )
        r("POST", "/v1/invoices/create_preview", lambda p: self.b.preview(p))
        r("GET", "/v1/invoices/{id}", self.getter("invoice"))
        r("GET", "/v1/invoices/{id}/lines", self.invoice_lines)
        r(
            "POST",
            "/v1/invoices/{id}/mark_uncollectible",
            lambda p, id: self.b.mark_uncollectible(self.s.get(id, "invoice")),
        )
        r("POST", "/v1/refunds", lambda p: self.b.refund(p))
        r(
            "GET",
            "/v1/refunds",
            self.list_of("refund", charge="charge", payment_intent="payment_intent"),
        )
        r("GET", "/v1/refunds/{id}", self.getter("refund"))
        r("POST", "/v1/credit_notes", lambda p: self.b.credit_note(p))
        r(
            "GET",
            "/v1/credit_notes",
            self.list_of("credit_note", invoice="invoice", customer="customer"),
        )
        r("GET", "/v1/credit_notes/{id}", self.getter("credit_note"))
        r(
            "POST",
            "/v1/credit_notes/{id}/void",
            lambda p, id: self.b.void_credit_note(self.s.get(id, "credit_note")),
        )
        r("POST", "/v1/billing_portal/sessions", lambda p: self.b.portal_session(p))
        r("GET", "/v1/balance_transactions", self.list_balance_transactions)
        r("GET", "/v1/balance_transactions/{id}", self.getter("balance_transaction"))
        r("GET", "/v1/payouts", self.list_of("payout", status="status"))
        r("GET", "/v1/payouts/{id}", self.getter("payout"))
        r(
            "GET",
            "/v1/disputes",
            self.list_of("dispute", charge="charge", payment_intent="payment_intent"),
        )
        r("GET", "/v1/disputes/{id}", self.getter("dispute"))
        r("GET", "/v1/events", self.list_of("event", type="type"))
        r("GET", "/v1/events/{id}", self.getter("event"))
        r("GET", "/v1/payment_intents/{id}", self.getter("payment_intent"))
        r("GET", "/v1/charges/{id}", self.getter("charge"))
        r("GET", "/v1/payment_methods/{id}", self.getter("payment_method"))
        self.payment_methods.add_routes(self)

    def _route(self, method: str, template: str, handler: Callable[..., Any]) -> None:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
        self.routes.append((method, template, pattern, handler))

    def handle(self, method: str, path: str, params: dict) -> tuple[int, Any]:
        known_path = False
        for route_method, template, pattern, handler in self.routes:
            match = pattern.match(path)
            if not match:
                continue
            known_path = True
            if route_method != method:
                continue
            check_params(method, template, params)
            with self.s.lock:
                result = handler(params, **match.groupdict())
                result = copy.deepcopy(result)
                expand = params.get("expand") or []
                expand = expand if isinstance(expand, list) else [expand]
                for dotted in expand:
                    self.expand(result, dotted.split("."))
                self.hide_includable(result, expand)
            return 200, result
        raise StripeError(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            status=405 if known_path else 404,
        )

    # Fields Stripe leaves out unless asked for with expand[] (basil and later).
    INCLUDABLE = {"invoice": ("payments",), "customer": ("tax_ids",)}

    def hide_includable(self, result: Any, expand: list[str]) -> None:
        objects = result.get("data", []) if result.get("object") == "list" else [result]
        prefix = "data." if result.get("object") == "list" else ""
        for obj in objects:
            for field in self.INCLUDABLE.get(obj.get("object"), ()):
                if prefix + field not in expand:
                    obj.pop(field, None)

    def expand(self, node: Any, parts: list[str]) -> None:
        if isinstance(node, list):
            for child in node:
                self.expand(child, parts)
            return
        if not isinstance(node, dict) or parts[0] not in node:
            return
        value = node[parts[0]]
        target = self.s.find(value)
        if target is not None:
            node[parts[0]] = value = copy.deepcopy(target)
        if len(parts) > 1:
            self.expand(value, parts[1:])

    # -- generic handlers ----------------------------------------------------------------

    def getter(self, kind: str) -> Callable[..., dict]:
        def get(p: dict, id: str) -> dict:
            obj = self.s.get(id, kind)
            if kind == "balance_transaction":
                self._settle()
            return obj

        return get

    def list_of(self, kind: str, **filters: Any) -> Callable[..., dict]:
        def handler(p: dict) -> dict:
            objects = self.s.all(kind)
            for param, field in filters.items():
                if param not in p:
                    continue
                wanted = p[param]
                if callable(field):
                    objects = [o for o in objects if field(o) == wanted]
                elif isinstance(wanted, list):
                    objects = [o for o in objects if o.get(field) in wanted]
                elif param == "active":
                    objects = [o for o in objects if o.get(field) == as_bool(wanted)]
                else:
                    objects = [o for o in objects if o.get(field) == wanted]
            return self.page(p, objects, "/v1/" + kind.replace(".", "/") + "s")

        return handler

    @staticmethod
    def invoice_subscription(invoice: dict) -> str | None:
        return ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")

    def page(self, p: dict, objects: list[dict], url: str) -> dict:
        limit = as_int(p.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise StripeError(
                "This value must be greater than or equal to 1 and less than or equal to 100.",
                param="limit",
            )
        created = p.get("created")
        if isinstance(created, dict):
            ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
            for op, bound in created.items():
                if op in ops:
                    b = as_int(bound, f"created[{op}]")
                    objects = [o for o in objects if ops[op](o["created"], b)]
        elif created is not None:
            objects = [o for o in objects if o["created"] == as_int(created, "created")]
        if p.get("starting_after"):
            ids = [o["id"] for o in objects]
            if p["starting_after"] not in ids:
                raise no_such("object", p["starting_after"], "starting_after")
            objects = objects[ids.index(p["starting_after"]) + 1 :]
        elif p.get("ending_before"):
            ids = [o["id"] for o in objects]
            if p["ending_before"] not in ids:
                raise no_such("object", p["ending_before"], "ending_before")
            objects = objects[: ids.index(p["ending_before"])][-limit:]
        return {
            "object": "list",
            "data": objects[:limit],
            "has_more": len(objects) > limit,
            "url": url,
        }

    # -- specific handlers ---------------------------------------------------------------

    def create_customer(self, p: dict) -> dict:
        self._check_tax_exempt(p)
        entries = p.get("tax_id_data") or []
        tax_ids = [
            check_tax_id(entry.get("type"), entry.get("value"), f"tax_id_data[{n}]")
            for n, entry in enumerate(entries if isinstance(entries, list) else [entries])
            if isinstance(entry, dict)
        ]
        customer = self.b.o.customer(p)
        self.tax_ids.held(customer)  # an empty list until one is added, as Stripe shows it
        for tax_type, value in tax_ids:
            self.tax_ids.add(customer, tax_type, value)
        return customer

    def create_tax_id(self, p: dict, id: str) -> dict:
        return self.tax_ids.create(self.s.get(id, "customer"), p)

    def list_tax_ids(self, p: dict, id: str) -> dict:
        customer = self.s.get(id, "customer")
        return self.page(p, self.tax_ids.listing(customer), f"/v1/customers/{id}/tax_ids")

    def get_tax_id(self, p: dict, id: str, tax_id: str) -> dict:
        return self.tax_ids.get(self.s.get(id, "customer"), tax_id)

    def delete_tax_id(self, p: dict, id: str, tax_id: str) -> dict:
        return self.tax_ids.delete(self.s.get(id, "customer"), tax_id)

    @staticmethod
    def _check_tax_exempt(p: dict) -> None:
        if p.get("tax_exempt") not in (None, "none", "exempt", "reverse"):
            raise StripeError(
                "Invalid tax_exempt: must be one of none, exempt, or reverse",
                param="tax_exempt",
            )

    def update_customer(self, p: dict, id: str) -> dict:
        customer = self.s.get(id, "customer")
        self._check_tax_exempt(p)
        for key in ("email", "name", "phone", "description", "tax_exempt"):
            if key in p:
                customer[key] = p[key] or None
        if customer["tax_exempt"] is None:
            customer["tax_exempt"] = "none"
        if "address" in p:
            from .objects import address

            customer["address"] = address(p["address"]) if p["address"] else None
        if "preferred_locales" in p:
            customer["preferred_locales"] = list(p["preferred_locales"] or [])
        if "metadata" in p:
            self._merge_metadata(customer, p["metadata"])
        settings = p.get("invoice_settings") or {}
        if settings.get("default_payment_method"):
            customer["invoice_settings"]["default_payment_method"] = self.s.get(
                settings["default_payment_method"],
                "payment_method",
                "invoice_settings[default_payment_method]",
            )["id"]
        return customer

    @staticmethod
    def _merge_metadata(obj: dict, metadata: Any) -> None:
        merged = dict(obj["metadata"])
        for key, value in (metadata or {}).items():
            if value in ("", None):
                merged.pop(key, None)
            else:
                merged[key] = value
        obj["metadata"] = merged

    def create_product(self, p: dict) -> dict:
        if not p.get("name"):
            raise missing("name")
        return self.b.o.product(p)

    def update_product(self, p: dict, id: str) -> dict:
        product = self.s.get(id, "product")
        for key in ("name", "description", "tax_code", "unit_label"):
            if key in p:
                product[key] = p[key] or None
        if "active" in p:
            product["active"] = as_bool(p["active"])
        if "default_price" in p:
            product["default_price"] = self.s.get(p["default_price"], "price", "default_price")[
                "id"
            ]
        if "metadata" in p:
            self._merge_metadata(product, p["metadata"])
        product["updated"] = self.s.now()
        return product

    def create_price(self, p: dict) -> dict:
        if not p.get("currency"):
            raise missing("currency")
        if p.get("product"):
            product = self.s.get(p["product"], "product", "product")
        elif isinstance(p.get("product_data"), dict):
            if not p["product_data"].get("name"):
                raise missing("product_data[name]")
            product = self.b.o.product(p["product_data"])
        else:
            raise missing("product")
        if p.get("unit_amount") is None:
            raise missing("unit_amount")
        amount = as_int(p["unit_amount"], "unit_amount")
        if amount < 0:
            raise StripeError("Invalid unit_amount: must be at least 0", param="unit_amount")
        if p.get("tax_behavior") not in (None, "inclusive", "exclusive", "unspecified"):
            raise StripeError("Invalid tax_behavior", param="tax_behavior")
        if p.get("lookup_key"):
            self._take_lookup_key(p["lookup_key"], as_bool(p.get("transfer_lookup_key")))
        price = self.b.o.price(p, product["id"], amount)
        if product["default_price"] is None:
            product["default_price"] = price["id"]
        return price

    def _take_lookup_key(self, key: str, transfer: bool) -> None:
        for other in self.s.all("price"):
            if other["lookup_key"] == key:
                if not transfer:
                    raise StripeError(
                        f"A price (`{other['id']}`) already uses that lookup key.",
                        param="lookup_key",
                    )
                other["lookup_key"] = None

    def update_price(self, p: dict, id: str) -> dict:
        price = self.s.get(id, "price")
        if "active" in p:
            price["active"] = as_bool(p["active"])
        if "nickname" in p:
            price["nickname"] = p["nickname"] or None
        if "lookup_key" in p:
            if p["lookup_key"]:
                self._take_lookup_key(p["lookup_key"], as_bool(p.get("transfer_lookup_key")))
            price["lookup_key"] = p["lookup_key"] or None
        if "tax_behavior" in p:
            if price["tax_behavior"] != "unspecified":
                raise StripeError(
                    "tax_behavior cannot be changed once set to inclusive or exclusive.",
                    param="tax_behavior",
                )
            price["tax_behavior"] = p["tax_behavior"]
        if "metadata" in p:
            self._merge_metadata(price, p["metadata"])
        return price

    def create_tax_rate(self, p: dict) -> dict:
        for key in ("display_name", "percentage", "inclusive"):
            if p.get(key) in (None, ""):
                raise missing(key)
        try:
            float(p["percentage"])
        except ValueError:
            raise StripeError("Invalid decimal: " + p["percentage"], param="percentage") from None
        return self.b.o.tax_rate(p)

    def get_session(self, p: dict, id: str) -> dict:
        session = self.s.get(id, "checkout.session")
        self.b.expire_if_due(session)
        return session

    def list_subscriptions(self, p: dict) -> dict:
        subs = self.s.all("subscription")
        if p.get("customer"):
            subs = [s for s in subs if s["customer"] == p["customer"]]
        status = p.get("status")
        if status and status != "all":
            subs = [s for s in subs if s["status"] == status]
        elif not status:
            subs = [s for s in subs if s["status"] != "canceled"]
        if p.get("price"):
            subs = [
                s for s in subs if any(i["price"]["id"] == p["price"] for i in s["items"]["data"])
            ]
        return self.page(p, subs, "/v1/subscriptions")

    def invoice_lines(self, p: dict, id: str) -> dict:
        invoice = self.s.get(id, "invoice")
        return self.page(p, invoice["lines"]["data"], invoice["lines"]["url"])

    def _settle(self) -> None:
        now = self.s.now()
        for txn in self.s.all("balance_transaction"):
            if txn["status"] == "pending" and txn["available_on"] <= now:
                txn["status"] = "available"

    def list_balance_transactions(self, p: dict) -> dict:
        self._settle()
        txns = self.s.all("balance_transaction")
        if p.get("payout"):
            self.s.get(p["payout"], "payout", "payout")
            txns = [t for t in txns if self.s.priv(t["id"]).get("payout") == p["payout"]]
        if p.get("type"):
            txns = [t for t in txns if t["type"] == p["type"]]
        if p.get("source"):
            txns = [t for t in txns if t["source"] == p["source"]]
        if p.get("currency"):
            txns = [t for t in txns if t["currency"] == p["currency"]]
        return self.page(p, txns, "/v1/balance_transactions")
