"""Shared fixtures: three customers (alice, bob, mallory) for isolation tests, a staff user.

The whole suite runs on both databases: PostgreSQL (CI) and the SQLite file of the embedded
defaults (`make test` on a fresh machine)."""

from __future__ import annotations

import sqlite3

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from tests.console_proxy_fixture import console_proxy  # noqa: F401 - shared fixture
from tests.factories import PASSWORD, ProfileFactory, UserFactory
from tests.powerdns_fixture import powerdns, powerdns_server  # noqa: F401
from tests.pve_world import demo_location, world  # noqa: F401 - shared fixtures
from tests.stripe_sandbox_fixture import stripe_sandbox, stripe_settings  # noqa: F401
from tests.vies_fixture import vies, vies_sandbox  # noqa: F401 - vies is autouse


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 at production strength costs ~0.3 s a hash; tests hash hundreds of passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Rate-limit counters live in the cache; each test starts with none.

    The database cache needs no work for tests on the `db` fixture: their transaction, cache
    rows included, is rolled back. Transactional tests keep rows, so they clear it first.
    """
    if settings.REDIS_URL:
        _clear_redis_cache()
    elif _is_transactional(request):
        request.getfixturevalue("transactional_db")
        cache.clear()


@pytest.fixture(autouse=True)
def _ledger_emptied_before_the_flush_on_sqlite(request):
    """After a transactional test pytest-django empties every table: TRUNCATE on PostgreSQL,
    which row triggers ignore, but DELETE on SQLite, which the ledger's append-only trigger
    refuses. So on SQLite the harness deletes the ledger rows first, with triggers off on its
    own connection for that one statement."""
    if not _is_transactional(request):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        raw = connection.connection
        raw.setconfig(sqlite3.SQLITE_DBCONFIG_ENABLE_TRIGGER, False)
        try:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM billing_ledgerentry")
        finally:
            raw.setconfig(sqlite3.SQLITE_DBCONFIG_ENABLE_TRIGGER, True)


def _is_transactional(request) -> bool:
    """Whether the test runs on committed data, which pytest-django deletes after it."""
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and marker.kwargs.get("transaction")) or bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
    )


def _clear_redis_cache() -> None:
    # Only our keys: the same Redis may hold Celery's queues, which FLUSHDB would drop.
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{settings.CACHE_KEY_PREFIX}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def alice(db):
    return ProfileFactory(user__email="alice@example.com", full_name="Alice Archer").user


@pytest.fixture
def bob(db):
    return ProfileFactory(user__email="bob@example.com", full_name="Bob Baker").user


@pytest.fixture
def mallory(db):
    return ProfileFactory(user__email="mallory@example.com", full_name="Mallory Mayer").user


@pytest.fixture
def staff(db):
    """A superuser with an authenticator app, as the admin requires of staff."""
    return UserFactory(email="staff@example.com", is_staff=True, is_superuser=True, totp=True)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client
