"""The customer profile: who is invoiced and from where. (Its VAT ID's format:
test_vat_id_format.py; what VIES says of it: test_vat_id_checks.py.)"""

from __future__ import annotations

import pytest

from accounts.models import CustomerProfile
from accounts.services import profile_is_complete
from tests.factories import UserFactory

VALID = {
    "full_name": "Carol Client",
    "company": "",
    "address_line1": "1 Rue de Rivoli",
    "address_line2": "",
    "postal_code": "75001",
    "city": "Paris",
    "country": "FR",
    "vat_id": "",
    "phone": "+33 1 23 45 67 89",
}


@pytest.fixture
def carol_client(client, db):
    client.force_login(UserFactory(email="carol@example.com"))
    return client


def test_a_customer_saves_a_complete_profile(carol_client):
    response = carol_client.post("/account/profile/", VALID)
    assert response.status_code == 302
    profile = CustomerProfile.objects.get(user__email="carol@example.com")
    assert (profile.full_name, profile.country.code, profile.vat_id) == ("Carol Client", "FR", "")
    assert profile_is_complete(profile.user)


def test_a_business_with_a_vat_id_is_saved_normalised(carol_client):
    carol_client.post(
        "/account/profile/", VALID | {"company": "Carol SAS", "vat_id": "fr 44 732 829 320"}
    )
    assert CustomerProfile.objects.get().vat_id == "FR44732829320"


def test_a_bad_vat_id_shows_an_error_keeps_the_input_and_saves_nothing(carol_client):
    response = carol_client.post(
        "/account/profile/", VALID | {"company": "Carol SAS", "vat_id": "FR12"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "This does not look like a FR VAT ID: it must look like FR44732829320." in html
    assert 'value="FR12"' in html and 'value="Carol SAS"' in html
    assert not CustomerProfile.objects.exists()


def test_a_vat_id_needs_a_company_name(carol_client):
    response = carol_client.post("/account/profile/", VALID | {"vat_id": "FR44732829320"})
    assert "enter the company name" in response.content.decode()
    assert not CustomerProfile.objects.exists()


def test_a_vat_id_outside_the_eu_is_refused(carol_client):
    response = carol_client.post(
        "/account/profile/",
        VALID | {"country": "US", "company": "Carol Inc", "vat_id": "DE123456788"},
    )
    assert "only applies to a billing address in the EU" in response.content.decode()
    assert not CustomerProfile.objects.exists()


@pytest.mark.parametrize("field", ["full_name", "address_line1", "postal_code", "city", "country"])
def test_required_fields_are_required(carol_client, field):
    response = carol_client.post("/account/profile/", VALID | {field: ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not CustomerProfile.objects.exists()


@pytest.mark.parametrize("phone", ["12", "call me", "+49 30 1234567890123456"])
def test_an_implausible_phone_number_is_refused(carol_client, phone):
    response = carol_client.post("/account/profile/", VALID | {"phone": phone})
    assert "Enter a phone number with country code" in response.content.decode()


def test_an_unknown_country_code_is_refused(carol_client):
    response = carol_client.post("/account/profile/", VALID | {"country": "XX"})
    assert "Select a valid choice" in response.content.decode()


def test_saving_again_updates_the_same_profile(carol_client):
    carol_client.post("/account/profile/", VALID)
    carol_client.post("/account/profile/", VALID | {"city": "Lyon", "postal_code": "69001"})
    assert CustomerProfile.objects.get().city == "Lyon"
    assert CustomerProfile.objects.count() == 1


def test_after_saving_it_returns_to_a_local_next_page_only(carol_client):
    response = carol_client.post("/account/profile/", VALID | {"next": "/servers/"})
    assert response["Location"] == "/servers/"
    for hostile in ["//evil.example/", "/\\evil.example", "https://evil.example/"]:
        response = carol_client.post("/account/profile/", VALID | {"next": hostile})
        assert response["Location"] == "/account/", hostile


def test_a_customer_without_a_profile_is_not_complete(db):
    assert not profile_is_complete(UserFactory())


def test_a_customer_never_sees_another_customers_profile(alice, bob, client):
    client.force_login(bob)
    html = client.get("/account/profile/").content.decode()
    assert "Bob Baker" in html
    assert "Alice Archer" not in html
