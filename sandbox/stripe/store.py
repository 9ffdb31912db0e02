"""The sandbox's state: every object by id, the clock, events, idempotency records, one lock.

Objects are kept as plain dicts in the shape the API returns them (ids for references, never
expanded). `private` holds what Stripe keeps to itself (card numbers, checkout line items,
pending proration items), keyed by object id.
"""

from __future__ import annotations

import copy
import pickle
import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

API_VERSION = "2026-10-28.endive"
# Account settings a test (or /_sandbox/settings) can change; reset() brings these back.
DEFAULT_SETTINGS: dict[str, Any] = {
    # After the last retry of a subscription invoice: "unpaid", "cancel" or "past_due".
    "subscription_retries_end": "unpaid",
    # Refunds: "succeeded" at once, or pending for refund_delay s, then "pending_succeeds" /
    # "pending_fails".
    "refund_outcome": "succeeded",
    "refund_delay": 3600,
}
_ALPHABET = string.ascii_letters + string.digits


class StripeError(Exception):
    """An error the API reports as Stripe does: `{"error": {...}}` with an HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        if decline_code:
            self.body["decline_code"] = decline_code


def lst(url: str, data: list) -> dict:
    """A list object as Stripe nests it in another (never more than one page)."""
    return {"object": "list", "data": data, "has_more": False, "url": url}


def diff(before: dict, after: dict) -> dict:
    """previous_attributes: the top-level values that changed."""
    return {k: v for k, v in before.items() if after.get(k) != v}


def missing(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


class Store:
    """All sandbox state. Callers hold `lock` around every read-modify-write."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.offset = 0.0
        self._frozen: int | None = None
        self.on_event: Callable[[dict], None] | None = None
        self.webhook_enabled: Callable[[], bool] = lambda: False
        self.request = threading.local()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.objects: dict[str, dict] = {}
            self.by_type: dict[str, list[str]] = {}
            self.private: dict[str, dict] = {}
            self.idempotency: dict[str, tuple[str, int, dict]] = {}
            self.in_flight: set[str] = set()  # keys whose first request is still running
            self.customer_seq = 0
            self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
            self.last_payout_day = self.now() // 86400

    # -- keeping state across restarts (the `make run` demo) ------------------------------

    STATE = (
        "objects",
        "by_type",
        "private",
        "idempotency",
        "customer_seq",
        "last_payout_day",
        "settings",
    )

    def save(self, path: Path) -> None:
        """Write everything to `path` (atomically), so a restarted sandbox carries on."""
        with self.lock:
            state = {name: getattr(self, name) for name in self.STATE} | {"offset": self.offset}
            payload = pickle.dumps(state)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(payload)
        tmp.replace(path)

    def load(self, path: Path) -> bool:
        if not path.exists():
            return False
        state = pickle.loads(path.read_bytes())  # our own file, written by save()
        with self.lock:
            for name in self.STATE:
                if name in state:  # a file from before a name was added keeps the default
                    setattr(self, name, state[name])
            self.offset = state["offset"]
        return True

    # -- clock ---------------------------------------------------------------------------

    def now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        return int(time.time() + self.offset)

    def freeze(self, at: int | None) -> None:
        """Pin the clock while processing what happened at `at` (None: follow real time)."""
        self._frozen = at

    # -- objects -------------------------------------------------------------------------

    def new_id(self, prefix: str, length: int = 24) -> str:
        return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))

    def add(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        self.by_type.setdefault(obj["object"], []).append(obj["id"])
        return obj

    def get(self, object_id: str | None, kind: str | None = None, param: str = "id") -> dict:
        obj = self.objects.get(object_id or "")
        if obj is None or (kind and obj["object"] != kind):
            raise no_such(kind or "object", str(object_id), param)
        return obj

    def find(self, object_id: Any) -> dict | None:
        return self.objects.get(object_id) if isinstance(object_id, str) else None

    def all(self, kind: str) -> list[dict]:
        """Objects of one kind, newest first."""
        return [self.objects[i] for i in reversed(self.by_type.get(kind, []))]

    def priv(self, object_id: str) -> dict:
        return self.private.setdefault(object_id, {})

    # -- events --------------------------------------------------------------------------

    def emit(self, type: str, obj: dict, previous: dict | None = None) -> dict:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": self.new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self.webhook_enabled() else 0,
            "request": {
                "id": getattr(self.request, "id", None),
                "idempotency_key": getattr(self.request, "idempotency_key", None),
            },
            "type": type,
        }
        self.add(event)
        if self.on_event:
            self.on_event(event)
        return event
