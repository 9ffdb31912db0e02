"""A ledger seeded through Stripe's webhooks (the sandbox), with totals computed by hand:

| customer | plan | net | VAT | gross | Stripe fee (1.5 % + 25) |
|---|---|---|---|---|---|
| Hans (DE, domestic 19 %) | NVMe VPS S | 499 | 95 | 594 | 34 |
| Marie (FR, EU B2C OSS 20 %) | VDS S + setup | 2999 + 1000 | 600 + 200 | 4799 | 97 |
| Exemple SARL (FR, reverse charge) | NVMe VPS S | 499 | 0 | 499 | 32 |
| Joe (US, outside the EU) | VDS S + setup | 3999 | 0 | 3999 | 85 |

Then: 200 of Hans's payment refunded (VAT 200 × 95 / 594 = 32); a credit note of 1000 net on
Marie's VDS line (VAT 200, gross 1200); Exemple SARL's charge disputed (499 and the 2000 fee);
three days on, one payout: 560 + 4702 + 467 + 3914 - 200 - 2499 = 6944.
"""

from __future__ import annotations

import datetime

import pytest

from billing.exports.base import ExportParams
from billing.models import LedgerEntry
from tests.billing.conftest import deliver, pay, place, process_all, sandbox_events, stripe_api

DAY = 86400


def deliver_new(client, sandbox, seen: set[str]) -> None:
    for event in sandbox_events(sandbox):
        if event["id"] not in seen:
            seen.add(event["id"])
            assert deliver(client, event).status_code == 200
    process_all()


@pytest.fixture
def seeded(client, shop, german, french, french_business, american, stripe_settings):
    sandbox = stripe_settings
    api = stripe_api(sandbox)
    seen: set[str] = set()
    orders = {}
    for name, owner, plan in [
        ("de", german, "nvme"),
        ("fr", french, "vds"),
        ("fr_b2b", french_business, "nvme"),
        ("us", american, "vds"),
    ]:
        orders[name] = place(owner, shop, plan, hostname=f"web-{name.replace('_', '-')}")
        pay(sandbox, orders[name])
        deliver_new(client, sandbox, seen)

    def payment(customer) -> LedgerEntry:
        return LedgerEntry.objects.get(kind="payment", customer=customer)

    api.v1.refunds.create(
        params={"payment_intent": payment(german).stripe_object_id, "amount": 200}
    )
    invoice_id = payment(french).stripe_invoice_id
    lines = api.v1.invoices.retrieve(invoice_id).to_dict()["lines"]["data"]
    vds_line = next(line for line in lines if line["amount"] == 2999)
    api.v1.credit_notes.create(
        params={
            "invoice": invoice_id,
            "lines": [
                {"type": "invoice_line_item", "invoice_line_item": vds_line["id"], "amount": 1000}
            ],
        }
    )
    intent = api.v1.payment_intents.retrieve(payment(french_business).stripe_object_id)
    sandbox.dispute(intent.latest_charge)
    deliver_new(client, sandbox, seen)
    sandbox.advance(3 * DAY)
    deliver_new(client, sandbox, seen)
    today = datetime.date.fromtimestamp(sandbox.now())
    return {
        "orders": orders,
        "sandbox": sandbox,
        "seen": seen,
        "range": (today - datetime.timedelta(days=10), today + datetime.timedelta(days=40)),
        "customers": {
            "de": german,
            "fr": french,
            "fr_b2b": french_business,
            "us": american,
        },
    }


def params(seeded, fmt: str = "csv") -> ExportParams:
    start, end = seeded["range"]
    return ExportParams(start, end, "EUR", fmt)
