"""Payout reconciliation: each Stripe payout with the balance transactions it pays out, and a
control row per payout checking that their nets add up to the payout's amount."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Sum

from billing.exports.base import Column, Kind, Report, local_date
from billing.models import LedgerEntry

OK, MISMATCH = "OK", "MISMATCH"


class PayoutReconciliation(Report):
    identifier = "payouts"
    name = "Payout reconciliation"
    description = (
        "Per payout (by arrival date): its charges, refunds, disputes and fees with gross, fee "
        "and net, our invoice number, and a control row; a payout whose nets do not add up "
        "is marked MISMATCH."
    )
    kinds = (Kind.PAYOUT, Kind.BALANCE_TRANSACTION)
    columns = [
        Column("payout"),
        Column("arrival date", "date"),
        Column("row"),
        Column("balance transaction"),
        Column("type"),
        Column("date", "date"),
        Column("source"),
        Column("invoice number"),
        Column("customer name"),
        Column("gross", "money"),
        Column("fee", "money"),
        Column("net", "money"),
        Column("currency"),
        Column("payout amount", "money"),
        Column("difference", "money"),
        Column("check"),
    ]

    def payouts(self):
        failed = LedgerEntry.objects.filter(
            kind=Kind.PAYOUT_FAILED, stripe_object_id=OuterRef("stripe_object_id")
        )
        return (
            self.ledger(Kind.PAYOUT)
            .annotate(failed=Exists(failed))
            .values_list("stripe_object_id", "occurred_at", "gross_cents", "currency", "failed")
        )

    def rows_expected(self) -> int:
        ids = self.ledger(Kind.PAYOUT).values("stripe_object_id")
        return LedgerEntry.objects.filter(
            kind=Kind.BALANCE_TRANSACTION, stripe_payout_id__in=ids
        ).count()

    def rows(self):
        for payout_id, arrival, amount, currency, failed in list(self.payouts()):
            day = local_date(arrival)
            gross_sum = fee_sum = 0
            transactions = (
                LedgerEntry.objects.filter(
                    kind=Kind.BALANCE_TRANSACTION, stripe_payout_id=payout_id
                )
                .order_by("occurred_at", "pk")
                .values_list(
                    "stripe_object_id",
                    "category",
                    "occurred_at",
                    "stripe_source_id",
                    "document_number",
                    "customer_name",
                    "gross_cents",
                    "fee_cents",
                )
            )
            for txn, category, occurred, source, number, name, gross, fee in transactions.iterator(
                chunk_size=2000
            ):
                gross_sum += gross
                fee_sum += fee
                yield (
                    payout_id,
                    day,
                    "transaction",
                    txn,
                    category,
                    local_date(occurred),
                    source,
                    number,
                    name,
                    gross,
                    fee,
                    gross - fee,
                    currency,
                    None,
                    None,
                    "",
                )
            net_sum = gross_sum - fee_sum
            difference = net_sum - amount
            check = OK if difference == 0 else MISMATCH
            if check == MISMATCH:
                self.warnings.append(
                    f"Payout {payout_id} ({day}): its transactions net {net_sum / 100:.2f}, "
                    f"the payout is {amount / 100:.2f} {currency}."
                )
            yield (
                payout_id,
                day,
                "control (payout failed)" if failed else "control",
                "",
                "sum of nets",
                None,
                "",
                "",
                "",
                gross_sum,
                fee_sum,
                net_sum,
                currency,
                amount,
                difference,
                check,
            )


def payouts_not_reconciling(limit: int = 20) -> list[dict]:
    """The latest payouts whose balance transactions do not add up: for the Exports page."""
    payouts = LedgerEntry.objects.filter(kind=Kind.PAYOUT).order_by("-occurred_at")[:200]
    sums = dict(
        LedgerEntry.objects.filter(
            kind=Kind.BALANCE_TRANSACTION,
            stripe_payout_id__in=[p.stripe_object_id for p in payouts],
        )
        .values("stripe_payout_id")
        .annotate(net=Sum("gross_cents") - Sum("fee_cents"))
        .values_list("stripe_payout_id", "net")
    )
    found = []
    for payout in payouts:
        net = sums.get(payout.stripe_object_id) or 0
        if net != payout.gross_cents:
            found.append(
                {
                    "payout": payout.stripe_object_id,
                    "arrival": local_date(payout.occurred_at),
                    "amount_cents": payout.gross_cents,
                    "net_cents": net,
                    "currency": payout.currency,
                }
            )
    return found[:limit]
