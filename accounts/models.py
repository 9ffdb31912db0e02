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
        help_text="Businesses in the EU: with a VAT ID, invoices are reverse-charged.",
    )
    phone = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.full_name} ({self.user})"


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
