"""A Redis that accepts connections and never answers (a hung broker or cache) costs a request
about a second, never minutes: the webhook still stores and acknowledges its event, /healthz
names the broker down, and signing in says "try again" instead of failing with a 500."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.test import Client
from kombu import pools as kombu_pools

from billing.models import StripeEvent
from portal.celery import app as celery_app
from portal.celery import configure
from portal.settings import redis_cache
from tests.factories import PASSWORD
from tests.stripe_webhooks import WEBHOOK_SECRET, deliver


class HungRedis:
    """A TCP server that accepts every connection and never sends a byte. Each connection is
    dropped after `hold` seconds, so a client without timeouts fails the test instead of
    hanging it forever."""

    def __init__(self, hold: float = 5.0):
        self.hold = hold
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def _serve(self) -> None:
        held: list[tuple[float, socket.socket]] = []
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                pass
            else:
                self.accepted += 1
                held.append((time.monotonic() + self.hold, conn))
            for entry in [entry for entry in held if entry[0] <= time.monotonic()]:
                entry[1].close()
                held.remove(entry)
        for _, conn in held:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def hung_redis():
    server = HungRedis()
    yield server
    server.stop()


def _celery_reconfigured() -> None:
    configure(celery_app)
    # Close kombu's connection pools (shared by URL), and drop the app's references to them
    # (Celery has no public call for this), so the next task goes to the broker now configured.
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_hangs(hung_redis, settings):
    """The Celery app configured by the portal's own settings, with the hung server as broker;
    afterwards the real broker again (later tests send real tasks)."""
    real_broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = hung_redis.url
    _celery_reconfigured()
    yield hung_redis
    settings.CELERY_BROKER_URL = real_broker
    _celery_reconfigured()
    assert celery_app.conf.broker_url == real_broker


@pytest.fixture
def cache_hangs(hung_redis, settings):
    settings.CACHES = {"default": redis_cache(hung_redis.url)}
    return hung_redis


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def an_event() -> dict:
    return {
        "id": "evt_while_the_broker_hangs",
        "object": "event",
        "type": "invoice.paid",
        "created": int(time.time()),
        "data": {"object": {"id": "in_1", "object": "invoice"}},
    }


# The event is committed in the request and the task sent after commit, as in production.
@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_stored_and_answered_within_two_seconds(client, settings, broker_hangs):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    response, seconds = timed(lambda: deliver(client, an_event()))
    assert response.status_code == 200
    assert seconds < 2
    assert broker_hangs.accepted >= 1  # it did try to send the task to the hung broker
    stored = StripeEvent.objects.get(event_id="evt_while_the_broker_hangs")
    assert stored.processed_at is None  # left for beat's retry_stripe_events


def test_healthz_names_the_broker_down_within_three_seconds(client, db, broker_hangs):
    response, seconds = timed(lambda: client.get("/healthz"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}
    assert seconds < 3


def test_signing_in_while_the_cache_hangs_asks_to_try_again(alice, cache_hangs):
    # A browser's client: a 503 page, not Django's test client re-raising a 500.
    client = Client(raise_request_exception=False)
    response, seconds = timed(
        lambda: client.post("/accounts/login/", {"login": alice.email, "password": PASSWORD})
    )
    assert response.status_code == 503
    assert "try again in a minute" in response.content.decode()
    assert response["Retry-After"]
    assert seconds < 3
    assert cache_hangs.accepted >= 1
