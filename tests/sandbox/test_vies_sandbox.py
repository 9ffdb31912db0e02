"""The VIES stand-in (sandbox/vies.py) answers in the shapes of VIES's REST interface, and its
switches (a member state down, a hang) work over HTTP as `make run` uses them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def control(vies, switch: str, **body) -> None:
    assert call(vies.url.replace("/rest-api", f"/_sandbox/{switch}"), body) == (200, {"ok": True})


def test_a_registered_number_with_a_requester_is_valid_with_a_consultation_number(vies):
    status, answer = call(
        f"{vies.url}/check-vat-number",
        {
            "countryCode": "FR",
            "vatNumber": "44732829320",
            "requesterMemberStateCode": "DE",
            "requesterNumber": "123456788",
        },
    )
    assert status == 200
    assert answer["valid"] is True
    assert (answer["countryCode"], answer["vatNumber"]) == ("FR", "44732829320")
    assert answer["name"] == "EXEMPLE SARL" and "PARIS" in answer["address"]
    assert answer["requestIdentifier"].startswith("WAPI") and len(answer["requestIdentifier"]) == 16
    assert answer["requestDate"].endswith("Z") and "T" in answer["requestDate"]
    assert answer["traderNameMatch"] == "NOT_PROCESSED"


def test_an_unknown_number_is_not_valid_and_without_a_requester_has_no_consultation(vies):
    status, answer = call(
        f"{vies.url}/check-vat-number", {"countryCode": "FR", "vatNumber": "11123456782"}
    )
    assert status == 200
    assert (answer["valid"], answer["name"], answer["requestIdentifier"]) == (False, "---", "")


@pytest.mark.parametrize(
    "body,error",
    [
        ({"countryCode": "GR", "vatNumber": "123456783"}, "INVALID_INPUT"),  # VIES wants EL
        ({"countryCode": "FR", "vatNumber": ""}, "INVALID_INPUT"),
        (
            {
                "countryCode": "FR",
                "vatNumber": "44732829320",
                "requesterMemberStateCode": "DE",
                "requesterNumber": "999999999",
            },
            "INVALID_REQUESTER_INFO",
        ),
    ],
)
def test_the_callers_mistakes_are_400_with_vies_error_body(vies, body, error):
    status, answer = call(f"{vies.url}/check-vat-number", body)
    assert status == 400
    assert answer["actionSucceed"] is False
    assert answer["errorWrappers"][0]["error"] == error


def test_a_member_state_switched_off_answers_ms_unavailable_until_switched_on(vies):
    control(vies, "fail", country="FR", error="MS_UNAVAILABLE")
    body = {"countryCode": "FR", "vatNumber": "44732829320"}
    status, answer = call(f"{vies.url}/check-vat-number", body)
    assert status == 200 and answer["errorWrappers"][0]["error"] == "MS_UNAVAILABLE"
    _, lookup = call(f"{vies.url}/ms/FR/vat/44732829320")
    assert (lookup["isValid"], lookup["userError"]) == (False, "MS_UNAVAILABLE")
    _, states = call(f"{vies.url}/check-status")
    availability = {c["countryCode"]: c["availability"] for c in states["countries"]}
    assert availability["FR"] == "Unavailable" and availability["DE"] == "Available"
    control(vies, "fail", country="FR", error=None)
    assert call(f"{vies.url}/check-vat-number", body)[1]["valid"] is True


def test_the_lookup_by_url_answers_like_vies_web_page(vies):
    status, answer = call(f"{vies.url}/ms/NL/vat/123456782B01")
    assert status == 200
    assert (answer["isValid"], answer["userError"], answer["name"]) == (
        True,
        "VALID",
        "VOORBEELD B.V.",
    )
    assert call(f"{vies.url}/ms/NL/vat/999999999B01")[1]["userError"] == "INVALID"


def test_a_number_registered_over_http_becomes_valid(vies):
    control(vies, "register", vat_id="BE0123456056", name="VOORBEELD NV", address="BRUSSEL")
    _, answer = call(
        f"{vies.url}/check-vat-number", {"countryCode": "BE", "vatNumber": "0123456056"}
    )
    assert (answer["valid"], answer["name"]) == (True, "VOORBEELD NV")


def test_a_hang_holds_answers_until_it_is_lifted(vies):
    control(vies, "hang", seconds=0.5)
    started = time.monotonic()
    call(f"{vies.url}/ms/FR/vat/44732829320")
    assert time.monotonic() - started >= 0.5
    control(vies, "hang", seconds=0)
    started = time.monotonic()
    call(f"{vies.url}/ms/FR/vat/44732829320")
    assert time.monotonic() - started < 0.5


def test_reset_brings_the_shipped_registry_back(vies):
    control(vies, "register", vat_id="BE0123456056")
    control(vies, "fail", country="*", error="SERVICE_UNAVAILABLE")
    control(vies, "reset")
    _, answer = call(
        f"{vies.url}/check-vat-number", {"countryCode": "BE", "vatNumber": "0123456056"}
    )
    assert answer["valid"] is False
