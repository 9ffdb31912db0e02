"""The soak's machinery: a broker it may restart, real Celery workers it may SIGKILL, and a
webhook endpoint in front of the live server that it may make answer 500.

Everything the portal runs is real: the workers are other processes on the test's database
(PostgreSQL, or the SQLite test file) and broker; the live server receives the Stripe sandbox's
signed webhooks through the proxy below.
"""

from __future__ import annotations

import email
import email.header
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database as a DATABASE_URL for the workers."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).absolute()}"
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _reset_publishing() -> None:
    """Celery's connection and producer pools are made once per broker URL: drop them so the
    next task sent from this process (webhooks, beat work) opens a connection to the new one."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


# --- The broker -------------------------------------------------------------------------------


class Broker:
    """With REDIS_URL set: a Redis of the soak's own (the machine's Redis is shared, so it is
    never the one restarted), without persistence, that `restart` kills and starts again empty.
    Without it: the embedded filesystem broker, whose `restart` deletes every queued message."""

    def __init__(self, tmp_path: Path):
        self.redis = bool(settings.REDIS_URL)
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None
        self.port = free_port() if self.redis else 0
        self.url = f"redis://127.0.0.1:{self.port}/0" if self.redis else ""

    def env(self) -> dict[str, str]:
        if self.redis:
            return {"REDIS_URL": self.url}
        # The workers' VAR_DIR/broker is this process's broker folder.
        return {"REDIS_URL": "", "VAR_DIR": str(settings.BROKER_DIR.parent)}

    def start(self) -> None:
        if not self.redis:
            self.purge()
            return
        log = open(self.tmp_path / "redis.log", "a")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.tmp_path),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        import redis

        def answers() -> bool:
            try:
                return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
            except redis.RedisError:
                return False

        wait_for(answers, timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def purge(self) -> int:
        """Every queued message gone (the filesystem broker's folder emptied); how many."""
        messages = list((settings.BROKER_DIR / "queue").glob("*"))
        for path in messages:
            path.unlink(missing_ok=True)
        return len(messages)

    def restart(self, down_for: float, while_down=None) -> int:
        """The broker dies and comes back with nothing it held; `down_for` seconds between,
        and `while_down()` called when it is down. Returns the messages lost (known only for
        the filesystem broker, whose restart is its queue emptied)."""
        if not self.redis:
            return self.purge()
        self.stop()
        if while_down is not None:
            while_down()
        time.sleep(down_for)  # the outage itself
        self.start()
        return 0


@pytest.fixture
def broker(settings, tmp_path):
    """The broker of this process (webhooks, beat work), the live server and the workers."""
    found = Broker(tmp_path)
    found.start()
    if found.redis:
        from portal.settings import redis_cache

        old_url = celery_app.conf.broker_url
        settings.REDIS_URL = found.url
        settings.CACHES = {"default": redis_cache(found.url)}
        celery_app.conf.broker_url = found.url
        _reset_publishing()
    yield found
    if found.redis:
        celery_app.conf.broker_url = old_url
        _reset_publishing()
    else:
        found.purge()  # nothing left over for the next test's workers
    found.stop()


# --- The workers ------------------------------------------------------------------------------


class Workers:
    """One Celery worker process at a time (prefork, all queues), started, SIGKILLed, started
    again; each start has its own log in the test's folder."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path = tmp_path
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.concurrency = 3  # pool processes
        self.logs: list[Path] = []

    def start(self) -> None:
        self.starts += 1
        name = f"soak-{self.starts}"
        env = os.environ | self.env
        if not env.get("REDIS_URL"):
            env.pop("REDIS_URL", None)
        command = [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=prefork",
            f"--concurrency={self.concurrency}", f"--hostname={name}@%h", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        log_path = self.tmp_path / f"{name}.log"
        self.logs.append(log_path)
        log = open(log_path, "w")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for(
            lambda: "ready." in log_path.read_text() or self.process.poll() is not None,
            timeout=60,
            what=f"worker {name} to start (log: {log_path})",
        )
        assert self.process.poll() is None, f"worker {name} exited: {log_path.read_text()}"

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes: whatever they were doing is lost."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def mails(self) -> list[tuple[str, str]]:
        """(recipient, subject) of every mail the workers sent: Django's file backend writes
        them one after another, each followed by a line of 79 dashes."""
        found = []
        for path in sorted((self.tmp_path / "mail").glob("*")):
            for chunk in path.read_text().split("-" * 79 + "\n"):
                if chunk.strip():
                    message = email.message_from_string(chunk)
                    subject = str(
                        email.header.make_header(email.header.decode_header(message["Subject"]))
                    )
                    found.append((message["To"], subject))
        return found

    def tail(self, lines: int = 40) -> str:
        if not self.logs:
            return ""
        return "\n".join(self.logs[-1].read_text().splitlines()[-lines:])


@pytest.fixture
def workers(tmp_path, broker, stripe_settings):
    found = Workers(
        tmp_path,
        broker.env()
        | {
            "DATABASE_URL": database_url(),
            "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
            "STRIPE_API_BASE": stripe_settings.url,
            "STRIPE_SECRET_KEY": stripe_settings.api_key,
            "STRIPE_WEBHOOK_SECRET": settings.STRIPE_WEBHOOK_SECRET,
            # Their mail in files the test reads (this process's is in mail.outbox).
            "EMAIL_URL": f"file://{tmp_path / 'mail'}",
            # Operations at the pace of a fakepve at a small time scale, and a dead worker's
            # claim on one expires within seconds.
            "OPERATION_POLL": "0.2",
            "OPERATION_LEASE": "3",
            "OPERATION_STUCK_AFTER": "2",
            "OPERATION_RETRY_BASE": "0.2",
        },
    )
    yield found
    found.kill()


# --- The webhook endpoint ---------------------------------------------------------------------


class WebhookProxy:
    """Where the sandbox sends its webhooks: each is passed on to the live server, unless the
    endpoint is failing (`fail_for`): then it answers 500, and Stripe delivers it again later.
    Keeps every answer the portal gave: (monotonic time, seconds it took, status)."""

    def __init__(self, target: str):
        self.target = target
        self.failing_until = 0.0
        self.forwarding = False  # while failing: the portal got it, Stripe hears 500 anyway
        self.answers: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - the base's name
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, content = proxy.forward(body, self.headers.get("Stripe-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fail_for(self, seconds: float, *, after_forwarding: bool = False) -> None:
        """500 for `seconds`: the endpoint down, or (`after_forwarding`) a proxy that times
        out on answers the portal gave, so Stripe delivers again what was stored already."""
        self.forwarding = after_forwarding
        self.failing_until = time.monotonic() + seconds

    def forward(self, body: bytes, signature: str) -> tuple[int, bytes]:
        started = time.monotonic()
        failing = started < self.failing_until
        if failing and not self.forwarding:
            return 500, b"the endpoint is down"
        request = urllib.request.Request(
            self.target,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, content = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        with self.lock:
            self.answers.append((started, time.monotonic() - started, status))
        return (500, b"the answer was lost") if failing else (status, content)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook_proxy(live_server, stripe_settings):
    proxy = WebhookProxy(f"{live_server.url}/billing/stripe/webhook/")
    stripe_settings.set_webhook(proxy.url, settings.STRIPE_WEBHOOK_SECRET)
    yield proxy
    stripe_settings.set_webhook(None)
    proxy.stop()
