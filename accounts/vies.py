"""The one door to VIES, the EU's VAT ID service: the only module that talks to it.

Plain data in and out: a VAT ID as the customer writes it (`FR44732829320`), a `ViesAnswer` back,
or a `ViesError` that says whether waiting helps (`transient`: the member state's service is
down or busy, VIES is down, no answer in time) or not (the input or our requester ID is wrong).
`VIES_API_BASE` points the same code at another address (the stand-in, `sandbox/vies.py`, in
development and tests); unset, it is the real service. With `SELLER_VAT_ID` set, the seller is
named as requester and VIES gives a consultation number: the evidence for a reverse charge.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import requests
from django.conf import settings

logger = logging.getLogger(__name__)

REAL_API_BASE = "https://ec.europa.eu/taxation_customs/vies/rest-api"

# VIES's error codes that mean "ask again later". The others (INVALID_INPUT,
# INVALID_REQUESTER_INFO, VAT_BLOCKED, IP_BLOCKED, ...) will not change by waiting.
TRANSIENT_CODES = frozenset(
    {
        "SERVICE_UNAVAILABLE",
        "MS_UNAVAILABLE",
        "TIMEOUT",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "GLOBAL_MAX_CONCURRENT_REQ_TIME",
        "MS_MAX_CONCURRENT_REQ",
        "MS_MAX_CONCURRENT_REQ_TIME",
    }
)
# VIES writes this where a member state does not share a trader's name or address.
_NOT_SHARED = {"---", "--", "-"}


@dataclass(frozen=True)
class ViesAnswer:
    """What VIES said about one VAT ID."""

    vat_id: str
    valid: bool
    request_date: datetime.datetime
    consultation_number: str  # VIES's requestIdentifier; empty without a requester
    name: str
    address: str


class ViesError(Exception):
    """VIES gave no answer about the number; `code` is VIES's error code (or ours)."""

    def __init__(self, message: str, *, code: str, transient: bool):
        super().__init__(message)
        self.code = code
        self.transient = transient


def split_vat_id(vat_id: str) -> tuple[str, str]:
    """`FR44732829320` → ("FR", "44732829320"): VIES's country code (EL for Greece) and number."""
    return vat_id[:2].upper(), vat_id[2:]


def check_vat_id(vat_id: str, *, timeout: float) -> ViesAnswer:
    """Ask VIES whether `vat_id` (prefix and number, normalised) is valid, within `timeout`
    seconds for connecting and for each read. Raises ViesError when VIES gives no answer."""
    country, number = split_vat_id(vat_id)
    body = {"countryCode": country, "vatNumber": number}
    if settings.SELLER_VAT_ID:
        requester_country, requester_number = split_vat_id(settings.SELLER_VAT_ID)
        body |= {"requesterMemberStateCode": requester_country, "requesterNumber": requester_number}
    url = (settings.VIES_API_BASE or REAL_API_BASE).rstrip("/") + "/check-vat-number"
    try:
        response = requests.post(url, json=body, timeout=timeout)
    except requests.Timeout as error:
        raise ViesError(
            f"VIES did not answer within {timeout:g} s.", code="TIMEOUT", transient=True
        ) from error
    except requests.RequestException as error:
        raise ViesError(
            f"VIES could not be reached: {error}", code="UNREACHABLE", transient=True
        ) from error
    return _answer(vat_id, response)


def _answer(vat_id: str, response: requests.Response) -> ViesAnswer:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        # A proxy's error page or an empty body: a server-side failure is worth retrying.
        raise ViesError(
            f"VIES answered HTTP {response.status_code} without a VIES body.",
            code=f"HTTP_{response.status_code}",
            transient=response.status_code >= 500 or response.status_code == 429,
        )
    code = _error_code(data)
    if code:
        logger.info("vies %s: %s (HTTP %s)", vat_id, code, response.status_code)
        raise ViesError(f"VIES: {code}", code=code, transient=code in TRANSIENT_CODES)
    if not isinstance(data.get("valid"), bool):
        raise ViesError(
            f"VIES answered HTTP {response.status_code} without saying whether it is valid.",
            code=f"HTTP_{response.status_code}",
            transient=response.status_code >= 500,
        )
    return ViesAnswer(
        vat_id=vat_id,
        valid=data["valid"],
        request_date=_parse_date(data.get("requestDate")),
        consultation_number=str(data.get("requestIdentifier") or ""),
        name=_shared(data.get("name")),
        address=_shared(data.get("address")),
    )


def _error_code(data: dict) -> str:
    """VIES's error: `{"actionSucceed": false, "errorWrappers": [{"error": "MS_UNAVAILABLE"}]}`,
    or a `userError` other than VALID/INVALID on an answer."""
    wrappers = data.get("errorWrappers") or []
    for wrapper in wrappers:
        if isinstance(wrapper, dict) and wrapper.get("error"):
            return str(wrapper["error"])
    if data.get("actionSucceed") is False:
        return "SERVICE_UNAVAILABLE"
    user_error = data.get("userError")
    if user_error and user_error not in ("VALID", "INVALID"):
        return str(user_error)
    return ""


def _parse_date(value) -> datetime.datetime:
    """VIES's requestDate (`2026-05-14T10:02:13.361Z`, sometimes a bare date) as an aware
    datetime; our clock if it gave none."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(tz=datetime.UTC)


def _shared(value) -> str:
    text = str(value or "").strip()
    return "" if text in _NOT_SHARED else text
