"""Page benchmark: the customer's dashboard, server page and status partial under load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/pages.py

Creates a throwaway PostgreSQL database `portal_bench_pages` on the DATABASE_URL server (migrated
from scratch, dropped at the end unless --keep-database), seeds 200 customers with 5 running
servers each (nodes, IP addresses, builds and power operations with their timeline, traffic),
starts gunicorn with 2 sync workers on a free port with DEBUG=0, signs in as one customer
through the login form, and loads each page with wrk for 30 s: the reference view
(bench/pages_urls.py: the same middleware and session, one query, a tiny template), the
dashboard, a server page (a full timeline), and the status partial the server page polls while
an operation runs. The 30 s come in 10 interleaved rounds of 3 s (reference, dashboard, server
page, partial, then again), so a neighbour that loads the machine for a while slows every page
alike; each page's throughput is reported as a ratio to the reference's over the same rounds
(and the spread of the per-round ratios), with latency percentiles over every request. Needs
wrk (Debian: apt-get install wrk). Prints a table and writes bench/results/pages.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "bench-pages"
DATABASE = "portal_bench_pages"
PORTS_IN_USE_BY_MAKE_RUN = {8000, 8006, 12111}
GOAL_RATIO = 0.5
GOAL_P95_MS = 100.0

# wrk's per-thread state is read in done(): `unexpected` counts answers whose status is not the
# one the page must give (a redirect to the login would be fast). The latency histogram is
# printed whole (microseconds:count), so slices of one page merge into exact percentiles.
WRK_SCRIPT = """
local expected = 200
unexpected = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) if args[1] then expected = tonumber(args[1]) end end
function response(status, headers, body)
  if status ~= expected then unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  local e = summary.errors
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    hist[#hist + 1] = string.format("%d:%d", value, count)
  end
  io.write(string.format(
    'WRK-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "unexpected_status": %d, '
    .. '"errors": %d, "histogram": "%s"}\\n',
    summary.requests, summary.duration, summary.bytes, bad,
    e.connect + e.read + e.write + e.timeout, table.concat(hist, ",")))
end
"""


# --- Database, environment, processes ----------------------------------------------------------


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("bench/pages.py measures on PostgreSQL: set DATABASE_URL=postgres://...")
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


def reset_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")


def drop_database(url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def bench_env(url: str, port: int) -> dict[str, str]:
    """Production-like: DEBUG off (no query log, compiled static manifest), no TLS redirect
    (wrk speaks plain HTTP to gunicorn, as a TLS proxy would)."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "bench.pages_settings",
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),  # this run's only, never written down
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "BEHIND_TLS_PROXY": "0",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "VAR_DIR": str(VAR),
        "CACHE_KEY_PREFIX": "portal-bench-pages",
        "EMAIL_URL": "locmem:",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("FIELD_ENCRYPTION_KEYS", None)
    env.pop("FIELD_ENCRYPTION_KEY", None)
    return env


def manage(env, *args) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in PORTS_IN_USE_BY_MAKE_RUN:
            return port


def start_gunicorn(env, port: int, workers: int) -> subprocess.Popen:
    log = open(VAR / "gunicorn.log", "w")  # noqa: SIM115 (the process keeps it)
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--chdir", str(ROOT),
         "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wait_until_serving(base: str, process: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited ({process.returncode}); see {VAR / 'gunicorn.log'}")
        try:
            requests.get(f"{base}/accounts/login/", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)  # gunicorn is still importing the project
    sys.exit("gunicorn did not answer within 60 s")


# --- Seed --------------------------------------------------------------------------------------


@contextmanager
def explicit_timestamps(*models):
    """Let bulk_create keep the created_at values we give (a history over months, not one
    instant): auto_now_add would overwrite them."""
    fields = [model._meta.get_field("created_at") for model in models]
    for field in fields:
        field.auto_now_add = False
    try:
        yield
    finally:
        for field in fields:
            field.auto_now_add = True


HOSTNAMES = ["web1", "db1", "mail", "app2", "backup"]
PLANS = [
    ("nvme_vps", "NVMe S", 2, False, 4096, 80, "nvme", 20),
    ("nvme_vps", "NVMe M", 4, False, 8192, 160, "nvme", 20),
    ("storage_vps", "Storage L", 2, False, 4096, 1000, "bulk", 20),
    ("vds", "VDS 4", 4, True, 16384, 240, "nvme", 30),
    ("nvme_vps", "NVMe XS", 1, False, 2048, 40, "nvme", 10),
]
BUILD_EVENTS = [
    ("", "queued", "", "Server ordered."),
    ("queued", "provisioning", "reserve", "Build started."),
    ("", "", "clone", "Copying the OS image…"),
    ("", "", "configure", "Configuring…"),
    ("", "", "resize", "Growing the disk…"),
    ("", "", "start", "Starting…"),
    ("", "", "wait_running", "Booting…"),
    ("provisioning", "running", "ready", "Your server is ready."),
]

# What a customer's operations write on a running server's timeline (instances/operations/).
POWER_HISTORY = [
    ("reboot", "Reboot requested.", "Server rebooted."),
    ("reboot", "Reboot requested.", "Server rebooted."),
    ("reset", "Reset requested.", "Server reset."),
    ("shutdown", "Shutdown requested.", "Server shut down."),
    ("start", "Start requested.", "Server started."),
]


def seed(customers: int, per_customer: int, password: str, rng: random.Random) -> dict:
    """Customers with verified email and a profile, each with running servers on two
    locations' nodes, their builds, a few power operations and the timeline they wrote."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import CustomerProfile, User
    from instances.models import (
        Cluster,
        Instance,
        InstanceEvent,
        InstanceOperation,
        InstanceTraffic,
        IPAddress,
        IPPool,
        Location,
        Node,
        NodeStorage,
        OSImage,
        OSTemplate,
        StoragePool,
    )

    now = timezone.now()
    images = OSImage.objects.bulk_create(
        OSImage(slug=slug, name=name, family=slug.split("-")[0], default_user=user, display_order=i)
        for i, (slug, name, user) in enumerate(
            [
                ("debian-12", "Debian 12", "debian"),
                ("debian-13", "Debian 13", "debian"),
                ("ubuntu-24-04", "Ubuntu 24.04", "ubuntu"),
                ("rocky-9", "Rocky Linux 9", "rocky"),
                ("alma-9", "AlmaLinux 9", "almalinux"),
            ]
        )  # fmt: skip
    )
    total = customers * per_customer
    places = []
    for index, (code, name, country) in enumerate(
        [("eu-central-1", "Frankfurt", "DE"), ("eu-north-1", "Helsinki", "FI")]
    ):
        location = Location.objects.create(code=code, name=name, country=country)
        cluster = Cluster.objects.create(
            location=location, name=f"{code}-pve", api_url=f"https://pve.{code}.example.net:8006",
            token_id="portal@pve!portal",
        )  # fmt: skip
        pools = StoragePool.objects.bulk_create(
            [StoragePool(cluster=cluster, name="nvme", storage_class="nvme"),
             StoragePool(cluster=cluster, name="bulk", storage_class="bulk")]
        )  # fmt: skip
        nodes = Node.objects.bulk_create(
            Node(cluster=cluster, name=f"pve-{n}", cores=64, memory_mib=512 * 1024)
            for n in range(6)
        )
        NodeStorage.objects.bulk_create(
            NodeStorage(node=node, pool=pool, capacity_gib=20000)
            for node in nodes
            for pool in pools
        )
        OSTemplate.objects.bulk_create(
            OSTemplate(image=image, cluster=cluster, vmid=9000 + i)
            for i, image in enumerate(images)
        )
        pool = IPPool.objects.create(
            location=location, name=f"{code}-v4", network=f"100.{64 + index}.0.0/21",
            gateway=f"100.{64 + index}.0.1", ipv6_prefix=f"2001:db8:{index + 1}::/48",
        )  # fmt: skip
        addresses = IPAddress.objects.bulk_create(
            IPAddress(pool=pool, address=f"100.{64 + index}.{1 + n // 250}.{2 + n % 250}")
            for n in range(total // 2 + 100)
        )
        places.append((location, cluster, nodes, addresses))

    hashed = make_password(password)
    users = User.objects.bulk_create(
        User(username=f"customer{n}", email=f"customer{n}@bench.example.com", password=hashed,
             first_name=f"Customer {n}")
        for n in range(customers)
    )  # fmt: skip
    EmailAddress.objects.bulk_create(
        EmailAddress(user=user, email=user.email, verified=True, primary=True) for user in users
    )
    CustomerProfile.objects.bulk_create(
        CustomerProfile(user=user, full_name=f"Customer {n}", address_line1="Hauptstraße 5",
                        postal_code="10115", city="Berlin", country="DE", phone="+49 30 1234567")
        for n, user in enumerate(users)
    )  # fmt: skip

    measured = users[customers // 2]
    instances = []
    for n, user in enumerate(users):
        for k in range(per_customer):
            location, cluster, nodes, addresses = places[(n + k) % 2]
            family, plan, vcpus, dedicated, memory, disk, storage, traffic = PLANS[k]
            slot = (n * per_customer + k) // 2
            created = now - dt.timedelta(days=rng.randint(20, 700), minutes=rng.randint(0, 1440))
            instances.append(
                Instance(
                    owner=user, hostname=HOSTNAMES[k], location=location, family=family,
                    plan_name=plan, vcpus=vcpus, dedicated_cores=dedicated, memory_mib=memory,
                    disk_gib=disk, storage_class=storage, traffic_tb=traffic,
                    os_image=images[(n + k) % len(images)], cluster=cluster,
                    node=nodes[slot % len(nodes)], vmid=1000 + slot, ipv4=addresses[slot],
                    ipv6=f"2001:db8:{(n + k) % 2 + 1}:{slot:x}::1", status="running",
                    observed_at=now, created_at=created,
                    ready_at=created + dt.timedelta(seconds=25),
                )
            )  # fmt: skip
    with explicit_timestamps(Instance):
        Instance.objects.bulk_create(instances)
    IPAddress.objects.filter(pk__in=[i.ipv4_id for i in instances]).update(state="assigned")

    operations, events, traffic = [], [], []
    histories = []  # (instance, operation, [(at, old, new, step, message, actor)])
    for instance in instances:
        at = instance.created_at
        build = InstanceOperation(
            instance=instance, kind="build", state="succeeded", step="ready", chain="bench",
            created_at=at, started_at=at, finished_at=instance.ready_at,
        )  # fmt: skip
        histories.append(
            (build, [(at + dt.timedelta(seconds=3 * i), *event, "system")
                     for i, event in enumerate(BUILD_EVENTS)])
        )  # fmt: skip
        operations.append(build)
        days = (now - at).days
        # The measured customer's servers have a long history: their timelines are full (the
        # page shows the newest 50 entries).
        history = rng.randint(25, 30) if instance.owner_id == measured.pk else rng.randint(1, 8)
        for _ in range(history):
            at_op = at + dt.timedelta(days=rng.randint(1, max(1, days - 1)), hours=rng.random())
            kind, requested, done = rng.choice(POWER_HISTORY)
            op = InstanceOperation(
                instance=instance, kind=kind, state="succeeded", step=kind, chain="bench",
                actor="customer", actor_user=instance.owner, created_at=at_op, started_at=at_op,
                finished_at=at_op + dt.timedelta(seconds=20),
            )  # fmt: skip
            histories.append(
                (op, [(at_op, "", "", "", requested, "customer"),
                      (at_op + dt.timedelta(seconds=20), "", "", kind, done, "system")])
            )  # fmt: skip
            operations.append(op)
        for month in range(3):
            start = now - dt.timedelta(days=30 * (month + 1))
            traffic.append(
                InstanceTraffic(
                    instance=instance,
                    period_start=start,
                    period_end=start + dt.timedelta(30),
                    bytes_in=rng.randint(10**9, 10**12),
                    bytes_out=rng.randint(10**9, 10**12),
                )
            )
    # The measured customer's second server is rebooting: the partial the page polls is live.
    live_server = next(i for i in instances if i.owner_id == measured.pk and i.hostname == "db1")
    live = InstanceOperation(
        instance=live_server, kind="reboot", state="running", step="reboot", chain="bench",
        actor="customer", actor_user=measured, created_at=now, started_at=now,
    )  # fmt: skip
    operations.append(live)
    histories.append((live, [(now, "", "", "", "Reboot requested.", "customer")]))
    with explicit_timestamps(InstanceOperation, InstanceEvent):
        InstanceOperation.objects.bulk_create(operations)
        for operation, marks in histories:
            for at, old, new, step, message, actor in marks:
                events.append(
                    InstanceEvent(
                        instance_id=operation.instance_id, operation=operation, created_at=at,
                        old_status=old, new_status=new, step=step, message=message, actor=actor,
                        actor_user=operation.actor_user if actor == "customer" else None,
                    )
                )  # fmt: skip
        InstanceEvent.objects.bulk_create(events, batch_size=5000)
    InstanceTraffic.objects.bulk_create(traffic, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    page_server = next(i for i in instances if i.owner_id == measured.pk and i.hostname == "web1")
    return {
        "email": measured.email,
        "user_id": measured.pk,
        "server_id": page_server.pk,
        "live_server_id": live_server.pk,
        "rows": {
            "customers": len(users),
            "servers": len(instances),
            "operations": len(operations),
            "events": len(events),
            "traffic_periods": len(traffic),
        },
    }


# --- Measuring ---------------------------------------------------------------------------------


def sign_in(base: str, email: str, password: str) -> str:
    """Sign in through the login form, as a browser does; the Cookie header to send."""
    import requests

    form = requests.get(f"{base}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    response = requests.post(
        f"{base}/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"Cookie": f"csrftoken={form.cookies['csrftoken']}", "Referer": base + "/"},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302 or "sessionid" not in response.cookies:
        sys.exit(f"signing in failed: {response.status_code}")
    # The secure cookies are not sent back over plain HTTP by a cookie jar: send them by hand.
    csrf = response.cookies.get("csrftoken") or form.cookies["csrftoken"]
    return f"sessionid={response.cookies['sessionid']}; csrftoken={csrf}"


def check_page(base: str, page: dict, cookie: str) -> None:
    import requests

    response = requests.get(
        base + page["path"], headers={"Cookie": cookie, **page["headers"]},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    if response.status_code != page["status"] or page["contains"] not in response.text:
        sys.exit(f"{page['name']}: {response.status_code}, not the page expected; see the output")


def count_queries(pages: list[dict], user_id: int) -> dict[str, int]:
    """SQL queries per request, session and user included (the second request of two)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=user_id))
    counts = {}
    for page in pages:
        client.get(page["path"], headers=page["headers"])
        with CaptureQueriesContext(connection) as captured:
            client.get(page["path"], headers=page["headers"])
        counts[page["name"]] = len(captured)
    return counts


def load(base: str, page: dict, cookie: str, seconds: int, connections: int) -> dict:
    """One wrk run against one page: requests, duration, bytes and the latency histogram."""
    script = VAR / "wrk.lua"
    script.write_text(WRK_SCRIPT)
    headers = ["-H", f"Cookie: {cookie}"]
    for name, value in page["headers"].items():
        headers += ["-H", f"{name}: {value}"]
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", *headers,
               "-s", str(script), base + page["path"], "--", str(page["status"])]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK-RESULT "))
    raw = json.loads(line.removeprefix("WRK-RESULT "))
    if raw["unexpected_status"] or raw["errors"]:
        sys.exit(
            f"{page['name']}: {raw['unexpected_status']} wrong answers, {raw['errors']} errors"
        )
    raw["histogram"] = [
        tuple(int(n) for n in pair.split(":")) for pair in raw["histogram"].split(",") if pair
    ]
    return raw


def summarise(slices: list[dict]) -> dict:
    """A page's slices together: throughput over their summed duration, exact percentiles of
    every request's latency."""
    requests = sum(s["requests"] for s in slices)
    seconds = sum(s["duration_us"] for s in slices) / 1e6
    counts: dict[int, int] = {}
    for s in slices:
        for value, count in s["histogram"]:
            counts[value] = counts.get(value, 0) + count
    ordered = sorted(counts.items())
    total = sum(counts.values())

    def percentile(p: float) -> float:
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= p / 100 * total:
                return round(value / 1000, 1)
        return round(ordered[-1][0] / 1000, 1)

    return {
        "req_s": round(requests / seconds, 1),
        "requests": requests,
        "seconds": round(seconds, 1),
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "max_ms": round(ordered[-1][0] / 1000, 1),
        "kb_per_response": round(sum(s["bytes"] for s in slices) / max(1, requests) / 1024, 1),
        "req_s_per_round": [round(s["requests"] / (s["duration_us"] / 1e6), 1) for s in slices],
    }


def machine() -> dict:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "database": f"PostgreSQL {postgres}",
        "cache": "redis" if os.environ.get("REDIS_URL") else "database",
        "python": platform.python_version(),
        "django": django.get_version(),
        "load_generator": " ".join(wrk[:2]) if wrk else "wrk",
    }


def code_state() -> dict:
    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", "instances", "templates", "portal", "bench")
    return {
        "head": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": changed.split()[1::2],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="per page")
    parser.add_argument(
        "--rounds", type=int, default=10, help="slices per page, interleaved with the others"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds per page before measuring")
    parser.add_argument("--connections", type=int, default=4, help="wrk's open connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--servers", type=int, default=5, help="per customer")
    parser.add_argument("--keep-database", action="store_true", help="to profile afterwards")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "pages.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/pages.py needs wrk: apt-get install wrk (Debian/Ubuntu), brew install wrk")
        return 2

    url = bench_database_url()
    port = free_port()
    env = bench_env(url, port)
    reset_database(url)
    VAR.mkdir(parents=True, exist_ok=True)
    manage(env, "migrate", "--noinput")
    manage(env, "createcachetable")
    manage(env, "collectstatic", "--noinput", "--clear")
    os.environ.update(env)
    import django

    django.setup()
    password = secrets.token_urlsafe(16)
    started = time.monotonic()
    seeded = seed(args.customers, args.servers, password, random.Random(9))
    print(f"seeded {seeded['rows']} in {time.monotonic() - started:.0f} s")
    machine_facts = machine()
    from django.db import connection

    connection.close()  # the gunicorn workers open their own

    server, live = seeded["server_id"], seeded["live_server_id"]
    live_url = f"http://127.0.0.1:{port}/servers/{live}/"
    pages = [
        {"name": "reference", "path": "/bench/reference/", "headers": {}, "contains": "servers."},
        {"name": "dashboard", "path": "/servers/", "headers": {}, "contains": "reboot in progress"},
        {"name": "server page", "path": f"/servers/{server}/", "headers": {},
         "contains": "Timeline"},
        {"name": "status partial", "path": f"/servers/{live}/", "contains": "hx-swap-oob",
         "headers": {"HX-Request": "true", "HX-Current-URL": live_url}},
    ]  # fmt: skip
    for page in pages:
        page["status"] = 200
    base = f"http://127.0.0.1:{port}"
    gunicorn = start_gunicorn(env, port, args.workers)
    load_before = os.getloadavg()
    try:
        wait_until_serving(base, gunicorn)
        cookie = sign_in(base, seeded["email"], password)
        for page in pages:
            check_page(base, page, cookie)
        queries = count_queries(pages, seeded["user_id"])
        connection.close()
        for page in pages:  # every worker has compiled its templates and opened its connection
            load(base, page, cookie, args.warmup, args.connections)
        slices: dict[str, list[dict]] = {page["name"]: [] for page in pages}
        slice_seconds = max(1, round(args.seconds / args.rounds))  # wrk takes whole seconds
        for round_ in range(args.rounds):
            for page in pages:
                slices[page["name"]].append(
                    load(base, page, cookie, slice_seconds, args.connections)
                )
            print(f"  round {round_ + 1}/{args.rounds}: " + ", ".join(
                f"{name} {s[-1]['requests'] / (s[-1]['duration_us'] / 1e6):.0f}"
                for name, s in slices.items()) + " req/s")  # fmt: skip
        for page in pages:
            check_page(base, page, cookie)  # still signed in: nothing measured was a redirect
    finally:
        load_after = os.getloadavg()
        stop(gunicorn)
        connection.close()
        if not args.keep_database:
            drop_database(url)

    report = {
        page["name"]: {"path": page["path"], "queries": queries[page["name"]]}
        | summarise(slices[page["name"]])
        for page in pages
    }
    reference = report["reference"]
    for page in pages[1:]:
        row = report[page["name"]]
        row["ratio"] = round(row["req_s"] / reference["req_s"], 2)
        per_round = [
            mine / theirs
            for mine, theirs in zip(
                row["req_s_per_round"], reference["req_s_per_round"], strict=True
            )
        ]
        row["ratio_per_round"] = {
            "min": round(min(per_round), 2),
            "median": round(statistics.median(per_round), 2),
            "max": round(max(per_round), 2),
        }
    goal_met = all(
        report[p["name"]]["ratio"] >= GOAL_RATIO and report[p["name"]]["p95_ms"] < GOAL_P95_MS
        for p in pages[1:]
    )
    print(f"\n{'page':<15} {'req/s':>7} {'ratio':>6} {'rounds (min-median-max)':>24} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'queries':>7}")  # fmt: skip
    for name, row in report.items():
        spread = row.get("ratio_per_round")
        spread = f"{spread['min']}-{spread['median']}-{spread['max']}" if spread else ""
        print(
            f"{name:<15} {row['req_s']:>7} {row.get('ratio', 1.0):>6} {spread:>24} "
            f"{row['p50_ms']:>7} {row['p95_ms']:>7} {row['p99_ms']:>7} {row['queries']:>7}"
        )
    print(
        f"reference per round: {reference['req_s_per_round']} req/s; goal "
        f"(each page >= {GOAL_RATIO}x the reference, p95 < {GOAL_P95_MS:.0f} ms): "
        f"{'met' if goal_met else 'NOT met'}"
    )
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts
        | {
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "setup": {
            "gunicorn_workers": args.workers,
            "gunicorn_worker_class": "sync",
            "debug": False,
            "load": f"wrk -t1 -c{args.connections} on the same machine, {args.rounds} rounds of "
            f"{slice_seconds} s per page after a {args.warmup} s warm-up each",
            "seeded": seeded["rows"],
            "order": "each round: reference, dashboard, server page, status partial",
            "ratio": "page req/s / reference req/s, both over the same rounds",
        },
        "code": code_state(),
        "goal": {"ratio_at_least": GOAL_RATIO, "p95_ms_below": GOAL_P95_MS, "met": goal_met},
        "pages": report,
    }
    out = Path(args.output)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
