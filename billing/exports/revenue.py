"""Revenue by plan and month: billed (by document date), earned (each document's net spread
over its service period, by the second), cash received (payments less refunds and disputes,
net of VAT), and per plan and family the MRR and active subscriptions at each month end."""

from __future__ import annotations

import datetime
from collections import defaultdict

from django.db.models import Q, Sum
from django.db.models.functions import TruncMonth

from billing.exports.base import Column, Kind, Report, zone

BILLED = (Kind.INVOICE_ISSUED, Kind.CREDIT_NOTE, Kind.INVOICE_VOIDED)
CASH = (Kind.PAYMENT, Kind.REFUND, Kind.DISPUTE)
ALL_PLANS = "(all plans)"


def month_starts(start: datetime.datetime, end: datetime.datetime) -> list[datetime.datetime]:
    """The first moments of the months that overlap [start, end), in the finance time zone."""
    first = start.astimezone(zone()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    months = []
    while first < end:
        months.append(first)
        year, month = divmod(first.month, 12)
        first = first.replace(year=first.year + year, month=month + 1)
    return months


def _next_month(first: datetime.datetime) -> datetime.datetime:
    year, month = divmod(first.month, 12)
    return first.replace(year=first.year + year, month=month + 1)


class RevenueByPlan(Report):
    identifier = "revenue"
    name = "Revenue by plan and month"
    description = (
        "Billed, earned (spread over the service period) and cash received, net of VAT; MRR "
        "and active subscriptions at month end, per plan and per family."
    )
    kinds = BILLED + CASH
    columns = [
        Column("month"),
        Column("family"),
        Column("plan"),
        Column("billed", "money"),
        Column("earned", "money"),
        Column("cash received", "money"),
        Column("MRR at month end", "money"),
        Column("active subscriptions at month end", "int"),
    ]

    def _by_month(self, kinds) -> dict:
        sums = (
            self.ledger(*kinds)
            .annotate(month=TruncMonth("occurred_at", tzinfo=zone()))
            .order_by()
            .values("month", "plan_id")
            .annotate(net=Sum("net_cents"))
        )
        return {(s["month"].strftime("%Y-%m"), s["plan_id"]): s["net"] for s in sums}

    def _earned(self, months) -> dict:
        from billing.models import LedgerEntry

        p = self.params
        earned: dict = defaultdict(int)
        documents = LedgerEntry.objects.filter(
            Q(period_end__gt=p.start, period_start__lt=p.end)
            | Q(period_start__isnull=True, occurred_at__gte=p.start, occurred_at__lt=p.end),
            kind__in=BILLED,
            currency=p.currency,
        ).values_list("plan_id", "net_cents", "period_start", "period_end", "occurred_at")
        bounds = [
            (m.strftime("%Y-%m"), max(m, p.start), min(_next_month(m), p.end)) for m in months
        ]
        for plan, net, start, end, occurred in documents.iterator(chunk_size=2000):
            if not start or not end or end <= start:
                start, end = occurred, occurred + datetime.timedelta(seconds=1)
            length = (end - start).total_seconds()
            for label, first, after in bounds:
                overlap = (min(end, after) - max(start, first)).total_seconds()
                if overlap > 0:
                    earned[(label, plan)] += round(net * overlap / length)
        return earned

    def _at_month_ends(self, months) -> dict:
        """(month, plan) → (MRR cents, active subscriptions): per subscription, the latest paid
        invoice whose service period covers the month's last moment."""
        from billing.models import LedgerEntry

        found: dict = {}
        for first in months:
            moment = min(_next_month(first), self.params.end) - datetime.timedelta(seconds=1)
            covering = (
                LedgerEntry.objects.filter(
                    kind=Kind.INVOICE_PAID,
                    currency=self.params.currency,
                    period_start__lte=moment,
                    period_end__gt=moment,
                    mrr_cents__gt=0,
                )
                .exclude(stripe_subscription_id="")
                .order_by("occurred_at", "pk")
                .values_list("stripe_subscription_id", "plan_id", "mrr_cents")
            )
            latest = {sub: (plan, mrr) for sub, plan, mrr in covering.iterator(chunk_size=2000)}
            label = first.strftime("%Y-%m")
            for plan, mrr in latest.values():
                total, count = found.get((label, plan), (0, 0))
                found[(label, plan)] = (total + mrr, count + 1)
        return found

    def rows(self):
        from billing.models import Plan

        months = month_starts(self.params.start, self.params.end)
        billed = self._by_month(BILLED)
        cash = self._by_month(CASH)
        earned = self._earned(months)
        at_end = self._at_month_ends(months)
        plans = {p.pk: p for p in Plan.objects.all()}
        keys = set(billed) | set(cash) | set(earned) | set(at_end)

        def order(plan_id):
            plan = plans.get(plan_id)
            return (plan.family, plan.display_order, plan.name) if plan else ("", 0, "")

        for first in months:
            label = first.strftime("%Y-%m")
            plan_ids = sorted({plan for month, plan in keys if month == label}, key=order)
            families: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
            for plan_id in plan_ids:
                plan = plans.get(plan_id)
                family = plan.get_family_display() if plan else "(no plan)"
                mrr, active = at_end.get((label, plan_id), (0, 0))
                values = [
                    billed.get((label, plan_id), 0),
                    earned.get((label, plan_id), 0),
                    cash.get((label, plan_id), 0),
                    mrr,
                    active,
                ]
                for n, value in enumerate(values):
                    families[family][n] += value
                yield (label, family, plan.name if plan else "(no plan)", *values)
            for family, values in families.items():
                yield (label, family, ALL_PLANS, *values)
