"""What VIES says of a customer's VAT ID: asked when the ID is saved (briefly), kept on the
profile with its evidence, asked again by beat when VIES could not answer (backing off) and a
year after a confirmation, and shown to the customer in plain words."""

from __future__ import annotations

import datetime
import time

import pytest
from django.utils import timezone

from accounts import vat
from accounts.admin import UserAdmin
from accounts.models import CustomerProfile, VatIdCheck
from accounts.tasks import recheck_vat_ids
from tests.factories import ProfileFactory, UserFactory

Status = CustomerProfile.VatIdStatus
BUSINESS = {
    "full_name": "Claire Comptable",
    "company": "Exemple SARL",
    "address_line1": "12 Rue de la Paix",
    "address_line2": "",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
    "vat_id": "FR44732829320",  # registered in the VIES stand-in
    "phone": "+33 1 23 45 67 89",
}
UNREGISTERED = "FR11123456782"  # right check digits, nobody's number


@pytest.fixture
def claire(client, db):
    client.force_login(UserFactory(email="claire@example.fr"))
    return client


def profile() -> CustomerProfile:
    return CustomerProfile.objects.get(user__email="claire@example.fr")


def make_due(**fields) -> None:
    CustomerProfile.objects.update(
        vat_id_next_check_at=timezone.now() - datetime.timedelta(seconds=1), **fields
    )


def test_a_vat_id_vies_confirms_is_kept_with_its_evidence(claire):
    response = claire.post("/account/profile/", BUSINESS, follow=True)
    saved = profile()
    assert saved.vat_id_status == Status.CONFIRMED and saved.vat_id_confirmed
    assert saved.vat_id_consultation.startswith("WAPI")
    assert saved.vat_id_name == "EXEMPLE SARL"
    assert abs(saved.vat_id_checked_at - timezone.now()) < datetime.timedelta(minutes=1)
    assert (
        saved.vat_id_next_check_at.date()
        == (saved.vat_id_checked_at + datetime.timedelta(days=365)).date()
    )
    check = VatIdCheck.objects.get()
    assert (check.vat_id, check.outcome, check.trigger) == ("FR44732829320", "valid", "profile")
    assert check.consultation_number == saved.vat_id_consultation
    assert "VIES confirmed the VAT ID FR44732829320 (EXEMPLE SARL): your invoices are " in (
        response.content.decode()
    )


def test_the_profile_page_shows_the_confirmation_in_plain_words(claire):
    claire.post("/account/profile/", BUSINESS)
    page = claire.get("/account/profile/").content.decode()
    assert "VAT ID FR44732829320: confirmed by VIES" in page
    assert "registered to EXEMPLE SARL" in page
    assert f"VIES consultation number {profile().vat_id_consultation}" in page
    assert "Your invoices are reverse-charged" in page
    overview = claire.get("/account/").content.decode()
    assert "FR44732829320" in overview and "confirmed by VIES" in overview


def test_a_vat_id_vies_does_not_know_is_invalid_and_pays_vat(claire):
    response = claire.post("/account/profile/", BUSINESS | {"vat_id": UNREGISTERED}, follow=True)
    saved = profile()
    assert saved.vat_id == UNREGISTERED  # saved, as the customer typed it
    assert saved.vat_id_status == Status.INVALID and not saved.vat_id_confirmed
    assert saved.vat_id_next_check_at is None  # the customer has to correct it
    assert f"VIES says {UNREGISTERED} is not a valid VAT ID, so VAT is charged" in (
        response.content.decode()
    )
    page = claire.get("/account/profile/").content.decode()
    assert f"VAT ID {UNREGISTERED}: not valid according to VIES" in page


def test_with_vies_down_the_id_waits_pays_vat_and_beat_confirms_it_later(claire, vies):
    vies.fail("FR", "MS_UNAVAILABLE")
    response = claire.post("/account/profile/", BUSINESS, follow=True)
    waiting = profile()
    assert waiting.vat_id_status == Status.UNAVAILABLE and not waiting.vat_id_confirmed
    assert waiting.vat_id_failures == 1
    retry_in = waiting.vat_id_next_check_at - timezone.now()
    assert datetime.timedelta(minutes=4) < retry_in <= datetime.timedelta(minutes=6)
    assert "could not be reached to confirm FR44732829320; until it does, VAT is charged" in (
        response.content.decode()
    )
    page = claire.get("/account/profile/").content.decode()
    assert "VAT ID FR44732829320: could not be checked yet." in page
    assert "We ask again automatically after" in page

    assert recheck_vat_ids() == 0  # not due yet
    vies.fail("FR", None)
    make_due()
    assert recheck_vat_ids() == 1
    confirmed = profile()
    assert confirmed.vat_id_status == Status.CONFIRMED and confirmed.vat_id_failures == 0
    assert [c.outcome for c in VatIdCheck.objects.order_by("pk")] == ["unavailable", "valid"]
    assert VatIdCheck.objects.order_by("pk").last().trigger == "beat"


def test_a_vies_that_hangs_delays_the_save_by_the_short_timeout_only(claire, vies, settings):
    settings.VIES_REQUEST_TIMEOUT = 0.5
    vies.hang(30)
    started = time.monotonic()
    response = claire.post("/account/profile/", BUSINESS)
    assert response.status_code == 302
    assert time.monotonic() - started < 3
    assert profile().vat_id_status == Status.UNAVAILABLE
    assert VatIdCheck.objects.get().error == "TIMEOUT"


def test_each_outage_waits_twice_as_long_up_to_the_limit(db, vies, settings):
    settings.VIES_RETRY_BASE, settings.VIES_RETRY_MAX = 300, 2400
    ProfileFactory(country="FR", vat_id="FR44732829320", company="Exemple SARL")
    vies.fail("*", "SERVICE_UNAVAILABLE")
    waits = []
    for _ in range(6):
        make_due()
        before = timezone.now()
        recheck_vat_ids()
        waits.append((CustomerProfile.objects.get().vat_id_next_check_at - before).total_seconds())
    assert 300 <= waits[0] <= 361  # the base, plus up to a fifth so they do not all come at once
    assert 600 <= waits[1] <= 721
    assert 1200 <= waits[2] <= 1441
    assert all(2400 <= wait <= 2881 for wait in waits[3:])
    assert CustomerProfile.objects.get().vat_id_failures == 6


def test_beat_asks_once_per_member_state_that_is_down_in_a_round(db, vies):
    for n in range(3):
        ProfileFactory(country="FR", vat_id="FR44732829320", company=f"Exemple {n}")
    ProfileFactory(country="NL", vat_id="NL123456782B01", company="Voorbeeld B.V.")
    vies.fail("FR", "MS_UNAVAILABLE")
    make_due()
    asked_before = len(vies.requests)
    recheck_vat_ids()
    asked = [r["countryCode"] for r in vies.requests[asked_before:]]
    assert sorted(asked) == ["FR", "NL"]
    nl = CustomerProfile.objects.get(country="NL")
    assert nl.vat_id_status == Status.CONFIRMED
    still_due = CustomerProfile.objects.filter(
        country="FR", vat_id_next_check_at__lte=timezone.now()
    )
    assert still_due.count() == 2  # asked next round


def test_a_confirmation_is_asked_again_a_year_on_and_an_outage_then_keeps_it(db, vies):
    customer = ProfileFactory(country="FR", vat_id="FR44732829320", company="Exemple SARL")
    vat.vat_id_changed(profile_id=customer.pk)
    first = CustomerProfile.objects.get()
    assert first.vat_id_status == Status.CONFIRMED
    vies.fail("FR", "MS_UNAVAILABLE")
    make_due()
    recheck_vat_ids()
    kept = CustomerProfile.objects.get()
    assert kept.vat_id_status == Status.CONFIRMED  # the last confirmation stands
    assert kept.vat_id_consultation == first.vat_id_consultation
    assert kept.vat_id_failures == 1 and kept.vat_id_next_check_at > timezone.now()


def test_a_year_on_vies_no_longer_knowing_the_id_ends_the_reverse_charge(db, vies):
    vies.register("FR11123456782", "ANCIENNE SARL")
    customer = ProfileFactory(country="FR", vat_id="FR11123456782", company="Ancienne SARL")
    vat.vat_id_changed(profile_id=customer.pk)
    assert CustomerProfile.objects.get().vat_id_confirmed
    vies.reset()  # the company is deregistered
    make_due()
    recheck_vat_ids()
    ended = CustomerProfile.objects.get()
    assert ended.vat_id_status == Status.INVALID and not ended.vat_id_confirmed
    assert ended.vat_id_consultation.startswith("WAPI")  # the consultation that said so


def test_changing_the_vat_id_starts_again(claire, vies):
    vies.register("FR11123456782", "NOUVELLE SARL")
    claire.post("/account/profile/", BUSINESS)
    old = profile().vat_id_consultation
    vies.fail("FR", "MS_UNAVAILABLE")
    claire.post("/account/profile/", BUSINESS | {"vat_id": "FR11123456782"})
    changed = profile()
    assert changed.vat_id_status == Status.UNAVAILABLE  # the old confirmation does not carry
    assert (changed.vat_id_consultation, changed.vat_id_name) == ("", "")
    assert VatIdCheck.objects.filter(consultation_number=old).exists()  # the evidence stays


def test_saving_the_profile_again_does_not_ask_vies_again(claire, vies):
    claire.post("/account/profile/", BUSINESS)
    asked = len(vies.requests)
    claire.post("/account/profile/", BUSINESS | {"city": "Lyon", "postal_code": "69001"})
    assert len(vies.requests) == asked
    assert profile().vat_id_status == Status.CONFIRMED and profile().city == "Lyon"


def test_saving_other_fields_keeps_a_status_beat_wrote_meanwhile(claire, vies):
    vies.fail("FR", "MS_UNAVAILABLE")
    claire.get("/account/profile/")
    claire.post("/account/profile/", BUSINESS)
    vies.fail("FR", None)
    make_due()
    recheck_vat_ids()  # beat confirms it ...
    claire.post("/account/profile/", BUSINESS | {"phone": "+33 1 98 76 54 32"})  # ... then
    assert profile().vat_id_status == Status.CONFIRMED


def test_removing_the_vat_id_clears_its_state(claire):
    claire.post("/account/profile/", BUSINESS)
    claire.post("/account/profile/", BUSINESS | {"vat_id": ""})
    cleared = profile()
    assert (cleared.vat_id, cleared.vat_id_status) == ("", Status.UNCHECKED)
    assert cleared.vat_id_next_check_at is None and cleared.vat_id_consultation == ""
    assert "VAT ID" not in claire.get("/account/profile/").content.decode().split("<form")[0]


def test_an_id_saved_before_vies_was_asked_shows_as_not_checked_yet(db, client):
    customer = ProfileFactory(country="FR", vat_id="FR44732829320", company="Exemple SARL")
    client.force_login(customer.user)
    page = client.get("/account/profile/").content.decode()
    assert "VAT ID FR44732829320: not checked yet." in page
    assert "Until it confirms the number, VAT is charged." in page


def test_staff_can_ask_vies_again_from_the_admin(db, rf, vies, staff):
    customer = ProfileFactory(country="FR", vat_id="FR44732829320", company="Exemple SARL")
    request = rf.post("/admin/accounts/user/")
    request.user = staff
    request._messages = _Messages()
    admin = UserAdmin(type(customer.user), None)
    admin.check_vat_ids(request, type(customer.user).objects.filter(pk=customer.user_id))
    assert CustomerProfile.objects.get().vat_id_status == Status.CONFIRMED
    assert VatIdCheck.objects.get().trigger == "staff"
    assert request._messages.seen == ["VIES was asked about 1 VAT ID: 1 confirmed by VIES."]


class _Messages:
    def __init__(self):
        self.seen: list[str] = []

    def add(self, level, message, extra_tags=""):
        self.seen.append(str(message))
