"""Creating, checking and revoking API tokens.

A token is `vpsp_` and 43 random URL-safe characters (256 bits). It is looked up by its
SHA-256: a slow password hash buys nothing for a secret that long, and every API request needs
the lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from api.models import APIToken

PREFIX = "vpsp_"
SHOWN = 12  # characters of the token kept in clear to tell tokens apart
# last_used_at is written at most this often per token (not on every request).
LAST_USED_EVERY = 60


class TokenError(ValueError):
    """A token that cannot be made as asked; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(
    *, owner: User, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[APIToken, str]:
    """A new token and its secret: the secret is returned here once and never kept."""
    name = (name or "").strip()
    if not name:
        raise TokenError("Give the token a name, e.g. the tool that will use it.", field="name")
    if scope not in APIToken.Scope.values:
        raise TokenError("Choose read only or read and write.", field="scope")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("Pick an expiry date in the future, or none.", field="expires_at")
    live = tokens_of(owner).filter(revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
    if live.count() >= settings.API_TOKENS_PER_USER:
        raise TokenError(
            f"You have {settings.API_TOKENS_PER_USER} tokens in use; revoke one you no longer "
            "need first."
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    token = APIToken.objects.create(
        owner=owner,
        name=name[:100],
        scope=scope,
        prefix=secret[:SHOWN],
        key_hash=digest(secret),
        expires_at=expires_at,
    )
    return token, secret


def tokens_of(user: User):
    return APIToken.objects.filter(owner=user)


def token_revoke(*, owner: User, token_id: int) -> APIToken | None:
    """Revoke one of the owner's tokens at once (None if it is not theirs)."""
    token = tokens_of(owner).filter(pk=token_id).first()
    if token is not None and token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_check(secret: str, *, ip: str | None = None) -> APIToken | None:
    """The active token with this secret, with its owner (None: unknown, revoked, expired, or
    its owner deactivated). Notes when it was last used, at most once a minute."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    now = timezone.now()
    token = (
        APIToken.objects.select_related("owner")
        .filter(key_hash=digest(secret), revoked_at__isnull=True, owner__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None:
        return None
    stale = token.last_used_at is None or (now - token.last_used_at).total_seconds() > (
        LAST_USED_EVERY
    )
    if stale or token.last_used_ip != ip:
        APIToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token
