from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django_countries.fields import CountryField


class User(AbstractUser):
    """A person who signs in: a customer, or staff when `is_staff` is set."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.email or self.username


class CustomerProfile(models.Model):
    """Who the customer is for invoices and VAT; required before the first order."""

    class VatIdStatus(models.TextChoices):
        """What VIES said about `vat_id` (accounts/vat.py); only CONFIRMED reverse-charges."""

        UNCHECKED = "unchecked", "not checked yet"
        CONFIRMED = "confirmed", "confirmed by VIES"
        INVALID = "invalid", "not valid according to VIES"
        UNAVAILABLE = "unavailable", "could not be checked yet"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    full_name = models.CharField(max_length=200)
    company = models.CharField(max_length=200, blank=True)
    address_line1 = models.CharField("address", max_length=200)
    address_line2 = models.CharField("address (line 2)", max_length=200, blank=True)
    postal_code = models.CharField(max_length=20)
    city = models.CharField(max_length=100)
    country = CountryField()
    vat_id = models.CharField(
        "EU VAT ID",
        max_length=20,
        blank=True,
        help_text="Businesses in the EU: once VIES, the EU's VAT ID service, confirms it, "
        "invoices are reverse-charged.",
    )
    vat_id_status = models.CharField(
        "VAT ID status",
        max_length=12,
        choices=VatIdStatus.choices,
        default=VatIdStatus.UNCHECKED,
    )
    # The answer in force (the latest that was not an outage): VIES's date and consultation
    # number are the evidence for a reverse charge; every answer is kept in VatIdCheck.
    vat_id_checked_at = models.DateTimeField("VIES answered at", null=True, blank=True)
    vat_id_consultation = models.CharField("VIES consultation number", max_length=64, blank=True)
    vat_id_name = models.CharField("name registered in VIES", max_length=300, blank=True)
    vat_id_address = models.TextField("address registered in VIES", blank=True)
    # When beat asks VIES next: soon after an outage (backing off), a year after a confirmation.
    vat_id_next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    vat_id_failures = models.PositiveIntegerField(
        default=0, help_text="VIES outages in a row since its last answer"
    )
    phone = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.full_name} ({self.user})"

    @property
    def vat_id_confirmed(self) -> bool:
        return bool(self.vat_id) and self.vat_id_status == self.VatIdStatus.CONFIRMED


class VatIdCheck(models.Model):
    """One answer (or outage) of VIES about a customer's VAT ID, kept as evidence: append-only,
    so a reverse-charged invoice can be matched to the consultation that allowed it."""

    class Outcome(models.TextChoices):
        VALID = "valid"
        INVALID = "invalid"
        UNAVAILABLE = "unavailable", "no answer"

    profile = models.ForeignKey(
        CustomerProfile, on_delete=models.CASCADE, related_name="vat_id_checks"
    )
    vat_id = models.CharField("VAT ID", max_length=20)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    asked_at = models.DateTimeField(auto_now_add=True)
    request_date = models.DateTimeField("VIES request date", null=True, blank=True)
    consultation_number = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=300, blank=True)
    address = models.TextField(blank=True)
    error = models.CharField(max_length=200, blank=True, help_text="VIES's error code, if any")
    trigger = models.CharField(max_length=20, help_text="profile, beat or staff")

    class Meta:
        ordering = ["-asked_at", "-id"]
        verbose_name = "VAT ID check"

    def __str__(self) -> str:
        return f"{self.vat_id}: {self.outcome}"


class SSHKey(models.Model):
    """A public key the customer can put on servers. Stored normalised: `type base64 comment`."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_keys"
    )
    name = models.CharField(max_length=100)
    public_key = models.TextField()
    key_type = models.CharField(max_length=40)
    bits = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=100, help_text="SHA256, as `ssh-keygen -l` shows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "fingerprint"], name="sshkey_unique_fingerprint_per_owner"
            ),
        ]
        verbose_name = "SSH key"

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint})"
