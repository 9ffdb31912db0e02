"""Encryption keys can be rotated: FIELD_ENCRYPTION_KEYS lists the new key first and the old
ones after it, `manage.py rotate_secrets` re-encrypts everything, then the old keys can go."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from allauth.mfa.utils import decrypt as mfa_decrypt
from django.core.management import call_command
from django.core.management.base import CommandError

from common import crypto
from instances.models import Cluster, Instance, InstanceOperation
from tests.factories import make_instance, make_location_with_capacity, make_operation

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
KEY_A = "the old key, kept until every value is re-encrypted"
KEY_B = "the new key, first in the list"


@dataclass
class Stored:
    token_secret: str
    instance_password: str
    operation_password: str
    totp_secret: str
    recovery_codes: list[str]

    def everything(self) -> list[str]:
        return [
            self.token_secret,
            self.instance_password,
            self.operation_password,
            self.totp_secret,
            *self.recovery_codes,
        ]


@pytest.fixture
def stored_under_key_a(settings, alice) -> Stored:
    """One secret of each kind the portal keeps, all written while KEY_A was the only key."""
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    location = make_location_with_capacity()
    cluster = Cluster.objects.get()
    cluster.token_secret = "pve-token-secret-0001"
    cluster.save()
    server = make_instance(
        alice, location, new_password_encrypted=crypto.encrypt("instance-pw-0001")
    )
    make_operation(server, secret_encrypted=crypto.encrypt("operation-pw-0001"))
    totp_secret = generate_totp_secret()
    TOTP.activate(alice, totp_secret)
    codes = RecoveryCodes.activate(alice).generate_codes()
    return Stored(
        "pve-token-secret-0001", "instance-pw-0001", "operation-pw-0001", totp_secret, codes
    )


def assert_everything_decrypts(stored: Stored, user) -> None:
    assert Cluster.objects.get().token_secret == stored.token_secret
    assert crypto.decrypt(Instance.objects.get().new_password_encrypted) == (
        stored.instance_password
    )
    assert crypto.decrypt(InstanceOperation.objects.get().secret_encrypted) == (
        stored.operation_password
    )
    # Through allauth's MFA adapter, as at sign-in.
    totp = Authenticator.objects.get(user=user, type="totp")
    assert mfa_decrypt(totp.data["secret"]) == stored.totp_secret
    recovery = Authenticator.objects.get(user=user, type="recovery_codes").wrap()
    assert recovery.get_unused_codes() == stored.recovery_codes


def stored_tokens() -> list[str]:
    tokens = [
        Cluster.objects.get().token_secret_encrypted,
        Instance.objects.get().new_password_encrypted,
        InstanceOperation.objects.get().secret_encrypted,
    ]
    for data in Authenticator.objects.order_by("type").values_list("data", flat=True):
        tokens += [data.get("secret") or data["seed"]]
    return tokens


def rotate_secrets() -> str:
    out = io.StringIO()
    call_command("rotate_secrets", stdout=out)
    return out.getvalue()


def test_values_under_the_old_key_survive_rotation_to_a_new_one(
    settings, stored_under_key_a, alice
):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert_everything_decrypts(stored_under_key_a, alice)
    assert crypto.encrypt("new") and crypto.decrypt(crypto.encrypt("new")) == "new"

    output = rotate_secrets()
    assert "instances.Cluster.token_secret_encrypted: 1 re-encrypted" in output
    assert "instances.Instance.new_password_encrypted: 1 re-encrypted" in output
    assert "instances.InstanceOperation.secret_encrypted: 1 re-encrypted" in output
    assert "mfa.Authenticator.data: 2 re-encrypted" in output
    for secret in stored_under_key_a.everything():
        assert secret not in output

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    assert_everything_decrypts(stored_under_key_a, alice)


def test_rotating_twice_changes_nothing(settings, stored_under_key_a):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    rotate_secrets()
    after_first = stored_tokens()
    output = rotate_secrets()
    assert stored_tokens() == after_first
    assert "0 re-encrypted" in output and " 1 re-encrypted" not in output


def test_new_values_are_encrypted_with_the_first_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    token = crypto.encrypt("fresh")
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    assert crypto.decrypt(token) == "fresh"


def test_dropping_the_old_key_too_early_is_reported_without_secrets(settings, stored_under_key_a):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEYS"):
        Cluster.objects.get().token_secret  # noqa: B018
    before = stored_tokens()
    with pytest.raises(CommandError, match="5 value") as refused:
        rotate_secrets()
    assert str(Cluster.objects.get().pk) in str(refused.value)
    assert stored_tokens() == before  # nothing it cannot read is touched
    for secret in stored_under_key_a.everything():
        assert secret not in str(refused.value)


def keys_configured(**env: str) -> list[str]:
    """FIELD_ENCRYPTION_KEYS as a portal process started with this environment sees it."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "FIELD_ENCRYPTION_KEYS"}
    }
    script = (
        "import django, json; django.setup(); from django.conf import settings;"
        "print(json.dumps(settings.FIELD_ENCRYPTION_KEYS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean | {"DJANGO_SETTINGS_MODULE": "portal.settings", "SECRET_KEY": "sk,1"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_keys_come_from_the_environment():
    assert keys_configured(FIELD_ENCRYPTION_KEYS="new key, old key") == ["new key", "old key"]
    # The one-key spelling of before still works, and the default is SECRET_KEY (unsplit).
    assert keys_configured(FIELD_ENCRYPTION_KEY="only,key") == ["only,key"]
    assert keys_configured() == ["sk,1"]
