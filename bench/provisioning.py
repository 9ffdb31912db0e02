"""Provisioning benchmark: N paid orders through real Celery workers against the demo cluster.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/provisioning.py

Uses a throwaway database `portal_bench` on the DATABASE_URL server (SQLite under var/bench
without it), fakepve at the demo's realistic task durations, and 1, 2 and 4 worker processes.
Reports per-step times, the portal's own overhead per server (wall time from "build queued"
to "ready" minus the PVE time it had to wait for: clone, resize and boot) for servers built one
at a time and for a burst of N at once (where waiting for a free worker counts as overhead
too), throughput, and the CPU time workers and the fake spend per server.
Prints a table and writes bench/results/provisioning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "bench"
PORT = 8106


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return ""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/portal_bench"))


def reset_database(url: str) -> None:
    if not url:
        (VAR / "portal.sqlite3").unlink(missing_ok=True)
        return
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS portal_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE portal_bench")


def env_for(url: str) -> dict[str, str]:
    env = os.environ | {"VAR_DIR": str(VAR), "LOG_LEVEL": "WARNING"}
    if url:
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    return env


def manage(env, *args) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def start(env, *command) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def cpu_seconds(process: subprocess.Popen) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round(
    orders: int, workers: int, time_scale: float, *, one_at_a_time: bool = False, warmup: int = 0
):
    url = bench_database_url()
    reset_database(url)
    env = env_for(url)
    VAR.mkdir(parents=True, exist_ok=True)
    subprocess.run(  # a fresh broker folder: nothing from an earlier round
        ["rm", "-rf", str(VAR / "broker")], check=True
    )
    manage(env, "migrate", "--noinput")
    manage(env, "createcachetable")
    pve_args = ["--var-dir", str(VAR), "--port", str(PORT)]
    subprocess.run(
        [sys.executable, "-m", "sandbox.pve", "prepare", *pve_args], cwd=ROOT, env=env, check=True
    )
    manage(env, "seed_demo", "--pve-cluster", str(VAR / "fakepve" / "cluster.json"))
    processes = [
        start(env, "-m", "sandbox.pve", "serve", *pve_args, "--time-scale", str(time_scale))
    ]
    processes += [
        start(env, "-m", "celery", "-A", "portal", "worker", "--pool=solo",
              f"--hostname=bench{i}@%h", "--without-gossip", "--without-mingle")
        for i in range(workers)
    ]  # fmt: skip
    try:
        os.environ.update(env)
        import django

        if not hasattr(run_round, "django_ready"):
            django.setup()
            run_round.django_ready = True
        from django.db import connection

        connection.close()
        connection.settings_dict.update(_db_settings(url))
        _wait_for_workers(workers)
        cpu_before = [cpu_seconds(p) for p in processes]
        if warmup:
            _forget_learned_waits()
            cold = _measure(warmup, workers, time_scale, one_at_a_time=True)
        result = _measure(orders, workers, time_scale, one_at_a_time=one_at_a_time, skip=warmup)
        if warmup:
            result["cold"] = cold
        cpu = [cpu_seconds(p) - before for p, before in zip(processes, cpu_before, strict=True)]
        result["worker_cpu_per_server_s"] = round(sum(cpu[1:]) / orders, 3)
        result["fakepve_cpu_per_server_s"] = round(cpu[0] / orders, 3)
        return result
    finally:
        stop(processes)


def _db_settings(url: str) -> dict:
    from portal.settings import database_from_url

    if url:
        return database_from_url(url, var_dir=VAR)
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR / "portal.sqlite3")}


def _forget_learned_waits() -> None:
    """The engine learns how long PVE's tasks take (in the cache): start from nothing."""
    from django.core.cache import cache

    cache.clear()


def _measure(
    orders: int, workers: int, time_scale: float, *, one_at_a_time: bool, skip: int = 0
) -> dict:
    """Order `orders` servers (at once, or each after the last is running) and report."""
    from accounts.models import SSHKey, User
    from instances.models import Instance, Location, OSImage
    from instances.services import InstanceSpec, instance_create
    from sandbox import pve as demo

    customer = User.objects.get(email="demo@portal.example.com")
    key = SSHKey.objects.filter(owner=customer).first()
    spec = InstanceSpec("nvme_vps", "NVMe S", 1, False, 1024, 20, "nvme")
    location = Location.objects.get(code=demo.LOCATION["code"])
    image = OSImage.objects.get(slug="debian-12")

    def create(i: int) -> int:
        return instance_create(
            owner=customer, hostname=f"bench{i}", location=location, os_image=image, spec=spec,
            ssh_key_ids=[key.pk] if key else [], generate_password=key is None,
            reason="Build queued.",
        ).pk  # fmt: skip

    def settle(ids: list[int]) -> None:
        deadline = time.monotonic() + 60 + len(ids) * 20 * max(time_scale, 0.05)
        while time.monotonic() < deadline:
            pending = Instance.objects.filter(pk__in=ids, status__in=["queued", "provisioning"])
            if not pending.exists():
                return
            time.sleep(0.2)  # polling the database for the end of the round, bounded above

    if one_at_a_time:
        ids = []
        for i in range(skip, skip + orders):
            ids.append(create(i))
            settle(ids[-1:])
    else:
        ids = [create(i) for i in range(orders)]
        settle(ids)
    pve_wait = (demo.TASK_SECS["qmclone"] + demo.TASK_SECS["resize"] + demo.START_SECS) * time_scale
    return _report(ids, workers, pve_wait)


def _wait_for_workers(count: int) -> None:
    """Orders go in once every worker answers, so worker start-up is not counted."""
    from portal.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or []) >= count:
            return
    print(f"warning: not all {count} workers answered a ping; measuring anyway")


def _report(ids: list[int], workers: int, pve_wait: float) -> dict:
    from instances.models import Instance

    steps: dict[str, list[float]] = {}
    walls, overheads, starts, ends = [], [], [], []
    instances = Instance.objects.filter(pk__in=ids).prefetch_related("events")
    for instance in instances:
        events = sorted(instance.events.all(), key=lambda e: (e.created_at, e.id))
        queued = next(e for e in events if e.new_status == "queued").created_at
        starts.append(queued)
        if instance.status != "running":
            continue
        ends.append(instance.ready_at)
        wall = (instance.ready_at - queued).total_seconds()
        walls.append(wall)
        overheads.append(wall - pve_wait)
        marks = [e for e in events if e.created_at >= queued]
        for before, after in zip(marks, marks[1:], strict=False):
            label = before.message[:40]
            steps.setdefault(label, []).append(
                (after.created_at - before.created_at).total_seconds()
            )
    span = (max(ends) - min(starts)).total_seconds() if ends else float("nan")
    return {
        "workers": workers,
        "orders": len(ids),
        "running": len(walls),
        "failed": instances.filter(status="failed").count(),
        "pve_wait_s": round(pve_wait, 3),
        "wall_p50_s": _q(walls, 50),
        "wall_p95_s": _q(walls, 95),
        "overhead_p50_s": _q(overheads, 50),
        "overhead_p95_s": _q(overheads, 95),
        "throughput_per_min": round(60 * len(walls) / span, 2) if walls else 0,
        "steps_mean_s": {k: round(statistics.mean(v), 3) for k, v in steps.items()},
    }


def _q(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--time-scale", type=float, default=1.0, help="1.0 = realistic durations")
    parser.add_argument(
        "--alone", type=int, default=10, help="orders built one at a time, for latency"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="builds before those, from an empty cache (the engine has learned nothing yet)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    alone = run_round(args.alone, 1, args.time_scale, one_at_a_time=True, warmup=args.warmup)
    workers = [int(n) for n in args.workers.split(",") if n]
    rounds = [run_round(args.orders, n, args.time_scale) for n in workers]
    cold = alone["cold"]
    print(
        f"first {args.warmup} builds, nothing learned yet: overhead {cold['overhead_p50_s']} s "
        f"(p50), {cold['overhead_p95_s']} s (max)"
    )
    print(
        f"then one at a time ({alone['running']} servers): overhead p50 "
        f"{alone['overhead_p50_s']} s, p95 {alone['overhead_p95_s']} s; worker CPU "
        f"{alone['worker_cpu_per_server_s']} s and fakepve CPU "
        f"{alone['fakepve_cpu_per_server_s']} s per server"
    )
    for label, seconds in alone["steps_mean_s"].items():
        print(f"  {seconds:>7}  {label}")
    if rounds:
        print(f"{args.orders} orders at once:")
        header = f"{'workers':>7} {'ok':>4} {'fail':>4} {'wall p50':>9} {'wall p95':>9} "
        header += f"{'overhead p50':>13} {'overhead p95':>13} {'per min':>8} "
        header += f"{'worker CPU/srv':>15} {'fakepve CPU/srv':>16}"
        print(header)
    for r in rounds:
        print(
            f"{r['workers']:>7} {r['running']:>4} {r['failed']:>4} {r['wall_p50_s']:>9} "
            f"{r['wall_p95_s']:>9} {r['overhead_p50_s']:>13} {r['overhead_p95_s']:>13} "
            f"{r['throughput_per_min']:>8} {r['worker_cpu_per_server_s']:>15}"
            f" {r['fakepve_cpu_per_server_s']:>16}"
        )
    if rounds:
        print("mean time per step (s), last round:")
        for label, seconds in rounds[-1]["steps_mean_s"].items():
            print(f"  {seconds:>7}  {label}")
    result = {
        "orders": args.orders,
        "time_scale": args.time_scale,
        "poll_s": float(os.environ.get("OPERATION_POLL", "0.5")),
        "database": "postgresql" if bench_database_url() else "sqlite",
        "broker": "redis" if os.environ.get("REDIS_URL") else "filesystem",
        "cpus": os.cpu_count(),
        "one_at_a_time": alone,
        "rounds": rounds,
    }
    out = ROOT / "bench" / "results" / "provisioning.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
