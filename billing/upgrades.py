"""Upgrade VPS: a bigger size at once, charged prorated; a smaller size from the next period.

An upgrade shows the exact amount due now (Stripe's invoice preview at a fixed proration date)
and, once confirmed, updates the subscription with that same proration date,
`proration_behavior=always_invoice` and `payment_behavior=pending_if_incomplete`: Stripe keeps
the old price until the proration invoice is paid, and applies the change only then. The server
is resized when (and only when) Stripe's subscription shows the new price, whichever of the
confirming request, a webhook or beat sees it first. Unpaid, Stripe drops the change after
about 23 hours and nothing changes. A downgrade changes the price without proration (no refund
now), and the server gets the smaller size when the next period starts; a disk never shrinks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing import catalog, stripe_client
from billing.ledger import when
from billing.models import Plan, Subscription, Upgrade, money
from billing.orders import quote_for, spec_of
from billing.vat import Quote
from instances import services as instance_services
from instances.models import Instance

logger = logging.getLogger(__name__)
State = Upgrade.State
# A quote shown on the page holds this long; confirming later shows the current price first.
QUOTE_MAX_AGE = 15 * 60
SALT = "billing.upgrades.quote"
PAYING = {"active", "trialing"}


class UpgradeError(Exception):
    """An upgrade or downgrade that cannot be done; the message is for the customer."""


@dataclass(frozen=True)
class Option:
    """One size the customer may move to, as the upgrade page shows it."""

    plan: Plan
    kind: str  # upgrade | downgrade
    changes: list[str]
    live: bool  # takes effect without a reboot
    monthly: Quote
    due_now_cents: int | None = None  # an upgrade: Stripe's preview, VAT included
    token: str = ""
    refused: str = ""  # why it cannot be chosen ("" when it can)


NO_SUBSCRIPTION = (
    "This server is not paid through a subscription here, so its size cannot be changed online; "
    "please contact support."
)


def subscription_for(user: User, instance: Instance) -> Subscription:
    """The customer's subscription that pays for the server (UpgradeError when there is none:
    a server set up by support)."""
    subscription = (
        Subscription.objects.select_related("order__plan", "plan")
        .filter(order__instance=instance, owner=user)
        .first()
    )
    if subscription is None:
        raise UpgradeError(NO_SUBSCRIPTION)
    return subscription


def current_plan(subscription: Subscription) -> Plan:
    return subscription.plan or subscription.order.plan


def live_upgrade(subscription: Subscription) -> Upgrade | None:
    return subscription.upgrades.filter(state__in=Upgrade.LIVE).first()


def _changes(instance: Instance, plan: Plan) -> list[str]:
    def step(name: str, old, new, unit: str = "") -> str | None:
        return f"{name}: {old} → {new}{unit}" if old != new else None

    cores = "dedicated" if plan.dedicated_cores else "shared"
    before = "dedicated" if instance.dedicated_cores else "shared"
    rows = [
        step("vCPUs", f"{instance.vcpus} {before}", f"{plan.vcpus} {cores}"),
        step("RAM", instance.memory_mib // 1024, plan.memory_mib // 1024, " GiB"),
        step("Disk", instance.disk_gib, plan.disk_gib, " GiB"),
        step("Storage", instance.get_storage_class_display(), plan.get_storage_class_display()),
        step("Traffic", instance.traffic_tb, plan.traffic_tb, " TB a month"),
    ]
    return [row for row in rows if row]


def applies_live(instance: Instance, plan: Plan) -> bool:
    """Whether the running server takes the size without a reboot: vCPUs within its layout's
    ceiling and more (not less) RAM. Disk growth and a move to NVMe are always live."""
    return 0 < plan.vcpus <= instance.max_vcpus and plan.memory_mib >= instance.memory_mib


def _item(stripe_subscription: dict) -> dict:
    return ((stripe_subscription.get("items") or {}).get("data") or [{}])[0]


def _quote_token(subscription: Subscription, plan: Plan, proration_date: int, due: int) -> str:
    data = {"s": subscription.pk, "p": plan.pk, "d": proration_date, "a": due}
    return signing.dumps(data, salt=SALT)


def spec_for(upgrade: Upgrade):
    """The server's new spec: the plan's, but a disk never shrinks, and CPU-and-RAM-only keeps
    the disk as it is."""
    spec = spec_of(upgrade.to_plan)
    disk = upgrade.instance.disk_gib if upgrade.keep_disk else spec.disk_gib
    return dataclasses.replace(spec, disk_gib=max(disk, upgrade.instance.disk_gib))


def upgrade_options(user: User, instance: Instance, now: datetime | None = None) -> list[Option]:
    """Every bigger size with the amount due now (Stripe's preview, prorated from `now`) and
    every smaller one."""
    subscription = subscription_for(user, instance)
    plan = current_plan(subscription)
    proration = int((now or timezone.now()).timestamp())
    item = None
    options = []
    for target in catalog.upgrade_targets(plan):
        if item is None:
            stripe_subscription = stripe_client.subscription_retrieve(
                subscription.stripe_subscription_id
            )
            item = _item(stripe_subscription)
        preview = stripe_client.invoice_preview(
            params=_preview_params(subscription, item, target, proration)
        )
        due = int(preview.get("amount_due") or 0)
        options.append(
            Option(
                plan=target,
                kind=Upgrade.Kind.UPGRADE,
                changes=_changes(instance, target),
                live=applies_live(instance, target),
                monthly=quote_for(user, target),
                due_now_cents=due,
                token=_quote_token(subscription, target, proration, due),
            )
        )
    for target in catalog.downgrade_targets(plan):
        refused = ""
        if target.disk_gib < instance.disk_gib:
            refused = (
                f"Its disk is {target.disk_gib} GiB and yours is {instance.disk_gib} GiB: "
                "disks never shrink."
            )
        options.append(
            Option(
                plan=target,
                kind=Upgrade.Kind.DOWNGRADE,
                changes=_changes(instance, target),
                live=False,
                monthly=quote_for(user, target),
                refused=refused,
            )
        )
    return options


def _preview_params(subscription: Subscription, item: dict, plan: Plan, proration: int) -> dict:
    return {
        "customer": subscription.order.owner.billing_account.stripe_customer_id,
        "subscription": subscription.stripe_subscription_id,
        "subscription_details": {
            "items": [{"id": item.get("id"), "price": plan.stripe_price_id}],
            "proration_behavior": "always_invoice",
            "proration_date": proration,
        },
    }


def _start(subscription: Subscription, instance: Instance, plan: Plan, **fields) -> Upgrade:
    """The upgrade's row, once per quote (a second click finds the first)."""
    try:
        with transaction.atomic():
            upgrade, _created = Upgrade.objects.get_or_create(
                quote_key=fields.pop("quote_key"),
                defaults={
                    "subscription": subscription,
                    "owner": subscription.owner,
                    "instance": instance,
                    "from_plan": current_plan(subscription),
                    "to_plan": plan,
                    "to_price_id": plan.stripe_price_id,
                    "currency": plan.currency,
                    **fields,
                },
            )
    except IntegrityError:
        busy = live_upgrade(subscription)
        raise UpgradeError(
            f"A change to {busy.to_plan.name} is under way; finish it first."
            if busy
            else "Another change is under way; try again in a moment."
        ) from None
    return upgrade


def upgrade_confirm(
    *, user: User, instance: Instance, token: str, keep_disk: bool = False
) -> Upgrade:
    """Update the subscription as quoted; the server grows once Stripe has the payment.
    `keep_disk`: CPU and RAM only (the same price; a later downgrade stays possible)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=QUOTE_MAX_AGE)
    except signing.SignatureExpired:
        raise UpgradeError("That price was quoted a while ago; here is the current one.") from None
    except signing.BadSignature:
        raise UpgradeError("Choose one of the sizes offered.") from None
    subscription = subscription_for(user, instance)
    if data["s"] != subscription.pk:
        raise UpgradeError("Choose one of the sizes offered.")
    if subscription.status not in PAYING:
        raise UpgradeError("Settle the open invoice on the Billing page before upgrading.")
    plan = catalog.upgrade_targets(current_plan(subscription)).filter(pk=data["p"]).first()
    if plan is None:
        raise UpgradeError("That size is not offered for this server any more.")
    key = hashlib.sha256(
        f"{subscription.pk}:{plan.stripe_price_id}:{data['d']}".encode()
    ).hexdigest()
    if keep_disk and plan.storage_class != instance.storage_class:
        keep_disk = False  # a disk moving to NVMe takes the plan's size
    upgrade = _start(
        subscription,
        instance,
        plan,
        quote_key=key,
        kind=Upgrade.Kind.UPGRADE,
        proration_date=datetime.fromtimestamp(data["d"], UTC),
        amount_due_cents=data["a"],
        keep_disk=keep_disk,
    )
    if upgrade.state != State.REQUESTED or upgrade.stripe_invoice_id:
        return upgrade  # confirmed before (a double click, another tab)
    stripe_subscription = stripe_client.subscription_retrieve(subscription.stripe_subscription_id)
    params = {
        "items": [{"id": _item(stripe_subscription).get("id"), "price": plan.stripe_price_id}],
        "proration_behavior": "always_invoice",
        "proration_date": data["d"],
        "payment_behavior": "pending_if_incomplete",
    }
    try:
        updated = stripe_client.subscription_update(
            subscription.stripe_subscription_id,
            params=params,
            idempotency_key=f"upgrade-{upgrade.pk}",
        )
    except stripe_client.StripeError as error:
        Upgrade.objects.filter(pk=upgrade.pk).update(state=State.FAILED, error=str(error))
        raise UpgradeError(str(error)) from error
    return upgrade_sync(upgrade.pk, updated)


def downgrade_schedule(*, user: User, instance: Instance, plan_id: int) -> Upgrade:
    """A smaller size from the next period: the price changes now without proration (nothing
    is refunded); the server shrinks when the period starts. A disk never shrinks."""
    subscription = subscription_for(user, instance)
    if subscription.status not in PAYING:
        raise UpgradeError("Settle the open invoice on the Billing page first.")
    plan = catalog.downgrade_targets(current_plan(subscription)).filter(pk=plan_id).first()
    if plan is None:
        raise UpgradeError("That size is not offered for this server.")
    if plan.disk_gib < instance.disk_gib:
        raise UpgradeError(
            f"{plan.name} has a {plan.disk_gib} GiB disk and yours is {instance.disk_gib} GiB; "
            "disks never shrink. Choose a size with at least as much disk."
        )
    period_end = subscription.current_period_end or timezone.now()
    upgrade = _start(
        subscription,
        instance,
        plan,
        quote_key=hashlib.sha256(f"{subscription.pk}:{plan.pk}:{period_end}".encode()).hexdigest(),
        kind=Upgrade.Kind.DOWNGRADE,
        proration_date=timezone.now(),
        amount_due_cents=0,
        effective_at=period_end,
    )
    if upgrade.state != State.REQUESTED:
        return upgrade
    stripe_subscription = stripe_client.subscription_retrieve(subscription.stripe_subscription_id)
    try:
        stripe_client.subscription_update(
            subscription.stripe_subscription_id,
            params={
                "items": [
                    {"id": _item(stripe_subscription).get("id"), "price": plan.stripe_price_id}
                ],
                "proration_behavior": "none",
            },
            idempotency_key=f"downgrade-{upgrade.pk}",
        )
    except stripe_client.StripeError as error:
        Upgrade.objects.filter(pk=upgrade.pk).update(state=State.FAILED, error=str(error))
        raise UpgradeError(str(error)) from error
    Upgrade.objects.filter(pk=upgrade.pk, state=State.REQUESTED).update(state=State.SCHEDULED)
    instance_services.event_record(
        instance,
        message=f"Moving to {plan.name} when the next period starts on {period_end:%Y-%m-%d}.",
        actor=instance_services.Actor.CUSTOMER,
        actor_user=user,
    )
    upgrade.refresh_from_db()
    return upgrade


# --- Following Stripe: whoever sees the subscription first moves the upgrade on ---------------


def upgrade_sync(
    upgrade_id: int, stripe_subscription: dict, *, latest_invoice: dict | None = None
) -> Upgrade:
    """Bring an upgrade in line with Stripe's subscription: applied (the new price is on it),
    awaiting payment (a pending update), or expired (neither: Stripe dropped it)."""
    with transaction.atomic():
        upgrade = Upgrade.objects.select_for_update().select_related("to_plan").get(pk=upgrade_id)
        if upgrade.kind != Upgrade.Kind.UPGRADE or upgrade.state not in (
            State.REQUESTED,
            State.AWAITING_PAYMENT,
        ):
            return upgrade
        pending = stripe_subscription.get("pending_update")
        price = (_item(stripe_subscription).get("price") or {}).get("id")
        invoice_id = stripe_subscription.get("latest_invoice")
        invoice_id = invoice_id.get("id") if isinstance(invoice_id, dict) else invoice_id
        if price == upgrade.to_price_id and not pending:
            upgrade.state = State.PAID
        elif pending:
            upgrade.state = State.AWAITING_PAYMENT
            upgrade.expires_at = when(pending.get("expires_at"))
        elif upgrade.state == State.AWAITING_PAYMENT:
            upgrade.state = State.EXPIRED  # not paid in time: Stripe dropped the change
        if invoice_id and upgrade.state in (State.AWAITING_PAYMENT, State.PAID):
            upgrade.stripe_invoice_id = invoice_id
        upgrade.save()
    if upgrade.state == State.AWAITING_PAYMENT and upgrade.stripe_invoice_id:
        invoice = latest_invoice if (latest_invoice or {}).get("id") == invoice_id else None
        invoice = invoice or stripe_client.invoice_retrieve(upgrade.stripe_invoice_id)
        Upgrade.objects.filter(pk=upgrade.pk).update(
            hosted_invoice_url=invoice.get("hosted_invoice_url") or ""
        )
    if upgrade.state == State.PAID:
        return upgrade_apply(upgrade.pk)
    upgrade.refresh_from_db()
    return upgrade


def upgrades_follow(stripe_subscription: dict, *, latest_invoice: dict | None = None) -> None:
    """A subscription changed at Stripe: its upgrade in flight follows (webhooks call this
    with what they read, so nothing here waits on Stripe)."""
    live = Upgrade.objects.filter(
        subscription__stripe_subscription_id=stripe_subscription["id"],
        kind=Upgrade.Kind.UPGRADE,
        state__in=(State.REQUESTED, State.AWAITING_PAYMENT),
    ).first()
    if live is not None:
        upgrade_sync(live.pk, stripe_subscription, latest_invoice=latest_invoice)


def upgrade_apply(upgrade_id: int, now: datetime | None = None) -> Upgrade:
    """A paid upgrade (or a downgrade whose period has begun) resizes the server, once."""
    now = now or timezone.now()
    with transaction.atomic():
        upgrade = (
            Upgrade.objects.select_for_update()
            .select_related("to_plan", "instance", "subscription")
            .get(pk=upgrade_id)
        )
        due = upgrade.state == State.PAID or (
            upgrade.state == State.SCHEDULED and upgrade.effective_at <= now
        )
        if not due:
            return upgrade
        plan = upgrade.to_plan
        if upgrade.kind == Upgrade.Kind.UPGRADE:
            charged = money(upgrade.amount_due_cents, upgrade.currency)
            label = f"Upgraded to {plan.name} ({charged} charged, VAT included)."
        else:
            label = f"Moved to {plan.name} for the new period."
        try:
            instance_services.instance_resize(
                instance=upgrade.instance,
                spec=spec_for(upgrade),
                label=label,
                actor=instance_services.Actor.CUSTOMER,
                actor_user=upgrade.owner,
            )
        except instance_services.OperationInProgress:
            return upgrade  # beat tries again when the server's current operation has ended
        except instance_services.InstanceError as error:
            upgrade.state, upgrade.error = State.FAILED, str(error)
            upgrade.save()
            logger.error("upgrade %s cannot be applied: %s", upgrade.pk, error)
            return upgrade
        upgrade.state, upgrade.applied_at = State.APPLIED, now
        upgrade.save()
        Subscription.objects.filter(pk=upgrade.subscription_id).update(plan=plan)
    logger.info("upgrade %s applied: %s", upgrade.pk, upgrade)
    return upgrade


def upgrades_due(now: datetime | None = None) -> int:
    """Beat: paid upgrades not yet applied (the server was busy), downgrades whose period has
    begun, and upgrades Stripe should have dropped by now. Returns how many moved on."""
    now = now or timezone.now()
    moved = 0
    due = Upgrade.objects.filter(state=State.PAID) | Upgrade.objects.filter(
        state=State.SCHEDULED, effective_at__lte=now
    )
    for upgrade in due:
        moved += upgrade_apply(upgrade.pk, now=now).state == State.APPLIED
    stale = Upgrade.objects.filter(
        state=State.AWAITING_PAYMENT, expires_at__lt=now - timedelta(minutes=5)
    ).select_related("subscription")
    for upgrade in stale:  # the expiry webhook was lost: ask Stripe
        stripe_subscription = stripe_client.subscription_retrieve(
            upgrade.subscription.stripe_subscription_id
        )
        moved += upgrade_sync(upgrade.pk, stripe_subscription).state != State.AWAITING_PAYMENT
    return moved


def downgrade_cancel(*, user: User, instance: Instance) -> Upgrade:
    """Keep the current size after all: the price goes back before the period ends."""
    subscription = subscription_for(user, instance)
    upgrade = subscription.upgrades.filter(
        kind=Upgrade.Kind.DOWNGRADE, state=State.SCHEDULED
    ).first()
    if upgrade is None:
        raise UpgradeError("No smaller size is planned for this server.")
    stripe_subscription = stripe_client.subscription_retrieve(subscription.stripe_subscription_id)
    stripe_client.subscription_update(
        subscription.stripe_subscription_id,
        params={
            "items": [
                {
                    "id": _item(stripe_subscription).get("id"),
                    "price": upgrade.from_plan.stripe_price_id,
                }
            ],
            "proration_behavior": "none",
        },
        idempotency_key=f"downgrade-{upgrade.pk}-undo",
    )
    Upgrade.objects.filter(pk=upgrade.pk, state=State.SCHEDULED).update(state=State.CANCELLED)
    instance_services.event_record(
        instance,
        message=f"{upgrade.from_plan.name} kept: the move to {upgrade.to_plan.name} is cancelled.",
        actor=instance_services.Actor.CUSTOMER,
        actor_user=user,
    )
    upgrade.refresh_from_db()
    return upgrade
