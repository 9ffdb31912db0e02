"""No admin page shows a stored secret: neither in clear nor as ciphertext (a Fernet token)."""

from __future__ import annotations

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib import admin
from django.urls import reverse

from common import crypto
from instances.models import Cluster
from tests.factories import (
    make_instance,
    make_location_with_capacity,
    make_operation,
    make_order,
)

pytestmark = pytest.mark.django_db

FERNET_PREFIX = "gAAAAA"  # how every token of common.crypto starts


@pytest.fixture
def secrets_stored(alice) -> list[str]:
    """A row of each kind that holds a secret; returns the secrets in clear."""
    location = make_location_with_capacity()
    cluster = Cluster.objects.get()
    cluster.token_secret = "pve-token-secret-for-the-admin-test"
    cluster.save()
    server = make_instance(
        alice, location, new_password_encrypted=crypto.encrypt("instance-root-password-42")
    )
    make_operation(server, secret_encrypted=crypto.encrypt("operation-root-password-42"))
    make_order(alice, location, generate_password=True)
    totp_secret = generate_totp_secret()
    TOTP.activate(alice, totp_secret)
    RecoveryCodes.activate(alice)
    return [
        "pve-token-secret-for-the-admin-test",
        "instance-root-password-42",
        "operation-root-password-42",
        totp_secret,
    ]


def admin_pages() -> list[str]:
    """The changelist of every registered model, and the change page of its first row."""
    pages = []
    for model in admin.site._registry:
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            )
    return pages


def test_no_admin_page_shows_a_secret_or_its_ciphertext(client, staff, secrets_stored):
    client.force_login(staff)
    pages = admin_pages()
    for model in ["instances/cluster", "instances/instance", "billing/order", "mfa/authenticator"]:
        assert any(p.startswith(f"/admin/{model}/") and p.endswith("/change/") for p in pages)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert FERNET_PREFIX not in html, url
        for secret in secrets_stored:
            assert secret not in html, url
