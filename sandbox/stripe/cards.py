"""Test cards: what a card number does when it is charged (Stripe's test numbers).

3-D Secure as Stripe's test cards behave: `4000 0025 0000 3155` asks for authentication on a
payment the customer makes (on session) unless the card was set up for later use, which a
subscription checkout or a card saved in the portal does, so later off-session charges go
through; `4000 0027 6000 3184` asks for authentication on every payment, however set up.
"""

from __future__ import annotations

import re

from .store import StripeError

SUCCEEDS, DECLINED, LATER_DECLINED = "succeeds", "declined", "later_declined"
AUTH_UNLESS_SET_UP, AUTH_ALWAYS = "auth_unless_set_up", "auth_always"
CARDS = {
    "4242424242424242": SUCCEEDS,
    "4000000000000002": DECLINED,
    "4000000000000341": LATER_DECLINED,
    "4000002500003155": AUTH_UNLESS_SET_UP,
    "4000002760003184": AUTH_ALWAYS,
}
# What one payment attempt does.
PAID, FAILED, NEEDS_ACTION = "paid", "failed", "requires_action"
PROCESSING = "processing"  # a bank debit submitted, settled later
MAX_ATTEMPTS = 4
RETRY_DELAY = 3 * 86400
DECLINE = ("card_declined", "Your card was declined.")


def card_error(code: str, message: str, decline_code: str | None = None) -> StripeError:
    return StripeError(message, status=402, type="card_error", code=code, decline_code=decline_code)


def check_card(number: str, expiry: str = "12 / 34", cvc: str = "123") -> tuple[str, tuple]:
    """The normalised number and (month, year), or a card_error as Checkout would show it."""
    number = re.sub(r"[\s-]", "", number or "")
    behaviour = CARDS.get(number)
    if behaviour is None:
        raise card_error("incorrect_number", "Your card number is incorrect.")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry or "")
    if not match or not 1 <= int(match[1]) <= 12:
        raise card_error("invalid_expiry_month", "Your card's expiration date is incomplete.")
    year = int(match[2]) + (2000 if len(match[2]) == 2 else 0)
    if not re.fullmatch(r"\d{3,4}", (cvc or "").strip()):
        raise card_error("incorrect_cvc", "Your card's security code is incomplete.")
    if behaviour == DECLINED:
        raise card_error(DECLINE[0], DECLINE[1], "generic_decline")
    return number, (int(match[1]), year)


def outcome(behaviour: str | None, *, off_session: bool, set_up: bool, authenticated: bool) -> str:
    """PAID, FAILED or NEEDS_ACTION for a charge on a card of this behaviour.

    `authenticated`: the customer is at the page and completes the 3-D Secure challenge.
    """
    if behaviour == SUCCEEDS:
        return PAID
    if behaviour == LATER_DECLINED:
        return FAILED if off_session else PAID
    if behaviour == AUTH_ALWAYS:
        return PAID if authenticated else NEEDS_ACTION
    if behaviour == AUTH_UNLESS_SET_UP:
        return PAID if authenticated or (off_session and set_up) else NEEDS_ACTION
    return FAILED
