"""API tokens and the idempotency keys of the requests made with them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class APIToken(models.Model):
    """A customer's key to the API. Only a hash of it is kept: the token itself is shown once,
    when it is created."""

    class Scope(models.TextChoices):
        READ = "read", "read only"
        WRITE = "read_write", "read and write"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.READ)
    # The token's first characters, shown in lists so its owner can tell tokens apart.
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def may_write(self) -> bool:
        return self.scope == self.Scope.WRITE

    def state(self, now=None) -> str:
        """active, expired or revoked."""
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"


class IdempotentRequest(models.Model):
    """A POST made with an Idempotency-Key: its answer, given again to a retry with the same
    key and body instead of doing the work twice."""

    token = models.ForeignKey(APIToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # Method, path and body of the first request: the same key with another request is refused.
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # None: in progress
    body = models.BinaryField(blank=True, default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="idempotency_key_per_token")
        ]

    def __str__(self) -> str:
        return self.key
