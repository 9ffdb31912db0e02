"""A new customer's first visit, end to end in a real browser: sign up, verify the email address,
protect the account with an authenticator app, and sign in again with a code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Locator, Page, expect

from tests.factories import PASSWORD, UserFactory

TOTP_STEP = 30
# Our codes must reach the server in the step they were computed for: allauth's default
# MFA_TOTP_TOLERANCE is 0, so a code from the previous step is refused.
MIN_SECONDS_LEFT_IN_STEP = 5


# --- RFC 6238, the authenticator app's side -------------------------------------------------------


def totp_code(secret: str, step: int) -> str:
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def current_step() -> int:
    return int(time.time()) // TOTP_STEP


def code_to_type_now(secret: str) -> str:
    """The code an authenticator app shows, waiting for a fresh one if this one is about to expire.

    Reuse is no concern here: allauth marks a code used only when it signs someone in, not when
    it activates the authenticator (ActivateTOTPForm calls validate_totp_code, which does not
    record it), so the activation code may legitimately come up again at sign-in.
    """
    if TOTP_STEP - time.time() % TOTP_STEP < MIN_SECONDS_LEFT_IN_STEP:
        expiring = current_step()
        deadline = time.monotonic() + MIN_SECONDS_LEFT_IN_STEP + 1
        while current_step() == expiring:
            assert time.monotonic() < deadline, "the clock did not reach the next TOTP step"
            time.sleep(0.05)
    return totp_code(secret, current_step())


def code_that_is_wrong(secret: str) -> str:
    # Not valid in any step the server could be in while the test runs.
    step = current_step()
    valid = {totp_code(secret, s) for s in range(step - 1, step + 3)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


# --- The customer's actions -----------------------------------------------------------------------


def confirmation_link(mailoutbox) -> str:
    assert len(mailoutbox) == 1, [message.subject for message in mailoutbox]
    match = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[0].body)
    assert match, mailoutbox[0].body
    return match.group(0)


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def sign_in_with_password(page: Page, email: str, password: str) -> None:
    main_nav(page).get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Sign In").click()


def reach_past_reauthentication(page: Page, password: str, destination: Locator) -> None:
    # allauth asks for the password again unless the last sign-in is recent (5 minutes by
    # default), so whether this page shows up depends on timing, not on the portal.
    confirm_access = page.get_by_role("heading", name="Confirm Access")
    expect(destination.or_(confirm_access)).to_be_visible()
    if confirm_access.is_visible():
        page.get_by_label("Password:", exact=True).fill(password)
        page.get_by_role("button", name="Confirm").click()
    expect(destination).to_be_visible()


def enter_authenticator_code(page: Page, code: str) -> None:
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign In").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(main_nav(page).get_by_role("link", name="Sign in")).to_be_visible()


def expect_servers_dashboard(page: Page) -> None:
    expect(page.get_by_role("heading", level=1, name="Servers")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# --- Scenarios ------------------------------------------------------------------------------------


def test_a_new_customer_signs_up_verifies_enables_two_factor_and_signs_in_with_a_code(
    page: Page, live_server, mailoutbox
):
    email = "new.customer@example.com"
    password = "a long passphrase for the portal 7"

    page.goto(live_server.url)
    main_nav(page).get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_label("Password (again)").fill(password)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()

    page.goto(confirmation_link(mailoutbox))
    expect(page.get_by_role("heading", name="Confirm Email Address")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text(f"You have confirmed {email}.")

    sign_in_with_password(page, email, password)
    expect_servers_dashboard(page)

    main_nav(page).get_by_role("link", name="Account").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page.get_by_text("An authenticator app is not active.")).to_be_visible()
    page.get_by_role("link", name="Activate").click()
    reach_past_reauthentication(
        page, password, page.get_by_role("heading", name="Activate Authenticator App")
    )
    secret = page.get_by_label("Authenticator secret").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    page.get_by_label("Authenticator code").fill(code_to_type_now(secret))
    page.get_by_role("button", name="Activate").click()

    expect(page.get_by_role("status")).to_contain_text("Authenticator app activated.")
    expect(page.get_by_role("heading", name="Recovery Codes")).to_be_visible()
    recovery_codes = page.get_by_label("Unused codes").input_value().split()
    assert len(recovery_codes) == 10, recovery_codes

    sign_out(page)
    sign_in_with_password(page, email, password)
    enter_authenticator_code(page, code_to_type_now(secret))
    expect_servers_dashboard(page)


@pytest.fixture
def customer_secret(transactional_db) -> tuple[str, str]:
    """A verified customer who already protects the account with an authenticator app."""
    user = UserFactory(email="careful@example.com")
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return user.email, secret


def test_a_wrong_authenticator_code_is_refused_and_does_not_sign_in(
    page: Page, live_server, customer_secret
):
    email, secret = customer_secret
    page.goto(live_server.url)

    sign_in_with_password(page, email, PASSWORD)
    enter_authenticator_code(page, code_that_is_wrong(secret))

    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()

    # The password alone gets no further: the servers page sends the visitor back to the
    # pending code prompt, signed out.
    page.goto(f"{live_server.url}/servers/")
    expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
    expect(page.get_by_role("heading", name="Servers")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(main_nav(page).get_by_role("link", name="Sign in")).to_be_visible()
