"""Webhook signing and delivery: one endpoint, a background thread, retries with backoff.

By default first attempts go out one at a time in event order; a failed delivery is retried
after `retry_base * 2**(attempt-1)` seconds (capped at 60) without holding back later events, up
to `max_attempts` attempts. Every attempt is recorded.

Stripe promises neither order nor one-at-a-time: `configure_order(shuffle=True, concurrency=4)`
sends due events in random order (seeded, for a test to repeat) and several at once, so a
webhook handler that relies on `invoice.paid` arriving after `checkout.session.completed`, or
on not racing itself, fails in tests as it would in production.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
RETRY_CAP = 60.0
MAX_WORKERS = 8


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload` (timestamp: real time now)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Deliverer:
    def __init__(
        self, url: str | None, secret: str, retry_base: float = 2.0, max_attempts: int = 8
    ):
        self.url = url
        self.secret = secret
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.cond = threading.Condition()
        self.queue: list[tuple[float, int, dict, int]] = []  # (due, seq, event, attempt)
        self.records: list[dict] = []
        self.active = 0  # deliveries being sent now
        self.paused = False
        self.stopped = False
        self.shuffle = False
        self.concurrency = 1
        self.rng = random.Random()
        self._seq = itertools.count()
        self.threads = [
            threading.Thread(target=self._run, name=f"stripe-webhooks-{n}", daemon=True)
            for n in range(MAX_WORKERS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(timeout=5)

    def configure_order(
        self, shuffle: bool = False, concurrency: int = 1, seed: int | None = None
    ) -> None:
        if not 1 <= concurrency <= MAX_WORKERS:
            raise ValueError(f"concurrency must be between 1 and {MAX_WORKERS}")
        with self.cond:
            self.shuffle, self.concurrency = shuffle, concurrency
            self.rng = random.Random(seed)
            self.cond.notify_all()

    def configure(self, url: str | None, secret: str | None) -> None:
        with self.cond:
            self.url = url
            if secret is not None:
                self.secret = secret

    def enabled(self) -> bool:
        return bool(self.url)

    def enqueue(self, event: dict) -> None:
        with self.cond:
            if not self.url:
                return
            self.queue.append((time.monotonic(), next(self._seq), event, 1))
            self.cond.notify_all()

    def clear(self) -> None:
        with self.cond:
            self.queue.clear()
            self.records.clear()
            self.cond.notify_all()

    def pause(self, paused: bool) -> None:
        with self.cond:
            self.paused = paused
            self.cond.notify_all()

    def deliveries(self) -> list[dict]:
        with self.cond:
            return [dict(r) for r in self.records]

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.queue or self.active:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self.queue)} webhook deliveries still pending after {timeout} s"
                    )
                self.cond.wait(left)

    def _next(self) -> tuple | None:
        """The delivery to send now, or None (caller waits); holds the condition."""
        if not self.queue or self.paused or self.active >= self.concurrency:
            return None
        now = time.monotonic()
        due = [q for q in self.queue if q[0] <= now]
        if not due:
            return None
        return self.rng.choice(due) if self.shuffle else min(due, key=lambda q: q[:2])

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped and (item := self._next()) is None:
                    waits = [q[0] - time.monotonic() for q in self.queue]
                    ready = self.queue and not self.paused and self.active < self.concurrency
                    self.cond.wait(max(0.001, min(waits)) if ready else None)
                if self.stopped:
                    return
                self.queue.remove(item)
                self.active += 1
                url, secret = self.url, self.secret
            try:
                record = self._send(url, secret, item[2], item[3])
            finally:
                with self.cond:
                    self.active -= 1
                    if url:
                        self.records.append(record)
                        failed = record["status"] is None or not 200 <= record["status"] < 300
                        if failed and item[3] < self.max_attempts:
                            delay = min(RETRY_CAP, self.retry_base * 2 ** (item[3] - 1))
                            record["next_retry_in"] = delay
                            self.queue.append(
                                (time.monotonic() + delay, item[1], item[2], item[3] + 1)
                            )
                    self.cond.notify_all()

    def _send(self, url: str | None, secret: str, event: dict, attempt: int) -> dict:
        record = {
            "event": event["id"],
            "type": event["type"],
            "attempt": attempt,
            "url": url,
            "status": None,
            "error": None,
            "time": time.time(),
        }
        if not url:
            return record
        body = json.dumps(event, indent=2).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign(body, secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                record["status"] = response.status
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
        except (OSError, ValueError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        return record
