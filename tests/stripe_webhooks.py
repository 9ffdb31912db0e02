"""Webhook deliveries as Stripe makes them: a JSON event signed with the endpoint's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.urls import reverse

WEBHOOK_SECRET = "whsec_test_portal"  # STRIPE_WEBHOOK_SECRET in the tests (stripe_settings)


def signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def deliver(client, event: dict, **signing):
    payload = json.dumps(event).encode()
    return client.post(
        reverse("billing:stripe_webhook"),
        data=payload,
        content_type="application/json",
        headers={"stripe-signature": signature(payload, **signing)},
    )
