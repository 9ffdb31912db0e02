"""Staff need a second factor for the admin: without an authenticator every admin page sends
them to set one up. Customers, the setup pages and logging out are unaffected."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, hotp_value

from tests.factories import PASSWORD, UserFactory

SETUP = "/accounts/2fa/totp/activate/"


@pytest.fixture(autouse=True)
def _tolerant_totp(settings):
    settings.MFA_TOTP_TOLERANCE = 1  # a code from the end of a step still counts in the next


@pytest.fixture
def staff_without_authenticator(db):
    return UserFactory(email="newhire@example.com", is_staff=True, is_superuser=True)


def current_code(secret: str) -> str:
    return f"{hotp_value(secret, int(time.time()) // 30):06d}"


@pytest.mark.parametrize("path", ["/admin/", "/admin/instances/instance/", "/admin/login/"])
def test_staff_without_an_authenticator_are_sent_to_set_one_up(
    client, staff_without_authenticator, path
):
    client.force_login(staff_without_authenticator)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == SETUP


def test_a_password_alone_does_not_open_the_admin(client, staff_without_authenticator):
    response = client.post(
        "/accounts/login/", {"login": "newhire@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302  # signed in with the password
    response = client.get("/admin/", follow=True)
    # allauth asks for the password again before showing a new TOTP secret.
    assert response.redirect_chain[0] == (SETUP, 302)
    assert response.redirect_chain[-1][0].startswith("/accounts/reauthenticate/")
    assert "Staff need two-factor authentication" in response.content.decode()


def test_setting_up_an_authenticator_opens_the_admin(client, staff_without_authenticator):
    client.force_login(staff_without_authenticator)
    response = client.post(f"/accounts/reauthenticate/?next={SETUP}", {"password": PASSWORD})
    assert response["Location"] == SETUP
    assert client.get(SETUP).status_code == 200  # the setup page itself stays reachable
    secret = client.session[SECRET_SESSION_KEY]  # what the page shows as QR code and key
    response = client.post(SETUP, {"code": current_code(secret)})
    assert response.status_code == 302, response.content.decode()
    assert client.get("/admin/").status_code == 200


def test_staff_with_an_authenticator_open_the_admin(client, staff):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/instances/instance/").status_code == 200


def test_staff_without_an_authenticator_can_still_log_out(client, staff_without_authenticator):
    client.force_login(staff_without_authenticator)
    assert client.post("/admin/logout/").status_code == 200
    assert client.get("/servers/").status_code == 302  # signed out
    client.force_login(staff_without_authenticator)
    assert client.post("/accounts/logout/")["Location"] == "/"


def test_customers_without_an_authenticator_are_not_asked_for_one(alice_client):
    assert alice_client.get("/servers/").status_code == 200
    response = alice_client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
