"""The catalog in Stripe: plans as products and prices, VAT rates as tax rates.

Pushing is idempotent (Idempotency-Key per plan and amount; ids kept on the rows). A changed
price creates a new Stripe price and archives the old one for new sign-ups; Stripe never lets a
price's amount change, so customers paying the old price keep paying it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from billing import stripe_client
from billing.models import Plan, TaxRate
from billing.vat import VatSituation
from instances.models import Family

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    plan: Plan
    product_created: bool
    price_created: bool
    archived_price: str


def plan_description(plan: Plan) -> str:
    cores = "dedicated cores" if plan.dedicated_cores else "vCPU"
    return (
        f"{plan.vcpus} {cores}, {plan.memory_mib // 1024} GiB RAM, {plan.disk_gib} GiB "
        f"{plan.get_storage_class_display()}, {plan.traffic_tb} TB traffic"
    )


def _missing(call) -> bool:
    """Run a Stripe call; True when Stripe says the object does not exist (deleted there)."""
    try:
        call()
    except stripe_client.StripeError as error:
        if error.code == "resource_missing":
            return True
        raise
    return False


def plan_sync(plan: Plan) -> SyncResult:
    """Make Stripe's product and current price match the plan row."""
    product_created = price_created = False
    archived = ""
    description = plan_description(plan)
    gone_product = gone_price = ""
    if plan.stripe_product_id and _missing(
        lambda: stripe_client.product_update(
            plan.stripe_product_id, name=plan.name, description=description, active=plan.active
        )
    ):
        logger.warning("plan %s: product %s is gone from Stripe", plan.slug, plan.stripe_product_id)
        gone_product, gone_price = plan.stripe_product_id, plan.stripe_price_id
        plan.stripe_product_id = plan.stripe_price_id = ""
    if not plan.stripe_product_id:
        product = stripe_client.product_create(
            name=plan.name,
            description=description,
            metadata={"plan_id": str(plan.pk), "plan_slug": plan.slug, "family": plan.family},
            idempotency_key=f"plan-{plan.pk}-product-after-{gone_product or 0}",
        )
        plan.stripe_product_id = product["id"]
        product_created = True
        Plan.objects.filter(pk=plan.pk).update(stripe_product_id=plan.stripe_product_id)
    if plan.stripe_in_sync and _missing(lambda: stripe_client.price_retrieve(plan.stripe_price_id)):
        logger.warning("plan %s: price %s is gone from Stripe", plan.slug, plan.stripe_price_id)
        gone_price, plan.stripe_price_id = plan.stripe_price_id, ""
    if not plan.stripe_in_sync:
        old = plan.stripe_price_id
        price = stripe_client.price_create(
            product_id=plan.stripe_product_id,
            unit_amount=plan.price_cents,
            currency=plan.currency,
            metadata={"plan_id": str(plan.pk)},
            idempotency_key=f"plan-{plan.pk}-{plan.price_cents}-after-{old or gone_price or 0}",
        )
        plan.stripe_price_id = price["id"]
        plan.stripe_price_cents = plan.price_cents
        price_created = True
        Plan.objects.filter(pk=plan.pk).update(
            stripe_price_id=plan.stripe_price_id, stripe_price_cents=plan.stripe_price_cents
        )
        if old and old != plan.stripe_price_id:
            stripe_client.price_deactivate(old)
            archived = old
    logger.debug(
        "plan %s synced: product %s, price %s",
        plan.slug,
        plan.stripe_product_id,
        plan.stripe_price_id,
    )
    return SyncResult(plan, product_created, price_created, archived)


def tax_rate_id(situation: VatSituation) -> str | None:
    """The Stripe tax rate for the situation's VAT, created once; None when no VAT is charged."""
    if not situation.charges_vat:
        return None
    existing = TaxRate.objects.filter(country=situation.country, percentage=situation.rate).first()
    if existing:
        return existing.stripe_tax_rate_id
    percentage = f"{situation.rate.normalize():f}"
    created = stripe_client.tax_rate_create(
        country=situation.country,
        percentage=percentage,
        idempotency_key=f"vat-{situation.country}-{percentage}",
    )
    with transaction.atomic():
        row, _ = TaxRate.objects.get_or_create(
            country=situation.country,
            percentage=situation.rate,
            defaults={"stripe_tax_rate_id": created["id"]},
        )
    return row.stripe_tax_rate_id


# --- Which sizes a server may move to -----------------------------------------------------------

# Upgrade VPS: a bigger size of the same product line, or the line above it. A dedicated server
# is a machine, not a slice: it does not change size.
UPGRADE_LINES = {
    Family.NVME_VPS: (Family.NVME_VPS, Family.VDS),
    Family.STORAGE_VPS: (Family.STORAGE_VPS, Family.NVME_VPS),
    Family.VDS: (Family.VDS,),
}


def upgrade_targets(plan: Plan):
    """Plans on sale the server of `plan` may grow into: nothing smaller, the disk never less."""
    return (
        Plan.objects.on_sale()
        .filter(family__in=UPGRADE_LINES.get(plan.family, ()))
        .filter(vcpus__gte=plan.vcpus, memory_mib__gte=plan.memory_mib, disk_gib__gte=plan.disk_gib)
        .filter(price_cents__gt=plan.price_cents)
        .exclude(pk=plan.pk)
        .order_by("price_cents", "pk")
    )


def downgrade_targets(plan: Plan):
    """Smaller plans on sale of the same product line (the disk check is the caller's)."""
    if plan.family not in UPGRADE_LINES:
        return Plan.objects.none()
    return (
        Plan.objects.on_sale()
        .filter(family=plan.family, price_cents__lt=plan.price_cents)
        .order_by("-price_cents", "pk")
    )


def layout_vcpus(plan: Plan) -> int:
    """The vCPUs a server of `plan` is laid out for, so every upgrade it may buy is live."""
    if plan.family not in UPGRADE_LINES:
        return plan.vcpus
    biggest = upgrade_targets(plan).order_by("-vcpus").values_list("vcpus", flat=True).first()
    return max(plan.vcpus, biggest or 0)
