"""Finance export benchmark: each report in CSV and XLSX against a baseline, in PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/exports.py

Creates a throwaway database `portal_bench_exports` on the DATABASE_URL server (migrated from
scratch, dropped at the end unless --keep-database) and seeds a year of ledger: 100,000
invoices (issued and paid rows), 100,000 payments, and a payout a day with one balance
transaction per payment and its fee. Then, each in a fresh process so its peak memory is its
own, every report over the whole year in CSV and in XLSX (DATEV: its semicolon CSV), and a
baseline that streams the same ledger rows (the report's kinds and range) with `csv.writer`
over `values_list().iterator()`. Reports each run's time, peak RSS and the ratio of its time
to its baseline's; writes bench/results/exports.json. Goal: within 2x, peak under 150 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE = "portal_bench_exports"
VAR = ROOT / "var" / "bench-exports"
INVOICES = 100_000
YEAR = 2026
GOAL_RATIO = 2.0
GOAL_PEAK_MB = 150.0
BASELINE_FIELDS = [
    "kind",
    "occurred_at",
    "document_number",
    "customer_id",
    "customer_name",
    "country",
    "customer_vat_id",
    "plan_id",
    "net_cents",
    "vat_rate",
    "vat_cents",
    "gross_cents",
    "fee_cents",
    "currency",
    "vat_treatment",
    "stripe_object_id",
    "stripe_invoice_id",
    "stripe_customer_id",
    "stripe_payment_id",
    "stripe_payout_id",
]


def database_url(base: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + DATABASE))


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("VAR_DIR", str(VAR))
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()


def recreate_database(base: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")


def drop_database(base: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def seed() -> dict:
    from decimal import Decimal

    from django.core.management import call_command

    from billing.models import LedgerEntry, Plan

    call_command("migrate", verbosity=0)
    plans = [
        Plan.objects.create(
            family=family,
            name=name,
            slug=name.lower().replace(" ", "-"),
            vcpus=2,
            memory_mib=4096,
            disk_gib=80,
            storage_class="nvme",
            price_cents=price,
        )
        for family, name, price in [
            ("nvme_vps", "NVMe VPS S", 499),
            ("nvme_vps", "NVMe VPS M", 849),
            ("vds", "VDS S", 2999),
            ("storage_vps", "Storage VPS S", 499),
        ]
    ]
    situations = [
        ("DE", "domestic", Decimal("19"), ""),
        ("FR", "eu_b2c", Decimal("20"), ""),
        ("AT", "eu_b2c", Decimal("20"), ""),
        ("FR", "reverse_charge", Decimal("0"), "FR44732829320"),
        ("US", "outside_eu", Decimal("0"), ""),
    ]
    rng = random.Random(12)
    start = dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC)
    seconds = 365 * 86400 - 7200
    batch: list[LedgerEntry] = []
    payouts: dict[int, list[tuple[int, int]]] = {}

    def flush(force: bool = False) -> None:
        if len(batch) >= 6000 or (force and batch):
            LedgerEntry.objects.bulk_create(batch)
            batch.clear()

    for n in range(INVOICES):
        plan = plans[n % len(plans)]
        country, treatment, rate, vat_id = situations[n % len(situations)]
        net = plan.price_cents
        vat = int((Decimal(net) * rate / 100).quantize(Decimal("1")))
        gross = net + vat
        issued = start + dt.timedelta(seconds=rng.randrange(seconds))
        paid = issued + dt.timedelta(minutes=5)
        number = f"BENCH-{n:06d}"
        common = {
            "customer_id": None,
            "currency": "EUR",
            "country": country,
            "vat_treatment": treatment,
            "vat_rate": rate,
            "plan": plan,
            "document_number": number,
            "customer_name": f"Customer {n % 5000}",
            "customer_vat_id": vat_id,
            "period_start": issued,
            "period_end": issued + dt.timedelta(days=30),
            "mrr_cents": net,
            "stripe_invoice_id": f"in_bench{n:06d}",
            "stripe_customer_id": f"cus_bench{n % 5000:05d}",
            "stripe_subscription_id": f"sub_bench{n % 20000:05d}",
            "net_cents": net,
            "vat_cents": vat,
            "gross_cents": gross,
        }
        fee = int(Decimal(gross) * Decimal("0.015") + Decimal("0.5")) + 25
        batch.append(
            LedgerEntry(
                kind="invoice_issued",
                stripe_object_id=f"in_bench{n:06d}",
                occurred_at=issued,
                **common,
            )
        )
        batch.append(
            LedgerEntry(
                kind="invoice_paid",
                stripe_object_id=f"in_bench{n:06d}",
                occurred_at=paid,
                **common,
            )
        )
        batch.append(
            LedgerEntry(
                kind="payment",
                stripe_object_id=f"pi_bench{n:06d}",
                occurred_at=paid,
                stripe_payment_id=f"pi_bench{n:06d}",
                stripe_source_id=f"ch_bench{n:06d}",
                **common,
            )
        )
        day = min(364, (paid - start).days + 2)
        payouts.setdefault(day, []).append((n, gross, fee, paid))
        flush()
    for day, items in sorted(payouts.items()):
        payout_id = f"po_bench{day:03d}"
        arrival = start + dt.timedelta(days=day, hours=3)
        amount = sum(gross - fee for _, gross, fee, _ in items)
        base = {"currency": "EUR", "vat_cents": 0, "stripe_payout_id": payout_id}
        batch.append(
            LedgerEntry(
                kind="payout",
                stripe_object_id=payout_id,
                occurred_at=arrival,
                net_cents=amount,
                gross_cents=amount,
                **base,
            )
        )
        for n, gross, fee, paid in items:
            batch.append(
                LedgerEntry(
                    kind="balance_transaction",
                    stripe_object_id=f"txn_bench{n:06d}",
                    occurred_at=paid,
                    net_cents=gross,
                    gross_cents=gross,
                    fee_cents=fee,
                    category="charge",
                    stripe_source_id=f"ch_bench{n:06d}",
                    stripe_payment_id=f"pi_bench{n:06d}",
                    document_number=f"BENCH-{n:06d}",
                    stripe_invoice_id=f"in_bench{n:06d}",
                    **base,
                )
            )
            flush()
    flush(force=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_ledgerentry")
    return {"ledger_rows": LedgerEntry.objects.count(), "payouts": len(payouts)}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would keep the parent's from
    before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_run(report_id: str, fmt: str, baseline: bool) -> dict:
    """In this (fresh) process: one report or its baseline, to /dev/null or a temp file."""
    import csv

    from billing.exports import REPORTS
    from billing.exports.base import ExportParams
    from billing.exports.render import csv_chunks, xlsx_write

    params = ExportParams(dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), "EUR", fmt)
    report = REPORTS[report_id](params)
    rss_before = peak_rss_mb()
    began = time.perf_counter()
    rows = 0
    if baseline:
        with open(os.devnull, "w", newline="") as out:
            writer = csv.writer(out)
            query = report.ledger().values_list(*BASELINE_FIELDS).iterator(chunk_size=2000)
            for row in query:
                writer.writerow(row)
                rows += 1
    elif fmt == "xlsx":
        target = VAR / f"{report_id}.xlsx"
        rows = xlsx_write(report, target)
        target.unlink()
    else:
        with open(os.devnull, "wb") as out:
            for chunk in csv_chunks(report):
                out.write(chunk)
        rows = report.row_count
    seconds = time.perf_counter() - began
    peak = peak_rss_mb()
    return {
        "seconds": round(seconds, 3),
        "peak_mb": round(peak, 1),
        "rows": rows,
        "rss_before_mb": round(rss_before, 1),
    }


def measure(url: str, report_id: str, fmt: str, baseline: bool) -> dict:
    command = [sys.executable, __file__, "--one", report_id, fmt]
    if baseline:
        command.append("--baseline")
    env = os.environ | {"DATABASE_URL": url}
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("REPORT", "FORMAT"))
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (postgres://.../postgres).")
    VAR.mkdir(parents=True, exist_ok=True)
    if args.one:
        django_setup(base)
        print(json.dumps(one_run(args.one[0], args.one[1], args.baseline)))
        return
    url = database_url(base)
    recreate_database(base)
    try:
        django_setup(url)
        began = time.perf_counter()
        seeded = seed()
        seeded["seed_seconds"] = round(time.perf_counter() - began, 1)
        print(f"seeded {seeded}", flush=True)
        from billing.exports import REPORTS

        results = []
        for identifier, report in REPORTS.items():
            for fmt in [f for f in ("csv", "xlsx", "csv_de") if f in report.formats][:2]:
                if fmt == "csv_de" and "csv" in report.formats:
                    continue
                baseline = measure(url, identifier, fmt, baseline=True)
                run = measure(url, identifier, fmt, baseline=False)
                ratio = round(run["seconds"] / baseline["seconds"], 2)
                entry = {
                    "report": identifier,
                    "format": fmt,
                    "seconds": run["seconds"],
                    "peak_mb": run["peak_mb"],
                    "rows_out": run["rows"],
                    "baseline_seconds": baseline["seconds"],
                    "baseline_peak_mb": baseline["peak_mb"],
                    "ledger_rows_read": baseline["rows"],
                    "ratio_to_baseline": ratio,
                    "within_goal": ratio <= GOAL_RATIO and run["peak_mb"] < GOAL_PEAK_MB,
                }
                results.append(entry)
                print(
                    f"{identifier:9} {fmt:6} {run['seconds']:7.2f}s {run['peak_mb']:6.1f} MB  "
                    f"baseline {baseline['seconds']:6.2f}s {baseline['peak_mb']:6.1f} MB  "
                    f"ratio {ratio:5.2f}  rows {run['rows']}",
                    flush=True,
                )
        out = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            "database": "PostgreSQL (DATABASE_URL server)",
            "seed": seeded,
            "goal": {"ratio_to_baseline": GOAL_RATIO, "peak_mb": GOAL_PEAK_MB},
            "baseline": "csv.writer over LedgerEntry.values_list(20 columns).iterator() of the "
            "report's kinds and range, in a fresh process",
            "peak_mb": "peak RSS of the whole process (Python, Django and the driver included)",
            "results": results,
        }
        target = ROOT / "bench" / "results" / "exports.json"
        target.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {target}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            drop_database(base)


if __name__ == "__main__":
    main()
