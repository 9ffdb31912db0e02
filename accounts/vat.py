"""EU VAT identification numbers: their format, and whether VIES confirmed them.

The format (prefix, length, characters and each member state's check digits) is python-stdnum's
(`stdnum.eu.vat`); the messages are ours. A well-formed number is not yet a registered one:
only an ID that VIES (accounts/vies.py) confirmed reverse-charges (billing/vat.py). A profile's
VAT ID is unchecked, confirmed (with VIES's consultation number and date), invalid, or could not
be checked yet (VIES down: beat asks again, backing off); confirmations are asked again yearly.
"""

from __future__ import annotations

import datetime
import logging
import random
import re

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import InvalidChecksum, ValidationError

from accounts import vies
from accounts.models import CustomerProfile, VatIdCheck

logger = logging.getLogger(__name__)
Status = CustomerProfile.VatIdStatus

# Prefix as written on a VAT ID (Greece uses EL, not GR) → ISO country of the billing address.
_COUNTRY_FOR_PREFIX = {
    "AT": "AT", "BE": "BE", "BG": "BG", "CY": "CY", "CZ": "CZ", "DE": "DE", "DK": "DK",
    "EE": "EE", "EL": "GR", "ES": "ES", "FI": "FI", "FR": "FR", "HR": "HR", "HU": "HU",
    "IE": "IE", "IT": "IT", "LT": "LT", "LU": "LU", "LV": "LV", "MT": "MT", "NL": "NL",
    "PL": "PL", "PT": "PT", "RO": "RO", "SE": "SE", "SI": "SI", "SK": "SK",
}  # fmt: skip
_PREFIX_FOR_COUNTRY = {country: prefix for prefix, country in _COUNTRY_FOR_PREFIX.items()}
EU_COUNTRIES = frozenset(_COUNTRY_FOR_PREFIX.values())

# One made-up example per prefix that passes its country's check digits, shown in messages.
EXAMPLES = {
    "AT": "ATU12345675", "BE": "BE0123456056", "BG": "BG123456786", "CY": "CY20123456L",
    "CZ": "CZ12345679", "DE": "DE123456788", "DK": "DK12345674", "EE": "EE123456780",
    "EL": "EL123456783", "ES": "ESA12345674", "FI": "FI12345671", "FR": "FR44732829320",
    "HR": "HR12345678903", "HU": "HU12345676", "IE": "IE1234567T", "IT": "IT01234560017",
    "LT": "LT123456789011", "LU": "LU12345613", "LV": "LV41234567891", "MT": "MT12345634",
    "NL": "NL123456782B01", "PL": "PL1234567802", "PT": "PT123456789", "RO": "RO1234565",
    "SE": "SE123456789701", "SI": "SI12345679", "SK": "SK1234567807",
}  # fmt: skip

# Sent (sender=CustomerProfile, profile=...) when a profile's VAT ID or its status changed, once
# the change is saved. Billing listens, to bring the Stripe customer up to date; accounts knows
# nothing of Stripe.
vat_id_updated = Signal()


class InvalidVATID(ValueError):
    """The VAT ID does not have the shape its country uses; the message says what is expected."""


def normalise_vat_id(raw: str) -> str:
    return re.sub(r"[\s.\-/]", "", raw or "").upper()


def validate_vat_id(raw: str, country: str) -> str:
    """Return the normalised VAT ID for an EU `country` (ISO 3166 alpha-2), or raise."""
    country = (country or "").upper()
    if country not in EU_COUNTRIES:
        raise InvalidVATID("An EU VAT ID only applies to a billing address in the EU.")
    prefix = _PREFIX_FOR_COUNTRY[country]
    example = EXAMPLES[prefix]
    value = normalise_vat_id(raw)
    if not value.startswith(prefix):
        raise InvalidVATID(f"A VAT ID for this country starts with {prefix}, e.g. {example}.")
    # stdnum would read other scripts' digits (fullwidth, Arabic-Indic) as 0-9; a VAT ID has
    # only ASCII letters and digits, and is stored and sent on as such.
    if not re.fullmatch(r"[A-Z0-9+*]+", value):
        raise InvalidVATID(f"A VAT ID has only the letters A-Z and the digits 0-9, e.g. {example}.")
    try:
        stdnum_vat.validate(value)
    except InvalidChecksum:
        raise InvalidVATID(
            f"{value} is not a valid {prefix} VAT ID: its check digits do not match. Copy it "
            f"from your VAT registration; it must look like {example}."
        ) from None
    except ValidationError:
        raise InvalidVATID(
            f"This does not look like a {prefix} VAT ID: it must look like {example}."
        ) from None
    return value


def reverse_charge_applies(profile: CustomerProfile) -> bool:
    """Whether a confirmed VAT ID reverse-charges this customer: an EU business outside the
    seller's country (billing/vat.py decides the VAT; this is for telling the customer)."""
    country = str(profile.country)
    return country in EU_COUNTRIES and country != settings.SELLER_COUNTRY


# --- Whether VIES confirmed it ---------------------------------------------------------------


def vat_id_changed(*, profile_id: int) -> CustomerProfile:
    """The customer saved a new (or no) VAT ID: what VIES said about the old one no longer
    counts. Asks VIES at once with a short timeout; if VIES gives no answer, beat asks again."""
    now = timezone.now()
    profile = CustomerProfile.objects.get(pk=profile_id)
    CustomerProfile.objects.filter(pk=profile_id).update(
        vat_id_status=Status.UNCHECKED,
        vat_id_checked_at=None,
        vat_id_consultation="",
        vat_id_name="",
        vat_id_address="",
        vat_id_failures=0,
        vat_id_next_check_at=now if profile.vat_id else None,
    )
    if profile.vat_id:
        profile, _ = _check(profile_id, timeout=settings.VIES_REQUEST_TIMEOUT, trigger="profile")
    else:
        profile.refresh_from_db()
    _announce(profile)
    return profile


def vat_id_check(*, profile_id: int, trigger: str = "beat") -> CustomerProfile:
    """Ask VIES about the profile's VAT ID now (beat, staff) and record what it said."""
    profile, changed = _check(profile_id, timeout=settings.VIES_TIMEOUT, trigger=trigger)
    if changed:
        _announce(profile)
    return profile


def vat_ids_due(*, limit: int = 50) -> list[int]:
    """Claim up to `limit` profiles whose VAT ID is due to be asked about, and ask VIES about
    each. A claim moves the profile's next check on, so overlapping beats never ask twice.
    Returns the ids asked about."""
    now = timezone.now()
    due = (
        CustomerProfile.objects.exclude(vat_id="")
        .filter(vat_id_next_check_at__lte=now)
        .order_by("vat_id_next_check_at")
        .values_list("pk", "vat_id_next_check_at", "vat_id")[:limit]
    )
    asked: list[int] = []
    unavailable: set[str] = set()  # member states that did not answer in this round
    for pk, next_check_at, vat_id in due:
        if vat_id[:2] in unavailable:
            continue  # they will be due again next round; no point in waiting on each
        claimed = CustomerProfile.objects.filter(pk=pk, vat_id_next_check_at=next_check_at).update(
            vat_id_next_check_at=now + datetime.timedelta(minutes=15)
        )
        if not claimed:
            continue
        profile = vat_id_check(profile_id=pk)
        asked.append(pk)
        if profile.vat_id_failures:  # VIES gave no answer for this member state just now
            unavailable.add(vat_id[:2])
    return asked


def _check(profile_id: int, *, timeout: float, trigger: str) -> tuple[CustomerProfile, bool]:
    """Ask VIES (no database lock held meanwhile), then record its answer on the profile,
    unless the customer changed the VAT ID while VIES was being asked."""
    vat_id = CustomerProfile.objects.values_list("vat_id", flat=True).get(pk=profile_id)
    if not vat_id:
        return CustomerProfile.objects.get(pk=profile_id), False
    try:
        answer, error = vies.check_vat_id(vat_id, timeout=timeout), None
    except vies.ViesError as exc:
        answer, error = None, exc
        log = logger.info if exc.transient else logger.error
        log("vies: no answer for profile %s (%s): %s", profile_id, exc.code, exc)
    with transaction.atomic():
        profile = CustomerProfile.objects.select_for_update().get(pk=profile_id)
        _record(profile, vat_id, answer, error, trigger)
        if profile.vat_id != vat_id:
            return profile, False
        before = profile.vat_id_status
        if answer is not None:
            _apply_answer(profile, answer)
        elif error.code == "INVALID_INPUT":  # VIES refuses the number itself
            _apply_answer(profile, None)
        else:
            _apply_outage(profile)
        profile.save(
            update_fields=[
                "vat_id_status",
                "vat_id_checked_at",
                "vat_id_consultation",
                "vat_id_name",
                "vat_id_address",
                "vat_id_next_check_at",
                "vat_id_failures",
            ]
        )
    return profile, profile.vat_id_status != before


def _apply_answer(profile: CustomerProfile, answer: vies.ViesAnswer | None) -> None:
    profile.vat_id_failures = 0
    if answer is not None and answer.valid:
        profile.vat_id_status = Status.CONFIRMED
        profile.vat_id_checked_at = answer.request_date
        profile.vat_id_consultation = answer.consultation_number
        profile.vat_id_name = answer.name
        profile.vat_id_address = answer.address
        profile.vat_id_next_check_at = answer.request_date + datetime.timedelta(
            days=settings.VIES_RECHECK_DAYS
        )
        return
    profile.vat_id_status = Status.INVALID
    profile.vat_id_checked_at = answer.request_date if answer else timezone.now()
    profile.vat_id_consultation = answer.consultation_number if answer else ""
    profile.vat_id_name = profile.vat_id_address = ""
    profile.vat_id_next_check_at = None  # the customer has to correct it


def _apply_outage(profile: CustomerProfile) -> None:
    """No answer: an earlier confirmation stands (its evidence is still on the profile), else
    the ID waits as "could not be checked yet". Either way beat asks again, backing off."""
    profile.vat_id_failures += 1
    if profile.vat_id_status != Status.CONFIRMED:
        profile.vat_id_status = Status.UNAVAILABLE
    delay = min(
        settings.VIES_RETRY_MAX,
        settings.VIES_RETRY_BASE * 2 ** (profile.vat_id_failures - 1),
    )
    delay *= random.uniform(1.0, 1.2)  # so a member state's customers do not all come at once
    profile.vat_id_next_check_at = timezone.now() + datetime.timedelta(seconds=delay)


def _record(profile, vat_id, answer, error, trigger) -> None:
    if answer is not None:
        outcome = VatIdCheck.Outcome.VALID if answer.valid else VatIdCheck.Outcome.INVALID
    elif error.code == "INVALID_INPUT":
        outcome = VatIdCheck.Outcome.INVALID
    else:
        outcome = VatIdCheck.Outcome.UNAVAILABLE
    VatIdCheck.objects.create(
        profile=profile,
        vat_id=vat_id,
        outcome=outcome,
        request_date=answer.request_date if answer else None,
        consultation_number=answer.consultation_number if answer else "",
        name=answer.name if answer else "",
        address=answer.address if answer else "",
        error="" if answer else error.code[:200],
        trigger=trigger,
    )


def _announce(profile: CustomerProfile) -> None:
    transaction.on_commit(
        lambda: vat_id_updated.send(sender=CustomerProfile, profile=profile), robust=True
    )
