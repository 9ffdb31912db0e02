"""Upgrade VPS benchmark: from "proration invoice paid" to "upgrade applied", and a node drain.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python bench/upgrade.py

Everything real but Proxmox and Stripe: fakepve at the demo's realistic task durations, the
Stripe sandbox delivering signed webhooks to gunicorn, Celery workers, PostgreSQL (a throwaway
database `portal_bench_upgrade`). Servers are ordered and paid with a card that pays at checkout
and is declined later, so each confirmed upgrade waits for its invoice; the benchmark then pays
that invoice on the sandbox's hosted page and times until the server's resize has finished:
the webhook, the event's processing, the resize operation and PVE's tasks. The portal's own
overhead is that time minus what PVE took (a disk resize; with a migration first, the move).
Then one node with 20 servers is drained: wall time and servers a minute.
Prints a table and writes bench/results/upgrade.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provisioning import _q, cpu_seconds, manage, start, stop  # noqa: E402

VAR = ROOT / "var" / "bench-upgrade"
PVE_PORT, STRIPE_PORT, WEB_PORT = 8206, 12211, 8207
DATABASE = "portal_bench_upgrade"
LATER_DECLINED, GOOD = "4000000000000341", "4242 4242 4242 4242"


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL server (the benchmark makes its own db)."
        )
    return urlunsplit(urlsplit(url)._replace(path=f"/{DATABASE}"))


def reset_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def environment(url: str) -> dict[str, str]:
    return os.environ | {
        "VAR_DIR": str(VAR),
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": url,
        "DEBUG": "1",
        "STRIPE_SECRET_KEY": "sk_test_sandbox",
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "STRIPE_API_BASE": f"http://127.0.0.1:{STRIPE_PORT}",
        "CACHE_KEY_PREFIX": "bench-upgrade",
    }


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)  # polling the database or a port for the end of a step, bounded above
    raise SystemExit(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def setup(workers: int) -> list[subprocess.Popen]:
    url = database_url()
    reset_database(url)
    env = environment(url)
    subprocess.run(["rm", "-rf", str(VAR)], check=True)
    VAR.mkdir(parents=True)
    manage(env, "migrate", "--noinput")
    manage(env, "createcachetable")
    pve = ["--var-dir", str(VAR), "--port", str(PVE_PORT)]
    subprocess.run(
        [sys.executable, "-m", "sandbox.pve", "prepare", *pve], cwd=ROOT, env=env, check=True
    )
    webhook = f"http://127.0.0.1:{WEB_PORT}/billing/stripe/webhook/"
    processes = [
        start(env, "-m", "sandbox.pve", "serve", *pve, "--time-scale", "1"),
        start(env, "-m", "sandbox.stripe", "serve", "--port", str(STRIPE_PORT),
              "--webhook-url", webhook, "--webhook-secret", "whsec_bench"),
        start(env, "-m", "gunicorn", "portal.wsgi", "-w", "2", "-b", f"127.0.0.1:{WEB_PORT}",
              "--log-level", "warning"),
    ]  # fmt: skip
    wait_for(lambda: answers(f"http://127.0.0.1:{STRIPE_PORT}/v1/prices"), 30, "the sandbox")
    manage(env, "seed_demo", "--pve-cluster", str(VAR / "fakepve" / "cluster.json"))
    processes += [
        start(env, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
              f"--hostname=upgrade{i}@%h", "--without-gossip", "--without-mingle")
        for i in range(workers)
    ]  # fmt: skip
    wait_for(lambda: answers(f"http://127.0.0.1:{WEB_PORT}/healthz"), 30, "gunicorn")
    os.environ.update(env)
    import django

    django.setup()
    from portal.celery import app

    wait_for(lambda: len(app.control.ping(timeout=0.5) or []) >= workers, 60, "the workers")
    return processes


def paid_servers(count: int, *, node: str | None = None) -> list:
    """`count` NVMe VPS S servers, paid at checkout with a card later charges decline."""
    from billing.models import Order, Plan
    from billing.orders import checkout_url, order_place
    from instances.models import Instance, Location, Node, OSImage

    if node:  # build them all on one node: close the others meanwhile
        Node.objects.exclude(name=node).update(state="offline")
    customer = _customer()
    orders = []
    for i in range(count):
        order = order_place(
            owner=customer, plan_id=Plan.objects.get(slug="nvme-vps-s").pk,
            location_id=Location.objects.get().pk,
            os_image_id=OSImage.objects.get(slug="debian-12").pk,
            hostname=f"up{node or ''}{i}", ssh_key_ids=[], generate_password=True,
        )  # fmt: skip
        checkout_url(order)
        order.refresh_from_db()
        _control(
            f"/_sandbox/checkout/{order.stripe_checkout_session_id}/pay", card_number=LATER_DECLINED
        )
        orders.append(order.pk)

    def built() -> bool:
        ids = Order.objects.filter(pk__in=orders).values_list("instance_id", flat=True)
        return (
            None not in ids
            and Instance.objects.filter(pk__in=ids, status="running").count() == count
        )

    wait_for(built, 120 + 20 * count, f"{count} servers")
    Node.objects.update(state="active")
    return list(Instance.objects.filter(order__pk__in=orders).order_by("pk"))


def _customer():
    from accounts.models import User

    return User.objects.get(email="demo@portal.example.com")


def _control(path: str, **form: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{STRIPE_PORT}{path}",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Authorization": "Bearer sk_test_sandbox"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def upgrade_one(server, *, migrate: bool) -> dict:
    """Confirm an upgrade to NVMe VPS M (declined: it waits), pay its invoice, time to applied."""
    from billing import upgrades
    from billing.models import Plan, Upgrade
    from instances.models import InstanceOperation, Node
    from sandbox import pve as demo
    from sandbox import pve_migrate

    target = Plan.objects.get(slug="nvme-vps-m")
    if migrate:  # its node keeps room for what it has, not for the new size
        Node.objects.filter(pk=server.node_id).update(memory_mib=6 * 1024)
    options = upgrades.upgrade_options(_customer(), server)
    token = next(option.token for option in options if option.plan == target)
    upgrade = upgrades.upgrade_confirm(user=_customer(), instance=server, token=token)
    assert upgrade.state == Upgrade.State.AWAITING_PAYMENT, upgrade.state
    form = urllib.parse.urlencode({"card_number": GOOD, "expiry": "12 / 34", "cvc": "123"})
    urllib.request.urlopen(upgrade.hosted_invoice_url + "/pay", form.encode(), timeout=30).read()
    paid = time.time()
    resize = InstanceOperation.objects.filter(instance=server, kind="resize")
    wait_for(lambda: resize.filter(state="succeeded").exists(), 120, f"the upgrade of {server}")
    done = resize.get().finished_at.timestamp()
    pve = demo.TASK_SECS["resize"]
    if migrate:
        pve += pve_migrate.MIGRATE_SECS + pve_migrate.COPY_SECS_PER_GIB * server.disk_gib
    Node.objects.filter(pk=server.node_id).update(memory_mib=128 * 1024)
    return {
        "wall_s": round(done - paid, 3),
        "pve_s": round(pve, 3),
        "overhead_s": round(done - paid - pve, 3),
    }


def drain_one(count: int) -> dict:
    """Drain a node holding `count` servers (and whatever else is on it): time to empty."""
    from instances import drain
    from instances.models import Instance, InstanceOperation, Node
    from sandbox import pve_migrate

    paid_servers(count, node="pve-c")
    source = Node.objects.get(name="pve-c")
    on_node = list(Instance.objects.filter(node=source, status="running"))
    pve = sum(
        pve_migrate.MIGRATE_SECS + pve_migrate.COPY_SECS_PER_GIB * server.disk_gib
        for server in on_node
    )
    started = time.time()
    drain.drain_start(node=source, actor_user=None)
    drain.drain_advance(source.pk)  # drain_start asks after commit; here there is no transaction
    moving = InstanceOperation.objects.filter(kind="migrate", state__in=["queued", "running"])
    left = Instance.objects.filter(node=source)
    wait_for(lambda: not left.exists() and not moving.exists(), 60 + 30 * len(on_node), "the drain")
    wall = time.time() - started
    Node.objects.filter(pk=source.pk).update(state="active")
    return {
        "servers": len(on_node),
        "wall_s": round(wall, 1),
        "servers_per_min": round(60 * len(on_node) / wall, 2),
        "pve_s": round(pve, 2),
        "overhead_s_per_server": round((wall - pve) / len(on_node), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrades", type=int, default=8, help="of each kind (live, migrate)")
    parser.add_argument("--drain", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    processes = setup(args.workers)
    try:
        cpu = [cpu_seconds(p) for p in processes]
        drained = drain_one(args.drain)  # first: the drained node holds only its own servers
        servers = paid_servers(2 * args.upgrades + 1)
        upgrade_one(servers[0], migrate=False)  # warm-up: the engine learns how long PVE takes
        live = [upgrade_one(s, migrate=False) for s in servers[1 : args.upgrades + 1]]
        moved = [upgrade_one(s, migrate=True) for s in servers[args.upgrades + 1 :]]
        cpu = [round(cpu_seconds(p) - before, 1) for p, before in zip(processes, cpu, strict=True)]
    finally:
        stop(processes)

    def summary(rows: list[dict]) -> dict:
        overhead = [r["overhead_s"] for r in rows]
        walls = [r["wall_s"] for r in rows]
        return {
            "count": len(rows),
            "wall_p50_s": _q(walls, 50),
            "wall_p95_s": _q(walls, 95),
            "pve_s": rows[0]["pve_s"] if rows else None,
            "overhead_p50_s": _q(overhead, 50),
            "overhead_p95_s": _q(overhead, 95),
            "runs": rows,
        }

    result = {
        "workers": args.workers,
        "database": "postgresql",
        "broker": "redis" if os.environ.get("REDIS_URL") else "filesystem",
        "cpus": os.cpu_count(),
        "live": summary(live),
        "with_migration": summary(moved),
        "drain": drained,
        "cpu_s": dict(
            zip(
                ["fakepve", "stripe", "gunicorn", *(f"worker{i}" for i in range(args.workers))],
                cpu,
                strict=True,
            )
        ),
    }
    for label in ("live", "with_migration"):
        row = result[label]
        print(
            f"{label:>15}: paid → applied p50 {row['wall_p50_s']} s, p95 {row['wall_p95_s']} s; "
            f"PVE {row['pve_s']} s; portal overhead p50 {row['overhead_p50_s']} s, "
            f"p95 {row['overhead_p95_s']} s ({row['count']} upgrades)"
        )
    print(
        f"drain of {drained['servers']} servers: {drained['wall_s']} s, "
        f"{drained['servers_per_min']} servers a minute ({drained['pve_s']} s of PVE in all, "
        f"overhead {drained['overhead_s_per_server']} s per server)"
    )
    out = ROOT / "bench" / "results" / "upgrade.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
