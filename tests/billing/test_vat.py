"""VAT by the customer's situation (DESIGN.md "Money"), to the cent: reverse charge only for a
VAT ID that VIES confirmed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import CustomerProfile
from billing.vat import (
    DOMESTIC,
    EU_B2C,
    OUTSIDE_EU,
    REVERSE_CHARGE,
    quote,
    situation_for,
    situation_of,
    vat_cents,
)
from tests.factories import ProfileFactory

Status = CustomerProfile.VatIdStatus
CONFIRMED_FR = "FR44732829320"

# An NVMe VPS at €4.99 a month and a dedicated server at €129.99 with a €49.00 setup fee.
CASES = [
    # country, VAT ID, confirmed by VIES, treatment, rate, monthly, setup, monthly VAT,
    # setup VAT, due today
    ("DE", "", False, DOMESTIC, "19", 499, 0, 95, 0, 594),
    ("DE", "DE123456788", True, DOMESTIC, "19", 12999, 4900, 2470, 931, 21300),
    ("FR", "", False, EU_B2C, "20", 499, 0, 100, 0, 599),
    ("FR", "", False, EU_B2C, "20", 12999, 4900, 2600, 980, 21479),
    ("FR", CONFIRMED_FR, False, EU_B2C, "20", 499, 0, 100, 0, 599),
    ("FR", CONFIRMED_FR, True, REVERSE_CHARGE, "0", 499, 0, 0, 0, 499),
    ("FR", CONFIRMED_FR, True, REVERSE_CHARGE, "0", 12999, 4900, 0, 0, 17899),
    ("US", "", False, OUTSIDE_EU, "0", 499, 0, 0, 0, 499),
    ("US", "", False, OUTSIDE_EU, "0", 12999, 4900, 0, 0, 17899),
]


@pytest.mark.parametrize(
    "country,vat_id,confirmed,treatment,rate,monthly,setup,monthly_vat,setup_vat,due", CASES
)
def test_quote_for_each_situation(
    country, vat_id, confirmed, treatment, rate, monthly, setup, monthly_vat, setup_vat, due
):
    situation = situation_for(country, vat_id, confirmed=confirmed)
    assert situation.treatment == treatment
    assert situation.rate == Decimal(rate)
    assert situation.country == country
    amounts = quote(monthly_cents=monthly, setup_cents=setup, currency="EUR", situation=situation)
    assert (amounts.monthly_vat, amounts.setup_vat) == (monthly_vat, setup_vat)
    assert amounts.first_total == due
    assert amounts.monthly_gross == monthly + monthly_vat


def test_reverse_charge_note_names_the_vat_id():
    assert CONFIRMED_FR in situation_for("FR", CONFIRMED_FR, confirmed=True).note
    assert situation_for("DE").note == "VAT at 19%"
    assert situation_for("FI").note == "VAT at 25.5% (FI)"


def test_the_seller_country_decides_what_is_domestic(settings):
    settings.SELLER_COUNTRY = "FR"
    assert situation_for("FR", CONFIRMED_FR, confirmed=True).treatment == DOMESTIC
    assert situation_for("DE").treatment == EU_B2C


@pytest.mark.parametrize(
    "net,rate,vat",
    [(950, "19", 181), (850, "19", 162), (1, "19", 0), (3, "19", 1), (1000, "25.5", 255)],
)
def test_vat_rounds_half_up_per_line(net, rate, vat):
    assert vat_cents(net, Decimal(rate)) == vat


def test_lowercase_and_empty_countries():
    assert situation_for("de").treatment == DOMESTIC
    assert situation_for("").treatment == OUTSIDE_EU


@pytest.mark.parametrize(
    "status,treatment,rate",
    [
        (Status.CONFIRMED, REVERSE_CHARGE, "0"),
        (Status.UNCHECKED, EU_B2C, "20"),
        (Status.UNAVAILABLE, EU_B2C, "20"),  # VIES down: VAT until it confirms
        (Status.INVALID, EU_B2C, "20"),
    ],
)
def test_only_a_vat_id_vies_confirmed_reverse_charges(db, status, treatment, rate):
    profile = ProfileFactory(
        country="FR", company="Exemple SARL", vat_id=CONFIRMED_FR, vat_id_status=status
    )
    situation = situation_of(profile)
    assert (situation.treatment, situation.rate) == (treatment, Decimal(rate))
    # A made-up French ID once took the VAT on a 5 € server from 100 cents to 0.
    assert quote(
        monthly_cents=499, setup_cents=0, currency="EUR", situation=situation
    ).monthly_vat == (0 if status == Status.CONFIRMED else 100)
