"""Sign-up, email verification, login, password reset/change, two-factor, rate limits, admin."""

from __future__ import annotations

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, hotp_value
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, UserFactory


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def login(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_sign_up_sends_a_verification_email_and_login_waits_for_it(client, db):
    response = client.post(
        "/accounts/signup/",
        {"email": "dave@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dave@example.com"]

    # Unverified: logging in only re-sends the verification, no session.
    client.logout()
    login(client, "dave@example.com", PASSWORD)
    assert client.get("/servers/").status_code == 302

    confirm_path = link_in(mail.outbox[0])
    assert client.get(confirm_path).status_code == 200  # a page with a button, not a GET action
    client.post(confirm_path)
    response = login(client, "dave@example.com", PASSWORD)
    assert response["Location"] == "/servers/"
    assert client.get("/servers/").status_code == 200


def test_a_weak_password_is_refused_at_sign_up(client, db):
    response = client.post(
        "/accounts/signup/",
        {"email": "erin@example.com", "password1": "password", "password2": "password"},
    )
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    assert 'value="erin@example.com"' in response.content.decode()


def test_login_and_logout(client, alice):
    response = login(client, "alice@example.com", PASSWORD)
    assert response["Location"] == "/servers/"
    assert client.get("/").status_code == 302  # home sends a signed-in customer to Servers
    assert client.post("/accounts/logout/")["Location"] == "/"
    assert client.get("/servers/").status_code == 302


def test_logout_needs_a_post(client, alice):
    client.force_login(alice)
    client.get("/accounts/logout/")
    assert client.get("/servers/").status_code == 200


def test_password_reset_by_email(client, alice):
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    reset_path = link_in(mail.outbox[0])
    form_path = client.get(reset_path)["Location"]  # allauth hides the key behind a redirect
    new = "a brand new passphrase 77"
    response = client.post(form_path, {"password1": new, "password2": new})
    assert response.status_code == 302
    assert login(client, "alice@example.com", new)["Location"] == "/servers/"


def test_password_reset_does_not_reveal_whether_an_account_exists(client, db):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/done/"


def test_password_change(client, alice):
    client.force_login(alice)
    new = "another good passphrase 31"
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new, "password2": new},
    )
    assert response.status_code == 302
    client.logout()
    assert login(client, "alice@example.com", new)["Location"] == "/servers/"


def test_repeated_failed_logins_are_rate_limited(client, alice):
    for _ in range(5):
        response = login(client, "alice@example.com", "wrong password")
        assert "not correct" in response.content.decode()
    # Even the right password is refused until the limit expires.
    response = login(client, "alice@example.com", PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert client.get("/servers/").status_code == 302


def fresh_totp_step() -> int:
    """The current 30 s TOTP step, after the next one has begun if this one is nearly over
    (allauth accepts only the current step; a boundary mid-request would refuse the code)."""
    step = int(time.time()) // 30
    if 30 - time.time() % 30 < 2:
        deadline = time.monotonic() + 3
        while int(time.time()) // 30 == step and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded wait for the clock to reach the next step
        step = int(time.time()) // 30
    return step


def test_two_factor_login_needs_a_valid_code(client, alice):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    response = login(client, "alice@example.com", PASSWORD)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/servers/").status_code == 302

    response = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert "Incorrect code" in response.content.decode()
    assert client.get("/servers/").status_code == 302

    code = f"{hotp_value(secret, fresh_totp_step()):06d}"
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response["Location"] == "/servers/"
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()


# --- Staff and the admin -----------------------------------------------------------------------


def test_admin_login_goes_through_the_rate_limited_portal_login(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_customer_never_reaches_the_admin(client, alice):
    client.force_login(alice)
    assert client.get("/admin/").status_code in {302, 403}
    assert client.get("/admin/login/").status_code == 403
    assert client.get("/admin/accounts/user/").status_code == 302


def test_staff_reach_the_admin(client, staff):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/accounts/sshkey/").status_code == 200


@pytest.mark.parametrize("path", ["/servers/", "/billing/", "/account/", "/account/profile/"])
def test_customer_pages_need_a_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_anonymous_home_page_shows_the_product_lines_and_sign_up(client, db):
    html = client.get("/").content.decode()
    for line in ["Storage VPS", "NVMe VPS", "VDS", "Dedicated"]:
        assert line in html
    assert 'href="/accounts/signup/"' in html


def test_a_new_customer_lands_on_an_empty_servers_dashboard(client, db):
    client.force_login(UserFactory())
    html = client.get("/servers/").content.decode()
    assert "<h1>Servers</h1>" in html
    assert "No servers yet" in html
    assert "complete your profile" in html
