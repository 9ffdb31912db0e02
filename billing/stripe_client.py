"""The one door to Stripe: the only module that imports `stripe`.

Everything returns plain dicts (Stripe's JSON), so no other module depends on the package's
types. `STRIPE_API_BASE` points the same code at another address (the sandbox in development
and tests); unset, it talks to api.stripe.com. The API version is pinned: webhook payloads and
objects have the shapes of that version.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"


class StripeError(Exception):
    """Stripe refused or could not be reached; `message` is safe to show a customer.
    `card`: the card was refused (402; `code` says why: `card_declined`,
    `invoice_payment_intent_requires_action` ...), a definite answer, unlike `transient`."""

    def __init__(
        self, message: str, *, code: str = "", transient: bool = False, card: bool = False
    ):
        super().__init__(message)
        self.code = code
        self.transient = transient
        self.card = card


class SignatureError(StripeError):
    """A webhook whose signature or timestamp does not check out."""


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeError("Payments are not configured (STRIPE_SECRET_KEY is empty).")
    bases = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=API_VERSION,
        base_addresses=bases,
        max_network_retries=2,
    )


def _plain(obj: Any) -> Any:
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def _call(what: str, fn, *args, **kwargs) -> dict:
    try:
        return _plain(fn(*args, **kwargs))
    except stripe.CardError as error:
        raise StripeError(
            error.user_message or "The card was declined.",
            code=error.code or "card_declined",
            card=True,
        ) from error
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        logger.warning("stripe %s: unreachable or busy: %s", what, error)
        raise StripeError(
            "The payment service is not reachable right now; please try again in a minute.",
            transient=True,
        ) from error
    except stripe.StripeError as error:
        raise _refused(what, error) from error


def _refused(what: str, error: stripe.StripeError) -> StripeError:
    status = getattr(error, "http_status", None) or 0
    if status == 409:
        # The same idempotency key is still running at Stripe (a request sent twice at once),
        # still so after the client's retries: its answer comes with the next try.
        logger.info("stripe %s: the same request is still running", what)
        return StripeError(
            "The payment service is still working on this request; please try again in a minute.",
            code="idempotency_in_flight",
            transient=True,
        )
    logger.warning("stripe %s failed (%s): %s", what, status, error.user_message or error)
    return StripeError(
        "The payment service refused the request; support has been told.",
        code=getattr(error, "code", "") or "",
        transient=status >= 500,
    )


def _options(idempotency_key: str | None) -> dict:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


# --- Catalog -----------------------------------------------------------------------------------


def product_create(*, name: str, description: str, metadata: dict, idempotency_key: str) -> dict:
    params = {"name": name, "description": description, "metadata": metadata}
    return _call(
        "product create",
        _client().v1.products.create,
        params=params,
        options=_options(idempotency_key),
    )


def product_update(product_id: str, *, name: str, description: str, active: bool) -> dict:
    params = {"name": name, "description": description, "active": active}
    return _call("product update", _client().v1.products.update, product_id, params=params)


def price_create(
    *,
    product_id: str,
    unit_amount: int,
    currency: str,
    metadata: dict,
    idempotency_key: str,
) -> dict:
    params = {
        "product": product_id,
        "unit_amount": unit_amount,
        "currency": currency.lower(),
        "recurring": {"interval": "month"},
        "tax_behavior": "exclusive",
        "metadata": metadata,
    }
    return _call(
        "price create", _client().v1.prices.create, params=params, options=_options(idempotency_key)
    )


def price_retrieve(price_id: str) -> dict:
    return _call("price retrieve", _client().v1.prices.retrieve, price_id)


def price_deactivate(price_id: str) -> dict:
    """Stop offering a price to new subscriptions; existing subscriptions keep paying it."""
    return _call("price update", _client().v1.prices.update, price_id, params={"active": False})


def tax_rate_create(*, country: str, percentage: str, idempotency_key: str) -> dict:
    params = {
        "display_name": "VAT",
        "percentage": percentage,
        "inclusive": False,
        "country": country,
        "jurisdiction": country,
        "description": f"VAT {country} {percentage}%",
    }
    return _call(
        "tax rate create",
        _client().v1.tax_rates.create,
        params=params,
        options=_options(idempotency_key),
    )


# --- Customers and checkout ------------------------------------------------------------------


def customer_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "customer create",
        _client().v1.customers.create,
        params=params,
        options=_options(idempotency_key),
    )


def customer_update(customer_id: str, *, params: dict) -> dict:
    return _call("customer update", _client().v1.customers.update, customer_id, params=params)


def customer_retrieve(customer_id: str, *, expand: list[str] | None = None) -> dict:
    params = {"expand": expand} if expand else None
    return _call("customer retrieve", _client().v1.customers.retrieve, customer_id, params=params)


def customer_cards(customer_id: str) -> list[dict]:
    """The cards attached to the customer, newest first (the first hundred: plenty)."""
    page = _call(
        "payment methods list",
        _client().v1.customers.payment_methods.list,
        customer_id,
        params={"type": "card", "limit": 100},
    )
    return page.get("data") or []


def customer_tax_ids_list(customer_id: str) -> list[dict]:
    """The customer's tax IDs (Stripe keeps at most 25, so one page holds them all)."""
    page = _call(
        "tax ids list", _client().v1.customers.tax_ids.list, customer_id, params={"limit": 100}
    )
    return page.get("data") or []


def customer_tax_id_create(
    customer_id: str, *, tax_type: str, value: str, idempotency_key: str
) -> dict:
    """Add a tax ID (`eu_vat`: printed on the customer's invoices); Stripe checks its format."""
    return _call(
        "tax id create",
        _client().v1.customers.tax_ids.create,
        customer_id,
        params={"type": tax_type, "value": value},
        options=_options(idempotency_key),
    )


def customer_tax_id_delete(customer_id: str, tax_id: str) -> dict:
    return _call("tax id delete", _client().v1.customers.tax_ids.delete, customer_id, tax_id)


def checkout_session_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "checkout create",
        _client().v1.checkout.sessions.create,
        params=params,
        options=_options(idempotency_key),
    )


def checkout_session_retrieve(session_id: str) -> dict:
    return _call("checkout retrieve", _client().v1.checkout.sessions.retrieve, session_id)


def checkout_session_expire(session_id: str) -> dict:
    return _call("checkout expire", _client().v1.checkout.sessions.expire, session_id)


def billing_portal_session_create(*, customer_id: str, return_url: str) -> dict:
    params = {"customer": customer_id, "return_url": return_url}
    return _call("portal session", _client().v1.billing_portal.sessions.create, params=params)


# --- Subscriptions, invoices, money movements ----------------------------------------------


def subscription_retrieve(subscription_id: str) -> dict:
    return _call("subscription retrieve", _client().v1.subscriptions.retrieve, subscription_id)


def subscription_create(*, params: dict, idempotency_key: str) -> dict:
    """A subscription charged at once (a card error raises StripeError with `card`)."""
    return _call(
        "subscription create",
        _client().v1.subscriptions.create,
        params=params,
        options=_options(idempotency_key),
    )


def subscription_update(subscription_id: str, *, params: dict, idempotency_key: str) -> dict:
    return _call(
        "subscription update",
        _client().v1.subscriptions.update,
        subscription_id,
        params=params,
        options=_options(idempotency_key),
    )


def subscription_cancel(subscription_id: str, *, params: dict, idempotency_key: str) -> dict:
    """End the subscription now (its customer.subscription.deleted follows)."""
    return _call(
        "subscription cancel",
        _client().v1.subscriptions.cancel,
        subscription_id,
        params=params,
        options=_options(idempotency_key),
    )


def credit_note_create(*, params: dict, idempotency_key: str) -> dict:
    return _call(
        "credit note create",
        _client().v1.credit_notes.create,
        params=params,
        options=_options(idempotency_key),
    )


def invoice_preview(*, params: dict) -> dict:
    """The invoice Stripe would make for `params` (a subscription change), made nowhere."""
    return _call("invoice preview", _client().v1.invoices.create_preview, params=params)


def invoice_retrieve(invoice_id: str) -> dict:
    """The invoice with its payments (which Stripe includes only when asked)."""
    params = {"expand": ["payments"]}
    return _call("invoice retrieve", _client().v1.invoices.retrieve, invoice_id, params=params)


def credit_note_retrieve(credit_note_id: str) -> dict:
    return _call("credit note retrieve", _client().v1.credit_notes.retrieve, credit_note_id)


def refund_retrieve(refund_id: str) -> dict:
    return _call("refund retrieve", _client().v1.refunds.retrieve, refund_id)


def payout_retrieve(payout_id: str) -> dict:
    return _call("payout retrieve", _client().v1.payouts.retrieve, payout_id)


def balance_transactions_of_payout(payout_id: str) -> list[dict]:
    """Every balance transaction a payout pays out (the payout's own included), each with its
    source (charge, refund, dispute ...) expanded."""
    found: list[dict] = []
    params: dict = {"payout": payout_id, "limit": 100, "expand": ["data.source"]}
    while True:
        page = _call(
            "balance transactions list", _client().v1.balance_transactions.list, params=params
        )
        found.extend(page.get("data") or [])
        if not page.get("has_more") or not page.get("data"):
            return found
        params = params | {"starting_after": page["data"][-1]["id"]}


def charge_retrieve(charge_id: str) -> dict:
    return _call("charge retrieve", _client().v1.charges.retrieve, charge_id)


def dispute_retrieve(dispute_id: str) -> dict:
    return _call("dispute retrieve", _client().v1.disputes.retrieve, dispute_id)


def list_all(resource: str, **params) -> list[dict]:
    """Every object of a list endpoint ("invoices", "credit_notes"...), page after page."""
    service = getattr(_client().v1, resource)
    found, after = [], None
    while True:
        page = _call(
            f"{resource} list",
            service.list,
            params={"limit": 100, **params, **({"starting_after": after} if after else {})},
        )
        found += page.get("data") or []
        if not page.get("has_more") or not page.get("data"):
            return found
        after = page["data"][-1]["id"]


def prices_list(limit: int = 3) -> dict:
    return _call("prices list", _client().v1.prices.list, params={"limit": limit})


# --- Webhooks --------------------------------------------------------------------------------


def event_from_webhook(payload: bytes, signature: str) -> dict:
    """Verify a webhook delivery (signature and timestamp tolerance) and return the event."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise SignatureError("STRIPE_WEBHOOK_SECRET is not configured.")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
        raise SignatureError(str(error)) from error
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise SignatureError("The payload is not JSON.") from error
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise SignatureError("The payload is not a Stripe event.")
    return event
