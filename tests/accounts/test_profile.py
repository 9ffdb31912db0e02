"""The customer profile: who is invoiced, from where, and whether a VAT ID reverse-charges."""

from __future__ import annotations

import pytest

from accounts.models import CustomerProfile
from accounts.services import profile_is_complete
from accounts.vat import InvalidVATID, validate_vat_id
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


@pytest.mark.parametrize(
    ("raw", "country", "normalised"),
    [
        ("DE123456789", "DE", "DE123456789"),
        ("de 123 456 789", "DE", "DE123456789"),
        ("FRAB123456789", "FR", "FRAB123456789"),
        ("NL123456789B01", "NL", "NL123456789B01"),
        ("ATU12345678", "AT", "ATU12345678"),
        ("EL123456789", "GR", "EL123456789"),
        ("IE1234567T", "IE", "IE1234567T"),
        ("ESA1234567B", "ES", "ESA1234567B"),
    ],
)
def test_well_formed_vat_ids_are_accepted_and_normalised(raw, country, normalised):
    assert validate_vat_id(raw, country) == normalised


@pytest.mark.parametrize(
    ("raw", "country", "message"),
    [
        ("DE12345678", "DE", "DE123456789"),  # one digit short
        ("FR123456789", "DE", "starts with DE"),  # another country's ID
        ("GR123456789", "GR", "starts with EL"),  # Greece writes EL
        ("ATU1234567", "AT", "ATU12345678"),
        ("NL123456789A01", "NL", "NL123456789B01"),
        ("DE123456789", "US", "only applies to a billing address in the EU"),
        ("DE123456789", "CH", "only applies to a billing address in the EU"),
    ],
)
def test_malformed_vat_ids_are_refused_with_what_is_expected(raw, country, message):
    with pytest.raises(InvalidVATID, match=message):
        validate_vat_id(raw, country)


def test_a_customer_saves_a_complete_profile(carol_client):
    response = carol_client.post("/account/profile/", VALID)
    assert response.status_code == 302
    profile = CustomerProfile.objects.get(user__email="carol@example.com")
    assert (profile.full_name, profile.country.code, profile.vat_id) == ("Carol Client", "FR", "")
    assert profile_is_complete(profile.user)


def test_a_business_with_a_vat_id_is_saved_normalised(carol_client):
    carol_client.post(
        "/account/profile/", VALID | {"company": "Carol SAS", "vat_id": "fr ab 123 456 789"}
    )
    assert CustomerProfile.objects.get().vat_id == "FRAB123456789"


def test_a_bad_vat_id_shows_an_error_keeps_the_input_and_saves_nothing(carol_client):
    response = carol_client.post(
        "/account/profile/", VALID | {"company": "Carol SAS", "vat_id": "FR12"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "does not look like a FR VAT ID" in html
    assert 'value="FR12"' in html and 'value="Carol SAS"' in html
    assert not CustomerProfile.objects.exists()


def test_a_vat_id_needs_a_company_name(carol_client):
    response = carol_client.post("/account/profile/", VALID | {"vat_id": "FRAB123456789"})
    assert "enter the company name" in response.content.decode()
    assert not CustomerProfile.objects.exists()


def test_a_vat_id_outside_the_eu_is_refused(carol_client):
    response = carol_client.post(
        "/account/profile/",
        VALID | {"country": "US", "company": "Carol Inc", "vat_id": "DE123456789"},
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
