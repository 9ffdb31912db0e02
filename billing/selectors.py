"""Reads for the billing pages (database only)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import User
from accounts.services import profile_for
from billing.models import BillingAccount, Invoice, Order, Plan, Subscription
from billing.orders import spec_of
from billing.vat import Quote, quote, situation_of
from instances import selectors as instance_selectors
from instances.models import Family, Location


@dataclass(frozen=True)
class Availability:
    location: Location
    available: bool


def availability(plan: Plan) -> list[Availability]:
    spec = spec_of(plan)
    return [
        Availability(location, instance_selectors.can_take(location, spec))
        for location in instance_selectors.orderable_locations()
    ]


@dataclass(frozen=True)
class FamilyColumn:
    code: str
    label: str
    plans: list[tuple[Plan, list[Availability]]]


def catalog() -> list[FamilyColumn]:
    """The families side by side, each with its sizes and where each size can be built now."""
    active = Plan.objects.on_sale()
    columns = []
    for code, label in Family.choices:
        plans = [(plan, availability(plan)) for plan in active.filter(family=code)]
        if plans:
            columns.append(FamilyColumn(code, label, plans))
    return columns


@dataclass(frozen=True)
class PlanCard:
    plan: Plan
    quote: Quote


def plan_cards(user: User, chosen: Plan | None, *, family: str | None = None) -> dict:
    """The order form's sizes: the chosen plan's family as cards with prices excluding and
    including VAT, and the families to switch between."""
    on_sale = Plan.objects.on_sale()
    families = [(code, label) for code, label in Family.choices if on_sale.filter(family=code)]
    current = chosen.family if chosen else family or (families[0][0] if families else "")
    profile = profile_for(user)
    situation = situation_of(profile) if profile else None
    cards = (
        [
            PlanCard(
                plan,
                quote(
                    monthly_cents=plan.price_cents,
                    setup_cents=plan.setup_fee_cents,
                    currency=plan.currency,
                    situation=situation,
                ),
            )
            for plan in on_sale.filter(family=current)
        ]
        if situation
        else []
    )
    return {"families": families, "family": current, "plan_cards": cards}


def account_of(user: User) -> BillingAccount | None:
    return BillingAccount.objects.filter(user=user).first()


def billing_page(user: User) -> dict:
    return {
        "subscriptions": Subscription.objects.filter(owner=user).select_related(
            "order__plan", "order__instance"
        ),
        "invoices": Invoice.objects.filter(owner=user)[:50],
        "open_orders": Order.objects.filter(
            owner=user, status=Order.Status.AWAITING_PAYMENT
        ).select_related("plan"),
        "has_account": BillingAccount.objects.filter(user=user).exists(),
    }
