"""accounts/vies.py, the one door to VIES, driven over HTTP against the stand-in
(sandbox/vies.py): plain answers, errors classified transient or permanent, bounded waits."""

from __future__ import annotations

import datetime
import socket
import time

import pytest

from accounts.vies import ViesError, check_vat_id
from tests.vies_fixture import SELLER_VAT_ID


def test_a_registered_vat_id_is_valid_with_a_consultation_number(vies):
    answer = check_vat_id("FR44732829320", timeout=5)
    assert answer.valid
    assert answer.vat_id == "FR44732829320"
    assert answer.name == "EXEMPLE SARL"
    assert answer.address == "12 RUE DE LA PAIX\n75002 PARIS"
    assert answer.consultation_number.startswith("WAPI")
    age = datetime.datetime.now(tz=datetime.UTC) - answer.request_date
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)


def test_the_seller_is_named_as_requester(vies):
    check_vat_id("FR44732829320", timeout=5)
    assert vies.requests[-1] == {
        "countryCode": "FR",
        "vatNumber": "44732829320",
        "requesterMemberStateCode": SELLER_VAT_ID[:2],
        "requesterNumber": SELLER_VAT_ID[2:],
    }


def test_without_a_seller_vat_id_there_is_no_consultation_number(vies, settings):
    settings.SELLER_VAT_ID = ""
    answer = check_vat_id("FR44732829320", timeout=5)
    assert answer.valid and answer.consultation_number == ""
    assert "requesterNumber" not in vies.requests[-1]


def test_a_well_formed_but_unregistered_vat_id_is_not_valid(vies):
    answer = check_vat_id("FR11123456782", timeout=5)
    assert not answer.valid
    assert (answer.name, answer.address) == ("", "")  # VIES's "---"


def test_a_member_state_that_shares_no_names_gives_none(vies):
    answer = check_vat_id("DE123456788", timeout=5)
    assert answer.valid and (answer.name, answer.address) == ("", "")


def test_greece_is_asked_as_el(vies):
    vies.register("EL123456783", "PARADIGMA AE", "ATHINA")
    assert check_vat_id("EL123456783", timeout=5).valid
    assert vies.requests[-1]["countryCode"] == "EL"


@pytest.mark.parametrize(
    "code", ["MS_UNAVAILABLE", "MS_MAX_CONCURRENT_REQ", "SERVICE_UNAVAILABLE", "TIMEOUT"]
)
def test_a_member_state_down_or_busy_is_transient(vies, code):
    vies.fail("FR", code)
    with pytest.raises(ViesError) as raised:
        check_vat_id("FR44732829320", timeout=5)
    assert (raised.value.code, raised.value.transient) == (code, True)
    assert check_vat_id("DE123456788", timeout=5).valid  # other member states answer


def test_invalid_input_is_permanent(vies):
    with pytest.raises(ViesError) as raised:
        check_vat_id("QQ123456789", timeout=5)
    assert (raised.value.code, raised.value.transient) == ("INVALID_INPUT", False)


def test_a_requester_vies_does_not_know_is_permanent(vies, settings):
    settings.SELLER_VAT_ID = "DE999999999"
    with pytest.raises(ViesError) as raised:
        check_vat_id("FR44732829320", timeout=5)
    assert (raised.value.code, raised.value.transient) == ("INVALID_REQUESTER_INFO", False)


def test_a_vies_that_hangs_costs_the_timeout_and_is_transient(vies):
    vies.hang(30)
    started = time.monotonic()
    with pytest.raises(ViesError) as raised:
        check_vat_id("FR44732829320", timeout=0.5)
    assert time.monotonic() - started < 3
    assert (raised.value.code, raised.value.transient) == ("TIMEOUT", True)


def test_a_vies_that_is_not_there_is_transient(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.VIES_API_BASE = f"http://127.0.0.1:{port}/rest-api"
    with pytest.raises(ViesError) as raised:
        check_vat_id("FR44732829320", timeout=2)
    assert (raised.value.code, raised.value.transient) == ("UNREACHABLE", True)


def test_an_answer_that_is_not_vies_is_classified_by_its_status(vies, settings):
    settings.VIES_API_BASE = vies.url.replace("/rest-api", "/elsewhere")
    with pytest.raises(ViesError) as raised:
        check_vat_id("FR44732829320", timeout=5)
    assert (raised.value.code, raised.value.transient) == ("HTTP_404", False)
