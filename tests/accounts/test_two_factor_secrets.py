"""Two-factor seeds (TOTP, recovery codes) are encrypted at rest, migrated once, and never shown
in the admin."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, hotp_value
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from common import crypto

pytestmark = pytest.mark.django_db

BEFORE = [("accounts", "0001_initial")]
AFTER = [("accounts", "0002_encrypt_mfa_secrets")]


@pytest.fixture(autouse=True)
def _tolerant_totp(settings):
    # A code computed at the end of a 30 s step is still accepted in the next: no waiting.
    settings.MFA_TOTP_TOLERANCE = 1


def current_code(secret: str) -> str:
    return f"{hotp_value(secret, int(time.time()) // 30):06d}"


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.fixture
def migrations_undone_after():
    """The schema is left as the latest migrations make it, for the tests that come after:
    these tests' data is committed, and so would be accounts stuck at 0002."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_totp_seed_is_stored_encrypted_and_still_checks_codes(alice):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    stored = Authenticator.objects.get(user=alice, type="totp")
    assert stored.data["secret"] != secret
    assert crypto.is_encrypted(stored.data["secret"])
    assert stored.wrap().validate_code(current_code(secret))
    assert not stored.wrap().validate_code("not a code")


def test_the_recovery_code_seed_is_stored_encrypted(alice):
    codes = RecoveryCodes.activate(alice)
    stored = Authenticator.objects.get(user=alice, type="recovery_codes")
    assert crypto.is_encrypted(stored.data["seed"])
    first = codes.generate_codes()[0]
    assert stored.wrap().validate_code(first)
    stored.refresh_from_db()
    assert first not in stored.wrap().get_unused_codes()


# Migrating runs the schema editor, which SQLite refuses inside the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_seeds_stored_in_clear_are_encrypted_by_the_migration_once(
    alice, bob, migrations_undone_after
):
    migrate(BEFORE)
    secret = generate_totp_secret()
    plain_totp = Authenticator.objects.create(user=alice, type="totp", data={"secret": secret})
    seed = RecoveryCodes.generate_seed()
    plain_codes = Authenticator.objects.create(
        user=alice,
        type="recovery_codes",
        data={"seed": seed, "used_mask": 0, "migrated_codes": ["11112222", "33334444"]},
    )
    TOTP.activate(bob, generate_totp_secret())  # already encrypted: must stay as it is
    bobs = Authenticator.objects.get(user=bob).data

    migrate(AFTER)
    plain_totp.refresh_from_db()
    plain_codes.refresh_from_db()
    assert crypto.decrypt(plain_totp.data["secret"]) == secret
    assert crypto.decrypt(plain_codes.data["seed"]) == seed
    assert [crypto.decrypt(c) for c in plain_codes.data["migrated_codes"]] == [
        "11112222",
        "33334444",
    ]
    assert plain_codes.data["used_mask"] == 0
    assert Authenticator.objects.get(user=bob).data == bobs
    assert plain_totp.wrap().validate_code(current_code(secret))

    # Backwards gives the clear values again; forwards once more encrypts them once.
    migrate(BEFORE)
    plain_totp.refresh_from_db()
    assert plain_totp.data["secret"] == secret
    migrate(AFTER)
    plain_totp.refresh_from_db()
    assert crypto.decrypt(plain_totp.data["secret"]) == secret


def test_the_authenticator_admin_shows_no_secret(client, staff, alice):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    RecoveryCodes.activate(alice)
    client.force_login(staff)
    for authenticator in Authenticator.objects.filter(user=alice):
        for url in [
            "/admin/mfa/authenticator/",
            f"/admin/mfa/authenticator/{authenticator.pk}/change/",
        ]:
            response = client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            assert secret not in html
            assert "gAAAAA" not in html
            assert 'name="data"' not in html
            assert "alice@example.com" in html
