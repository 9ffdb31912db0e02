"""VAT on what we sell: which treatment applies to a customer, at which rate, and the cents.

DESIGN.md "Money": the seller is established in `SELLER_COUNTRY` (Germany by default).
- domestic: a customer in the seller's country pays the seller's rate, business or not;
- EU B2C: a consumer elsewhere in the EU pays their own country's rate (the OSS scheme);
- reverse charge: an EU business whose VAT ID VIES confirmed (accounts/vat.py) pays no VAT;
  the customer accounts for it. A VAT ID that is only well-formed, VIES refused, or VIES could
  not check yet (it is down) pays the customer's VAT until VIES confirms it;
- outside the EU: no EU VAT.

Amounts are integer cents; VAT is computed per invoice line and rounded half up, as the line
appears on the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from accounts.models import CustomerProfile
from accounts.vat import EU_COUNTRIES

# Standard rates in force on 2026-01-01 (percent). Review when a member state changes its rate.
STANDARD_RATES = {
    "AT": Decimal("20"),
    "BE": Decimal("21"),
    "BG": Decimal("20"),
    "CY": Decimal("19"),
    "CZ": Decimal("21"),
    "DE": Decimal("19"),
    "DK": Decimal("25"),
    "EE": Decimal("24"),
    "ES": Decimal("21"),
    "FI": Decimal("25.5"),
    "FR": Decimal("20"),
    "GR": Decimal("24"),
    "HR": Decimal("25"),
    "HU": Decimal("27"),
    "IE": Decimal("23"),
    "IT": Decimal("22"),
    "LT": Decimal("21"),
    "LU": Decimal("17"),
    "LV": Decimal("21"),
    "MT": Decimal("18"),
    "NL": Decimal("21"),
    "PL": Decimal("23"),
    "PT": Decimal("23"),
    "RO": Decimal("21"),
    "SE": Decimal("25"),
    "SI": Decimal("22"),
    "SK": Decimal("23"),
}
assert set(STANDARD_RATES) == EU_COUNTRIES

DOMESTIC = "domestic"
EU_B2C = "eu_b2c"
REVERSE_CHARGE = "reverse_charge"
OUTSIDE_EU = "outside_eu"
TREATMENT_CHOICES = [
    (DOMESTIC, "Domestic VAT"),
    (EU_B2C, "EU consumer VAT (OSS)"),
    (REVERSE_CHARGE, "EU reverse charge"),
    (OUTSIDE_EU, "Outside the EU (no VAT)"),
]
TREATMENT_NOTES = {
    DOMESTIC: "VAT at {rate}%",
    EU_B2C: "VAT at {rate}% ({country})",
    REVERSE_CHARGE: "Reverse charge: VAT to be accounted for by the recipient ({vat_id})",
    OUTSIDE_EU: "No EU VAT (customer outside the EU)",
}


@dataclass(frozen=True)
class VatSituation:
    treatment: str
    country: str  # the customer's country: where the service is taxed or reported
    rate: Decimal  # percent; 0 unless VAT is charged
    vat_id: str = ""

    @property
    def charges_vat(self) -> bool:
        return self.rate > 0

    @property
    def note(self) -> str:
        rate = f"{self.rate.normalize():f}"
        return TREATMENT_NOTES[self.treatment].format(
            rate=rate, country=self.country, vat_id=self.vat_id
        )


def situation_for(country: str, vat_id: str = "", *, confirmed: bool = False) -> VatSituation:
    """The VAT treatment for a customer billed in `country` (ISO alpha-2), with an optional
    EU VAT ID: it reverse-charges only when VIES `confirmed` it."""
    country = (country or "").upper()
    seller = settings.SELLER_COUNTRY
    if country == seller:
        return VatSituation(DOMESTIC, country, STANDARD_RATES[seller], vat_id)
    if country in EU_COUNTRIES:
        if vat_id and confirmed:
            return VatSituation(REVERSE_CHARGE, country, Decimal("0"), vat_id)
        return VatSituation(EU_B2C, country, STANDARD_RATES[country], vat_id)
    return VatSituation(OUTSIDE_EU, country, Decimal("0"))


def situation_of(profile: CustomerProfile) -> VatSituation:
    return situation_for(str(profile.country), profile.vat_id, confirmed=profile.vat_id_confirmed)


def vat_cents(net_cents: int, rate: Decimal) -> int:
    """VAT on one line of `net_cents` at `rate` percent, rounded half up to the cent."""
    return int((Decimal(net_cents) * rate / 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Quote:
    """What an order costs: the monthly line, the one-off setup line and the first payment."""

    currency: str
    situation: VatSituation
    monthly_net: int
    monthly_vat: int
    setup_net: int
    setup_vat: int

    @property
    def monthly_gross(self) -> int:
        return self.monthly_net + self.monthly_vat

    @property
    def setup_gross(self) -> int:
        return self.setup_net + self.setup_vat

    @property
    def first_net(self) -> int:
        return self.monthly_net + self.setup_net

    @property
    def first_vat(self) -> int:
        return self.monthly_vat + self.setup_vat

    @property
    def first_total(self) -> int:
        return self.first_net + self.first_vat


def quote(*, monthly_cents: int, setup_cents: int, currency: str, situation: VatSituation) -> Quote:
    return Quote(
        currency=currency,
        situation=situation,
        monthly_net=monthly_cents,
        monthly_vat=vat_cents(monthly_cents, situation.rate),
        setup_net=setup_cents,
        setup_vat=vat_cents(setup_cents, situation.rate),
    )
