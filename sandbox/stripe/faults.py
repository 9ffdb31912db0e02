"""Injected API failures: "the next N requests to path X answer 500 (or 429)", and slow answers.

For testing what the portal does when Stripe is busy or broken: stripe-python retries 429 and
5xx answers (with `max_network_retries`), so a test can inject one failure and see the retry
succeed, or more failures than retries and see the portal give up cleanly. A `delay` holds the
request before it runs, which keeps it in flight (for idempotency-key conflicts). `lose_answer`
runs the request (a POST is kept under its idempotency key) and then closes the connection
without answering: the client cannot tell whether it happened, as when a network drops Stripe's
answer or the client's timeout strikes first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    path: str  # an exact /v1 path, or a prefix ending in "*"
    status: int  # 0: only the delay
    count: int
    method: str | None = None
    delay: float = 0.0
    lose_answer: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


BODIES = {
    429: {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
    },
    500: {"type": "api_error", "message": "An unknown error occurred (injected by the sandbox)."},
    503: {"type": "api_error", "message": "The service is temporarily unavailable (injected)."},
}


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Fault] = []

    def inject(
        self,
        path: str,
        status: int = 500,
        count: int = 1,
        method: str | None = None,
        delay: float = 0.0,
        lose_answer: bool = False,
    ) -> Fault:
        if status and status not in BODIES:
            raise ValueError(f"status must be one of {sorted(BODIES)} or 0 (delay only)")
        if status and lose_answer:
            raise ValueError("a lost answer has no status: give status 0")
        fault = Fault(path, status, count, method, delay, lose_answer)
        with self.lock:
            self.pending.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this request meets, if any (each counts down once per request)."""
        with self.lock:
            for fault in self.pending:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self.pending.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()
