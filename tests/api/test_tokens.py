"""API tokens: made on the account page, shown once, kept hashed, read-only or read-write,
expiring, revocable; when each was last used is shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api import tokens
from api.models import APIToken
from tests.api.conftest import Api, token_for

pytestmark = pytest.mark.django_db


def test_a_token_made_on_the_account_page_is_shown_once_and_kept_only_hashed(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("api:tokens"), {"name": "terraform", "scope": "read_write", "expires_on": ""}
    )
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("vpsp_") and len(secret) > 40
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    row = APIToken.objects.get(owner=alice)
    assert row.name == "terraform" and row.scope == "read_write"
    assert row.key_hash == tokens.digest(secret) and secret not in row.key_hash
    # Nowhere else: the list shows only its first characters.
    page = client.get(reverse("api:tokens")).content.decode()
    assert secret not in page and row.prefix in page


def test_the_token_works_on_the_api_and_its_last_use_is_shown(client, alice, mallory):
    secret = token_for(alice)
    api = Api(client, secret)
    assert api.get("/ssh-keys", headers={"X-Forwarded-For": "x"}).status_code == 200
    row = APIToken.objects.get(owner=alice)
    assert row.last_used_at is not None and row.last_used_ip == "127.0.0.1"
    client.force_login(alice)
    page = client.get(reverse("api:tokens")).content.decode()
    assert "127.0.0.1" in page


def test_bad_input_on_the_page_names_the_field_and_makes_no_token(client, alice):
    client.force_login(alice)
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    response = client.post(
        reverse("api:tokens"), {"name": "", "scope": "admin", "expires_on": yesterday}
    )
    form = response.context["form"]
    assert set(form.errors) == {"name", "scope", "expires_on"}
    assert "after today" in form.errors["expires_on"][0]
    assert not APIToken.objects.exists()


def test_a_revoked_token_is_refused_at_once(client, alice):
    secret = token_for(alice)
    api = Api(client, secret)
    assert api.get("/servers").status_code == 200
    client.force_login(alice)
    token = APIToken.objects.get(owner=alice)
    response = client.post(reverse("api:token_revoke", args=[token.pk]))
    assert response.status_code == 302
    answer = api.get("/servers")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_refused(client, alice):
    secret = token_for(alice, expires_at=timezone.now() + timedelta(days=1))
    api = Api(client, secret)
    assert api.get("/servers").status_code == 200
    APIToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/servers").status_code == 401
    client.force_login(alice)
    assert "expired" in client.get(reverse("api:tokens")).content.decode()


def test_a_deactivated_customers_token_is_refused(client, alice):
    api = Api(client, token_for(alice))
    alice.is_active = False
    alice.save()
    assert api.get("/servers").status_code == 401


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer vpsp_not-a-token", "Basic dXNlcjpwYXNz", "Token vpsp_x"],
)
def test_requests_without_a_valid_token_get_401(client, alice, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/api/v1/servers", **extra)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_signed_in_browser_session_is_not_an_api_token(client, alice):
    """The API takes tokens only: a page on another site cannot use the customer's cookies."""
    client.force_login(alice)
    assert client.get("/api/v1/servers").status_code == 401


def test_a_read_only_token_cannot_change_anything(client, alice):
    api = Api(client, token_for(alice, APIToken.Scope.READ))
    assert api.get("/ssh-keys").status_code == 200
    key = alice.ssh_keys.count()
    response = api.post("/ssh-keys", {"name": "x", "public_key": "ssh-ed25519 AAAA"})
    assert response.status_code == 403
    assert response.json()["code"] == "read_only_token"
    assert alice.ssh_keys.count() == key


def test_another_customers_token_cannot_be_revoked(client, alice, mallory):
    token_for(alice)
    token = APIToken.objects.get(owner=alice)
    client.force_login(mallory)
    assert client.post(reverse("api:token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_customer_has_a_limited_number_of_tokens_in_use(client, alice, settings):
    settings.API_TOKENS_PER_USER = 2
    token_for(alice)
    token_for(alice)
    with pytest.raises(tokens.TokenError, match="revoke one"):
        token_for(alice)
    tokens.token_revoke(owner=alice, token_id=APIToken.objects.first().pk)
    token_for(alice)  # a revoked one does not count
