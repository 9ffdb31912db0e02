"""Which parameters each route accepts, read from stripe-python's typed parameter definitions.

`stripe.params.*Params` are TypedDicts generated from Stripe's OpenAPI spec for the API version
the package pins (the one `billing/stripe_client.py` pins too), nested TypedDicts for nested
parameters. Walking them gives a faithful allow-list, so a typo such as `items[0][pricee]` is
refused with `parameter_unknown` as Stripe refuses it, instead of being ignored.

The sandbox is dev-only and `stripe` is a main dependency of the portal, so importing it here
costs nothing; the sandbox's own modules stay stdlib-only otherwise.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import sys
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .store import StripeError

# (method, route template) -> Params class, as `stripe.params.<name>`.
ROUTE_PARAMS = {
    ("POST", "/v1/customers"): "CustomerCreateParams",
    ("GET", "/v1/customers"): "CustomerListParams",
    ("GET", "/v1/customers/{id}"): "CustomerRetrieveParams",
    ("POST", "/v1/customers/{id}"): "CustomerUpdateParams",
    ("POST", "/v1/customers/{id}/tax_ids"): "CustomerTaxIdCreateParams",
    ("GET", "/v1/customers/{id}/tax_ids"): "CustomerTaxIdListParams",
    ("GET", "/v1/customers/{id}/payment_methods"): "CustomerPaymentMethodListParams",
    ("GET", "/v1/customers/{id}/payment_methods/{pm}"): "CustomerPaymentMethodRetrieveParams",
    ("GET", "/v1/customers/{id}/tax_ids/{tax_id}"): "CustomerTaxIdRetrieveParams",
    ("DELETE", "/v1/customers/{id}/tax_ids/{tax_id}"): "CustomerTaxIdDeleteParams",
    ("POST", "/v1/products"): "ProductCreateParams",
    ("GET", "/v1/products"): "ProductListParams",
    ("GET", "/v1/products/{id}"): "ProductRetrieveParams",
    ("POST", "/v1/products/{id}"): "ProductUpdateParams",
    ("POST", "/v1/prices"): "PriceCreateParams",
    ("GET", "/v1/prices"): "PriceListParams",
    ("GET", "/v1/prices/{id}"): "PriceRetrieveParams",
    ("POST", "/v1/prices/{id}"): "PriceUpdateParams",
    ("POST", "/v1/tax_rates"): "TaxRateCreateParams",
    ("GET", "/v1/tax_rates"): "TaxRateListParams",
    ("GET", "/v1/tax_rates/{id}"): "TaxRateRetrieveParams",
    ("POST", "/v1/checkout/sessions"): "checkout.SessionCreateParams",
    ("GET", "/v1/checkout/sessions"): "checkout.SessionListParams",
    ("GET", "/v1/checkout/sessions/{id}"): "checkout.SessionRetrieveParams",
    ("POST", "/v1/checkout/sessions/{id}/expire"): "checkout.SessionExpireParams",
    ("GET", "/v1/subscriptions"): "SubscriptionListParams",
    ("POST", "/v1/subscriptions"): "SubscriptionCreateParams",
    ("GET", "/v1/subscriptions/{id}"): "SubscriptionRetrieveParams",
    ("POST", "/v1/subscriptions/{id}"): "SubscriptionUpdateParams",
    ("DELETE", "/v1/subscriptions/{id}"): "SubscriptionCancelParams",
    ("GET", "/v1/invoices"): "InvoiceListParams",
    ("POST", "/v1/invoices/create_preview"): "InvoiceCreatePreviewParams",
    ("GET", "/v1/invoices/{id}"): "InvoiceRetrieveParams",
    ("GET", "/v1/invoices/{id}/lines"): "InvoiceListLinesParams",
    ("POST", "/v1/invoices/{id}/mark_uncollectible"): "InvoiceMarkUncollectibleParams",
    ("POST", "/v1/refunds"): "RefundCreateParams",
    ("GET", "/v1/refunds"): "RefundListParams",
    ("GET", "/v1/refunds/{id}"): "RefundRetrieveParams",
    ("POST", "/v1/credit_notes"): "CreditNoteCreateParams",
    ("GET", "/v1/credit_notes"): "CreditNoteListParams",
    ("GET", "/v1/credit_notes/{id}"): "CreditNoteRetrieveParams",
    ("POST", "/v1/credit_notes/{id}/void"): "CreditNoteVoidCreditNoteParams",
    ("POST", "/v1/billing_portal/sessions"): "billing_portal.SessionCreateParams",
    ("GET", "/v1/balance_transactions"): "BalanceTransactionListParams",
    ("GET", "/v1/balance_transactions/{id}"): "BalanceTransactionRetrieveParams",
    ("GET", "/v1/payouts"): "PayoutListParams",
    ("GET", "/v1/payouts/{id}"): "PayoutRetrieveParams",
    ("GET", "/v1/disputes"): "DisputeListParams",
    ("GET", "/v1/disputes/{id}"): "DisputeRetrieveParams",
    ("GET", "/v1/events"): "EventListParams",
    ("GET", "/v1/events/{id}"): "EventRetrieveParams",
    ("GET", "/v1/payment_intents/{id}"): "PaymentIntentRetrieveParams",
    ("GET", "/v1/charges/{id}"): "ChargeRetrieveParams",
    ("GET", "/v1/payment_methods"): "PaymentMethodListParams",
    ("GET", "/v1/payment_methods/{id}"): "PaymentMethodRetrieveParams",
}

ALWAYS_ALLOWED = {"expand"}
DOC_URL = "https://stripe.com/docs/error-codes/parameter-unknown"


class _Unresolved:
    """A name a params module imports only for type checkers: anything goes there."""

    def __class_getitem__(cls, item: Any) -> type:
        return cls


class _Names(dict):
    """A module's namespace in which a name it lacks at run time is `_Unresolved`."""

    def __missing__(self, name: str) -> Any:
        return getattr(builtins, name, _Unresolved)


def params_class(name: str) -> type:
    module = importlib.import_module("stripe.params")
    for part in name.split("."):
        module = getattr(module, part)
    return module  # type: ignore[return-value]


@functools.cache
def fields_of(cls: type) -> dict[str, Any]:
    """The TypedDict's fields and their types (NotRequired stripped, forward refs resolved)."""
    names = _Names(vars(sys.modules[cls.__module__]))
    return get_type_hints(cls, localns=names)


def _is_typed_dict(tp: Any) -> bool:
    # stripe builds them with typing_extensions, whose TypedDicts typing.is_typeddict misses.
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__")


def _shapes(tp: Any) -> tuple[list[type], list[Any], bool]:
    """What a type allows: (TypedDicts for a dict value, element types for a list value,
    whether a free-form dict such as metadata is allowed)."""
    dicts: list[type] = []
    lists: list[Any] = []
    free = False
    pending = [tp]
    while pending:
        t = pending.pop()
        origin = get_origin(t)
        if origin is Union:
            pending.extend(get_args(t))
        elif _is_typed_dict(t):
            dicts.append(t)
        elif origin in (list, typing.List):  # noqa: UP006 - the package spells it List
            lists.extend(get_args(t) or [Any])
        elif origin in (dict, typing.Dict) or t in (Any, _Unresolved):  # noqa: UP006
            free = True
        elif origin is Literal or isinstance(t, type) or t is None:
            continue
        else:  # UntypedStripeObject[...] and other generic mappings
            free = True
    return dicts, lists, free


def unknown_params(value: Any, tp: Any, prefix: str = "") -> list[str]:
    """Full bracket names (`items[0][pricee]`) of the keys in `value` that `tp` does not have."""
    dicts, lists, free = _shapes(tp)
    unknown: list[str] = []
    if isinstance(value, dict) and dicts and not free:
        known: dict[str, Any] = {}
        for cls in dicts:
            known.update(fields_of(cls))
        for key, child in value.items():
            name = f"{prefix}[{key}]" if prefix else key
            if key in known:
                unknown += unknown_params(child, known[key], name)
            elif not (not prefix and key in ALWAYS_ALLOWED):
                unknown.append(name)
    elif isinstance(value, list) and lists:
        for n, child in enumerate(value):
            element = Union[tuple(lists)] if len(lists) > 1 else lists[0]  # noqa: UP007
            unknown += unknown_params(child, element, f"{prefix}[{n}]")
    return unknown


def check(method: str, template: str, params: dict) -> None:
    """Refuse parameters the route's Params class does not define, as Stripe does."""
    name = ROUTE_PARAMS.get((method, template))
    if name is None:
        return
    unknown = unknown_params(params, params_class(name))
    if not unknown:
        return
    plural = "s" if len(unknown) > 1 else ""
    error = StripeError(
        f"Received unknown parameter{plural}: {', '.join(unknown)}",
        code="parameter_unknown",
        param=unknown[0],
    )
    error.body["doc_url"] = DOC_URL
    raise error
