"""Support sees API tokens (whose, what they may do, when last used), never their secret or
its hash, and revokes a leaked one at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api import idempotency
from api.models import APIToken, IdempotentRequest
from tests.api.conftest import Api, token_for

pytestmark = pytest.mark.django_db


def test_support_sees_a_token_but_not_its_secret_or_hash(client, staff, alice):
    secret = token_for(alice)
    token = APIToken.objects.get()
    client.force_login(staff)
    for url in (
        reverse("admin:api_apitoken_changelist"),
        reverse("admin:api_apitoken_change", args=[token.pk]),
    ):
        html = client.get(url).content.decode()
        assert token.prefix in html and "alice@example.com" in html
        assert secret not in html and token.key_hash not in html
    assert client.get(reverse("admin:api_apitoken_add")).status_code == 403


def test_support_revokes_a_leaked_token(client, staff, alice):
    api = Api(client, token_for(alice))
    assert api.get("/servers").status_code == 200
    client.force_login(staff)
    response = client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [APIToken.objects.get().pk]},
    )
    assert response.status_code == 302
    client.logout()
    assert api.get("/servers").status_code == 401


def test_old_idempotency_keys_are_forgotten(alice, settings):
    token_for(alice)
    token = APIToken.objects.get()
    old = IdempotentRequest.objects.create(token=token, key="old", request_hash="x")
    new = IdempotentRequest.objects.create(token=token, key="new", request_hash="y")
    IdempotentRequest.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS, minutes=1)
    )
    assert idempotency.purge() == 1
    assert list(IdempotentRequest.objects.values_list("pk", flat=True)) == [new.pk]
