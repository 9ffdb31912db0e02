"""The Stripe sandbox for the tests: one server per session, emptied for each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stripe import StripeSandbox
from tests.stripe_webhooks import WEBHOOK_SECRET


@pytest.fixture(scope="session")
def stripe_sandbox() -> Iterator[StripeSandbox]:
    sandbox = StripeSandbox(retry_base=0.05).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def stripe_settings(stripe_sandbox: StripeSandbox, settings) -> Iterator[StripeSandbox]:
    """The portal pointed at the (emptied) sandbox; webhooks off until a test sets them."""
    stripe_sandbox.reset()
    stripe_sandbox.set_webhook(None, WEBHOOK_SECRET)
    settings.STRIPE_API_BASE = stripe_sandbox.url
    settings.STRIPE_SECRET_KEY = stripe_sandbox.api_key
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield stripe_sandbox
    stripe_sandbox.set_webhook(None, WEBHOOK_SECRET)
