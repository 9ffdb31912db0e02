"""Each report against the seeded ledger (conftest.py), with totals computed by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.exports import REPORTS
from billing.models import LedgerEntry
from tests.billing.exports.conftest import params

pytestmark = pytest.mark.django_db


def table(identifier: str, seeded, fmt: str = "csv") -> tuple[list[dict], object]:
    report = REPORTS[identifier](params(seeded, fmt))
    names = [column.name for column in report.columns]
    rows = [dict(zip(names, row, strict=True)) for row in report.rows()]
    return rows, report


def test_invoices_and_credit_notes(seeded):
    rows, _ = table("invoices", seeded)
    invoices = [r for r in rows if r["type"] == "invoice"]
    (credit,) = [r for r in rows if r["type"] == "credit note"]
    assert len(invoices) == 4
    assert sum(r["net"] for r in invoices) == 499 + 3999 + 499 + 3999
    assert sum(r["VAT"] for r in invoices) == 95 + 800
    assert sum(r["gross"] for r in invoices) == 594 + 4799 + 499 + 3999
    by_country = {r["country"]: r for r in invoices}
    assert by_country["DE"]["VAT treatment"] == "domestic"
    assert by_country["DE"]["VAT rate %"] == Decimal("19")
    assert by_country["US"]["VAT treatment"] == "outside the EU"
    fr = [r for r in invoices if r["country"] == "FR"]
    assert {r["VAT treatment"] for r in fr} == {"EU B2C (OSS)", "reverse charge"}
    b2b = next(r for r in fr if r["VAT treatment"] == "reverse charge")
    assert b2b["B2B"] == "yes" and b2b["VAT ID"] and b2b["VAT"] == 0
    assert all(r["status"] == "paid" and r["paid date"] for r in invoices)
    assert all(r["number"] and r["service from"] < r["service to"] for r in invoices)
    b2c = next(r for r in fr if r["VAT treatment"] == "EU B2C (OSS)")
    assert (credit["net"], credit["VAT"], credit["gross"]) == (-1000, -200, -1200)
    assert credit["corrects number"] == b2c["number"] and credit["Stripe credit note"]
    assert b2c["plan"] == "VDS S"


def test_payments_refunds_and_the_dispute(seeded):
    rows, _ = table("payments", seeded)
    payments = sorted((r["amount"], r["fee"], r["net"]) for r in rows if r["type"] == "payment")
    assert payments == [(499, 32, 467), (594, 34, 560), (3999, 85, 3914), (4799, 97, 4702)]
    (refund,) = [r for r in rows if r["type"] == "refund"]
    assert (refund["amount"], refund["fee"], refund["net"]) == (-200, 0, -200)
    (dispute,) = [r for r in rows if r["type"] == "dispute"]
    assert (dispute["amount"], dispute["fee"], dispute["net"]) == (-499, 2000, -2499)
    assert all(r["invoice number"] and r["Stripe payment"].startswith("pi_") for r in rows)
    assert sum(r["net"] for r in rows) == 6944  # what the payout brought


def test_failed_payment_attempts_are_listed_with_their_reason(client, shop, german, seeded):
    from tests.billing.conftest import pay, place
    from tests.billing.exports.conftest import DAY, deliver_new

    sandbox = seeded["sandbox"]
    order = place(german, shop, hostname="web-late")
    pay(sandbox, order, "4000000000000341")  # pays now, declined at renewal
    sandbox.advance(32 * DAY)
    deliver_new(client, sandbox, seeded["seen"])
    failed = LedgerEntry.objects.filter(kind="payment_failed", customer=german)
    assert failed.exists()
    rows, _ = table("payments", seeded | {"range": (seeded["range"][0], seeded["range"][1])})
    start, _ = seeded["range"]
    import datetime

    wide = (start, start + datetime.timedelta(days=80))
    rows, _ = table("payments", seeded | {"range": wide})
    (first, *_) = [r for r in rows if r["status"] == "failed"]
    assert first["amount"] == 594 and first["fee"] == 0
    assert first["failure reason"].startswith("Payment attempt 1 failed")


def test_the_payout_reconciles_with_a_control_row(seeded):
    rows, report = table("payouts", seeded)
    transactions = [r for r in rows if r["row"] == "transaction"]
    (control,) = [r for r in rows if r["row"].startswith("control")]
    assert sorted(r["type"] for r in transactions) == ["charge"] * 4 + ["dispute", "refund"]
    assert sum(r["fee"] for r in transactions) == 34 + 97 + 32 + 85 + 2000
    assert (control["net"], control["payout amount"], control["difference"]) == (6944, 6944, 0)
    assert control["check"] == "OK" and report.warnings == []
    charges = [r for r in transactions if r["type"] == "charge"]
    assert all(r["invoice number"] for r in charges)


def test_a_payout_that_does_not_add_up_is_flagged(seeded):
    payout = LedgerEntry.objects.get(kind="payout")
    LedgerEntry.objects.create(
        kind="balance_transaction",
        stripe_object_id="txn_stray",
        occurred_at=payout.occurred_at,
        currency="EUR",
        net_cents=100,
        vat_cents=0,
        gross_cents=100,
        category="adjustment",
        stripe_payout_id=payout.stripe_object_id,
    )
    rows, report = table("payouts", seeded)
    control = rows[-1]
    assert (control["difference"], control["check"]) == (100, "MISMATCH")
    assert payout.stripe_object_id in report.warnings[0]


def test_vat_by_country_and_month(seeded):
    rows, _ = table("vat", seeded)
    *groups, total = rows
    found = {
        (r["country"], r["VAT treatment"], r["VAT rate %"]): (r["net base"], r["VAT"])
        for r in groups
    }
    assert found == {
        ("DE", "domestic", Decimal("19")): (499, 95),
        ("FR", "EU B2C (OSS)", Decimal("20")): (3999 - 1000, 800 - 200),
        ("FR", "reverse charge", Decimal("0")): (499, 0),
        ("US", "outside the EU", Decimal("0")): (3999, 0),
    }
    assert (total["net base"], total["VAT"]) == (7996, 695)


def test_revenue_by_plan_and_month(seeded):
    rows, _ = table("revenue", seeded)
    plans = [r for r in rows if r["plan"] != "(all plans)"]
    families = [r for r in rows if r["plan"] == "(all plans)"]
    billed = {r["plan"]: 0 for r in plans}
    cash = dict(billed)
    for r in plans:
        billed[r["plan"]] += r["billed"]
        cash[r["plan"]] += r["cash received"]
    assert billed == {"NVMe VPS S": 499 + 499, "VDS S": 3999 - 1000 + 3999}
    # Payments net of VAT, less the refund's net (168) and the disputed 499 (no VAT).
    assert cash == {"NVMe VPS S": 499 + 499 - 168 - 499, "VDS S": 3999 + 3999}
    # Earned over the service periods, all inside the range: as much as was billed.
    assert abs(sum(r["earned"] for r in plans) - 7996) <= len(plans)
    first_month = families[0]["month"]
    at_end = {
        r["family"]: (r["MRR at month end"], r["active subscriptions at month end"])
        for r in families
        if r["month"] == first_month
    }
    assert at_end == {"NVMe VPS": (998, 2), "VDS": (5998, 2)}


def test_datev_bookings_balance_the_stripe_transit_account(seeded, settings):
    rows, _ = table("datev", seeded, "csv_de")
    transit, debtors = settings.DATEV_ACCOUNTS["stripe_transit"], settings.DATEV_ACCOUNTS["debtors"]

    def balance(account: str) -> int:
        total = 0
        for r in rows:
            sign = 1 if r["Soll/Haben-Kennzeichen"] == "S" else -1
            if r["Konto"] == account:
                total += sign * r["Umsatz (ohne Soll/Haben-Kz)"]
            if r["Gegenkonto (ohne BU-Schlüssel)"] == account:
                total -= sign * r["Umsatz (ohne Soll/Haben-Kz)"]
        return total

    # In: 9891 paid. Out: refund 200, dispute 499 + 2000, fees 248, the payout 6944.
    assert balance(transit) == 0
    # Invoiced 9891, credited 1200, paid 9891; the refund (200) and the dispute (499) are owed.
    assert balance(debtors) == -1200 + 200 + 499
    assert balance(settings.DATEV_ACCOUNTS["bank"]) == 6944
    assert balance(settings.DATEV_ACCOUNTS["fees"]) == 248 + 2000
    revenue = {r["Gegenkonto (ohne BU-Schlüssel)"] for r in rows if r["Konto"] == debtors}
    assert settings.DATEV_ACCOUNTS["revenue_reverse_charge"] in revenue
    assert all(len(r["Belegdatum"]) == 4 and len(r["Buchungstext"]) <= 60 for r in rows)
