"""Orders: placing one (every amount computed here), paying it through Stripe Checkout, and
turning a paid order into exactly one server."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from accounts.models import SSHKey, User
from accounts.services import profile_for
from billing import catalog, disputes, stripe_client
from billing.models import BillingAccount, Order, Plan
from billing.transitions import Actor, BillingConflict, order_transition
from billing.vat import OUTSIDE_EU, REVERSE_CHARGE, quote, situation_of
from instances import selectors as instance_selectors
from instances.services import (
    HOSTNAME,
    HOSTNAME_RULE,
    InstanceSpec,
    instance_create,
    password_reveal,
)

logger = logging.getLogger(__name__)


class OrderError(Exception):
    """An order that cannot be placed or paid; the message is for the customer."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


# The plan's noisy-neighbour limits, which the server keeps as they are (InstanceSpec's names).
LIMITS = (
    "net_rate_mbit",
    "disk_iops_rd",
    "disk_iops_wr",
    "disk_mbps_rd",
    "disk_mbps_wr",
    "cpu_units",
)


def spec_of(plan: Plan) -> InstanceSpec:
    """What a server of the plan is, built to take the sizes it may be upgraded to live."""
    return InstanceSpec(
        family=plan.family,
        plan_name=plan.name,
        vcpus=plan.vcpus,
        dedicated_cores=plan.dedicated_cores,
        memory_mib=plan.memory_mib,
        disk_gib=plan.disk_gib,
        storage_class=plan.storage_class,
        traffic_tb=plan.traffic_tb,
        max_vcpus=catalog.layout_vcpus(plan),
        **{name: getattr(plan, name) for name in LIMITS},
        snapshots_max=plan.snapshots_max,
        backups_kept=plan.backups_kept,
    )


def quote_for(user: User, plan: Plan):
    profile = profile_for(user)
    if profile is None:
        raise OrderError("Complete your billing profile before ordering.")
    return quote(
        monthly_cents=plan.price_cents,
        setup_cents=plan.setup_fee_cents,
        currency=plan.currency,
        situation=situation_of(profile),
    )


def order_place(
    *,
    owner: User,
    plan_id: int,
    location_id: int,
    os_image_id: int,
    hostname: str,
    ssh_key_ids: list[int],
    generate_password: bool,
) -> Order:
    """Check the choices against the database (never the browser) and record the order."""
    if disputes.has_open_dispute(owner):
        raise OrderError(
            "A payment of yours is disputed with your bank; please contact support before "
            "ordering again."
        )
    plan = Plan.objects.filter(pk=plan_id, active=True).first()
    if plan is None:
        raise OrderError("That plan is not offered any more; choose another.", field="plan")
    if not plan.stripe_in_sync:
        raise OrderError("That plan cannot be ordered right now; please try again later.")
    location = instance_selectors.orderable_locations().filter(pk=location_id).first()
    if location is None:
        raise OrderError("Choose one of the locations offered.", field="location")
    image = instance_selectors.images_for_location(location).filter(pk=os_image_id).first()
    if image is None:
        raise OrderError(
            f"Choose an operating system offered in {location.name}.", field="os_image"
        )
    hostname = (hostname or "").strip().lower()
    if not HOSTNAME.fullmatch(hostname):
        raise OrderError(HOSTNAME_RULE, field="hostname")
    key_ids = sorted({int(k) for k in ssh_key_ids})
    if SSHKey.objects.filter(owner=owner, pk__in=key_ids).count() != len(key_ids):
        raise OrderError("One of the chosen SSH keys is not yours.", field="ssh_keys")
    if not key_ids and not generate_password:
        raise OrderError(
            "Choose at least one SSH key or ask for a root password.", field="ssh_keys"
        )
    if plan.disk_gib < image.min_disk_gib:
        raise OrderError(f"{image.name} needs at least {image.min_disk_gib} GiB of disk.")
    if not instance_selectors.can_take(location, spec_of(plan)):
        raise OrderError(
            f"{plan.name} is sold out in {location.name}; choose another location or size.",
            field="location",
        )
    amounts = quote_for(owner, plan)
    situation = amounts.situation
    return Order.objects.create(
        owner=owner,
        plan=plan,
        location=location,
        os_image=image,
        hostname=hostname,
        ssh_key_ids=key_ids,
        generate_password=generate_password,
        currency=plan.currency,
        monthly_net_cents=amounts.monthly_net,
        monthly_vat_cents=amounts.monthly_vat,
        setup_net_cents=amounts.setup_net,
        setup_vat_cents=amounts.setup_vat,
        vat_treatment=situation.treatment,
        vat_country=situation.country,
        vat_rate=situation.rate,
        vat_id=situation.vat_id,
        stripe_price_id=plan.stripe_price_id,
    )


# --- Paying -----------------------------------------------------------------------------------


def _customer_params(user: User) -> dict:
    profile = profile_for(user)
    situation = situation_of(profile)
    tax_exempt = {REVERSE_CHARGE: "reverse", OUTSIDE_EU: "exempt"}.get(situation.treatment, "none")
    return {
        "email": user.email,
        "name": profile.company or profile.full_name,
        "phone": profile.phone,
        "address": {
            "line1": profile.address_line1,
            "line2": profile.address_line2,
            "postal_code": profile.postal_code,
            "city": profile.city,
            "country": str(profile.country),
        },
        "tax_exempt": tax_exempt,
        "metadata": {"user_id": str(user.pk), "vat_id": profile.vat_id},
    }


def customer_for(user: User) -> str:
    """The customer's Stripe customer id, created on first checkout and kept up to date."""
    params = _customer_params(user)
    account = BillingAccount.objects.filter(user=user).first()
    if account:
        try:
            stripe_client.customer_update(account.stripe_customer_id, params=params)
            _tax_ids_sync(account.stripe_customer_id, _stripe_vat_id(profile_for(user)))
            return account.stripe_customer_id
        except stripe_client.StripeError as error:
            if error.code != "resource_missing":
                raise
            gone = account.stripe_customer_id
            logger.warning("user %s: Stripe customer %s is gone; making a new one", user.pk, gone)
    # One key per (user, customer replaced): concurrent first checkouts get the same customer.
    after = f"-after-{account.stripe_customer_id}" if account else ""
    vat_id = _stripe_vat_id(profile_for(user))
    if vat_id:  # printed on Stripe's invoices (a reverse-charge invoice must name it)
        params = params | {"tax_id_data": [{"type": "eu_vat", "value": vat_id}]}
    customer = stripe_client.customer_create(
        params=params, idempotency_key=f"user-{user.pk}-customer{after}"
    )
    BillingAccount.objects.update_or_create(
        user=user, defaults={"stripe_customer_id": customer["id"]}
    )
    return customer["id"]


def _stripe_vat_id(profile) -> str:
    """The VAT ID Stripe prints on the customer's invoices: theirs, unless VIES refused it."""
    if profile is None or profile.vat_id_status == profile.VatIdStatus.INVALID:
        return ""
    return profile.vat_id


def customer_tax_sync(*, user_id: int) -> None:
    """The VAT ID (or what VIES says of it) changed: the customer's Stripe record gets their
    tax status and VAT ID, if they have one yet (a first checkout creates it with both)."""
    account = BillingAccount.objects.select_related("user").filter(user_id=user_id).first()
    if account is None:
        return
    customer_id = account.stripe_customer_id
    stripe_client.customer_update(customer_id, params=_customer_params(account.user))
    _tax_ids_sync(customer_id, _stripe_vat_id(profile_for(account.user)))


def _tax_ids_sync(customer_id: str, vat_id: str) -> None:
    """The customer's eu_vat tax IDs in Stripe become `vat_id` (or none): the new one is added
    before the old ones go, so an invoice made meanwhile still names one."""
    current = [
        tax_id
        for tax_id in stripe_client.customer_tax_ids_list(customer_id)
        if tax_id.get("type") == "eu_vat"
    ]
    if vat_id and all(tax_id.get("value") != vat_id for tax_id in current):
        replaced = "-".join(tax_id["id"] for tax_id in current) or "none"
        stripe_client.customer_tax_id_create(
            customer_id,
            tax_type="eu_vat",
            value=vat_id,
            idempotency_key=f"{customer_id}-eu-vat-{vat_id}-replacing-{replaced}",
        )
    for tax_id in current:
        if tax_id.get("value") == vat_id:
            continue
        try:
            stripe_client.customer_tax_id_delete(customer_id, tax_id["id"])
        except stripe_client.StripeError as error:
            if error.code != "resource_missing":  # gone already: what we wanted
                raise


def open_session(order: Order) -> dict | None:
    """The order's Checkout session while a customer can still pay on it."""
    if not order.stripe_checkout_session_id:
        return None
    session = stripe_client.checkout_session_retrieve(order.stripe_checkout_session_id)
    if session.get("status") == "complete":
        raise OrderError("This order is paid; your server is on its way.")
    return session if session.get("status") == "open" else None


def checkout_complete(order: Order) -> bool:
    if not order.stripe_checkout_session_id:
        return False
    session = stripe_client.checkout_session_retrieve(order.stripe_checkout_session_id)
    return session.get("status") == "complete"


def payable_or_refuse(order: Order) -> None:
    """OrderError unless the order can be paid now at the price it was placed at."""
    if not order.is_payable:
        raise OrderError("This order is not awaiting payment.")
    if order.stripe_price_id != order.plan.stripe_price_id:
        raise OrderError(
            f"The price of {order.plan.name} changed since this order was placed; nothing was "
            "charged. Please cancel it and order again to see the new price."
        )


def order_items(order: Order) -> tuple[list[dict], list[dict]]:
    """What the first payment is for, as Stripe line items with the order's VAT rate: the
    plan's monthly price, and the setup fee once. Checkout and the saved card both send these
    (Checkout as its line_items, a subscription as its items and add_invoice_items)."""
    rate_id = catalog.tax_rate_id(order.vat_situation)
    tax_rates = [rate_id] if rate_id else []
    monthly = [{"price": order.stripe_price_id, "quantity": 1, "tax_rates": tax_rates}]
    once = []
    if order.setup_net_cents:
        once.append(
            {
                "price_data": {
                    "currency": order.currency.lower(),
                    "product": order.plan.stripe_product_id,
                    "unit_amount": order.setup_net_cents,
                    "tax_behavior": "exclusive",
                },
                "quantity": 1,
                "tax_rates": tax_rates,
            }
        )
    return monthly, once


def order_metadata(order: Order) -> dict:
    """On the subscription: what billing/mirror.py finds the order by when it is paid."""
    return {"order_id": str(order.pk), "user_id": str(order.owner_id)}


# BillingEvent.field of a payment with the saved card (billing/saved_card.py).
SAVED_CARD_EVENT = "saved_card"
# The customer's saved card as pages last read it (by user id); forgotten when an order is paid,
# since a first payment on Checkout is what saves a card.
SAVED_CARD_CACHE_KEY = "billing:saved-card:{}"
# A subscription in these states will not be paid any more.
ENDED_SUBSCRIPTION = {"canceled", "incomplete_expired"}


def order_subscription(order: Order, customer_id: str) -> dict | None:
    """The subscription Stripe has for the order (made by Checkout or the saved card), unless
    it ended; None if there is none."""
    for subscription in stripe_client.list_all("subscriptions", customer=customer_id, status="all"):
        metadata = subscription.get("metadata") or {}
        if metadata.get("order_id") == str(order.pk) and (
            subscription.get("status") not in ENDED_SUBSCRIPTION
        ):
            return subscription
    return None


def _paid_with_saved_card(order: Order) -> bool:
    """Whether the saved card paid the order although the order does not know yet (its
    webhook is on the way, or the answer to the payment was lost): then a Checkout page would
    be a second subscription, and cancelling would leave a paid subscription without a server.
    Asks Stripe only for an order someone tried to pay with the saved card."""
    if not order.billing_events.filter(field=SAVED_CARD_EVENT).exists():
        return False
    account = BillingAccount.objects.filter(user=order.owner_id).first()
    return bool(account and order_subscription(order, account.stripe_customer_id))


def checkout_url(order: Order) -> str:
    """A Stripe Checkout page for the order: the open session again, or a new one."""
    payable_or_refuse(order)
    if session := open_session(order):
        return session["url"]
    if _paid_with_saved_card(order):
        raise OrderError("This order was paid with your saved card; your server is on its way.")
    monthly, once = order_items(order)
    order_url = settings.SITE_URL + reverse("billing:order", args=[order.pk])
    metadata = order_metadata(order)
    session = stripe_client.checkout_session_create(
        params={
            "mode": "subscription",
            "customer": customer_for(order.owner),
            "client_reference_id": str(order.pk),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "line_items": monthly + once,
            "success_url": order_url + "?paid=1",
            "cancel_url": order_url,
        },
        idempotency_key=f"order-{order.pk}-checkout-after-{order.stripe_checkout_session_id or 0}",
    )
    Order.objects.filter(pk=order.pk).update(stripe_checkout_session_id=session["id"])
    return session["url"]


def order_cancel(order: Order) -> None:
    """Cancel an unpaid order; its open Checkout page is closed first, so it cannot be paid."""
    if not order.is_payable:
        raise OrderError("Only an order awaiting payment can be cancelled.")
    if _paid_with_saved_card(order):
        raise OrderError("This order was paid with your saved card; your server is on its way.")
    if session := open_session(order):
        stripe_client.checkout_session_expire(session["id"])
    try:
        order_transition(
            order_id=order.pk,
            to=Order.Status.CANCELED,
            reason="Cancelled by the customer before paying.",
            actor=Actor.CUSTOMER,
            actor_user=order.owner,
        )
    except BillingConflict as error:  # paid meanwhile: the server is on its way
        raise OrderError("This order was paid meanwhile; your server is on its way.") from error


def order_mark_paid(
    *, order_id: int, subscription_id: str, reason: str, stripe_event_id: str = ""
) -> Order:
    """Record the payment and ask for the server, once, however often Stripe tells us.

    The order row lock serialises concurrent deliveries; Order.instance (unique) and the
    instance's external_ref (unique) make a second server impossible even without it.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.instance_id:
            return order
        if order.stripe_subscription_id and order.stripe_subscription_id != subscription_id:
            raise OrderError(
                f"Order {order.pk} is already paid by {order.stripe_subscription_id}, "
                f"not {subscription_id}."
            )
        # Keys deleted between order and payment: the server gets the keys that are left and
        # a generated root password (shown once on the order page) rather than no access.
        keys = list(
            SSHKey.objects.filter(owner=order.owner, pk__in=order.ssh_key_ids).values_list(
                "pk", flat=True
            )
        )
        lost_keys = len(keys) < len(order.ssh_key_ids)
        if lost_keys:
            logger.warning(
                "order %s: %d ssh key(s) gone", order.pk, len(order.ssh_key_ids) - len(keys)
            )
        instance = instance_create(
            owner=order.owner,
            hostname=order.hostname,
            location=order.location,
            os_image=order.os_image,
            spec=spec_of(order.plan),
            ssh_key_ids=keys,
            generate_password=order.generate_password or lost_keys,
            external_ref=order.external_ref,
            reason=reason,
        )
        order = order_transition(
            order_id=order.pk,
            to=Order.Status.PAID,
            reason=f"Paid by {subscription_id}.",
            stripe_event_id=stripe_event_id,
            paid_at=order.paid_at or timezone.now(),
            stripe_subscription_id=subscription_id,
            instance=instance,
        )
    # Stripe attached the card before it told us of the payment: a page reading it from now on
    # finds it, so only what was read before has to go.
    cache.delete(SAVED_CARD_CACHE_KEY.format(order.owner_id))
    logger.info("order %s paid (%s): server %s", order.pk, subscription_id, order.instance_id)
    return order


def root_password_reveal(order: Order) -> str | None:
    """The server's generated root password, once (the server page can show it too)."""
    return password_reveal(instance=order.instance) if order.instance_id else None


def orders_of(user: User):
    return Order.objects.filter(owner=user).select_related("plan", "location", "instance")


def order_of(user: User, order_id: int) -> Order:
    """The customer's own order, or 404."""
    return get_object_or_404(orders_of(user), pk=order_id)
