"""Writes for customer accounts: profile and SSH keys."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import CustomerProfile, SSHKey, User
from accounts.sshkeys import parse_public_key


class AccountError(Exception):
    """A customer request that cannot be done; the message is for the customer."""


def profile_for(user: User) -> CustomerProfile | None:
    return CustomerProfile.objects.filter(user=user).first()


def profile_is_complete(user: User) -> bool:
    """True when the customer has told us enough to be invoiced (needed before a first order)."""
    return CustomerProfile.objects.filter(user=user).exists()


def sshkey_add(*, owner: User, name: str, public_key: str) -> SSHKey:
    """Store a validated public key for `owner`; raises InvalidSSHKey or AccountError."""
    parsed = parse_public_key(public_key)
    name = (name or "").strip() or parsed.comment or parsed.key_type
    try:
        with transaction.atomic():
            return SSHKey.objects.create(
                owner=owner,
                name=name[:100],
                public_key=parsed.line,
                key_type=parsed.key_type,
                bits=parsed.bits,
                fingerprint=parsed.fingerprint,
            )
    except IntegrityError:
        raise AccountError(f"You already added this key ({parsed.fingerprint}).") from None


def sshkey_delete(*, owner: User, key_id: int) -> SSHKey:
    """Delete one of `owner`'s keys; another customer's key id raises SSHKey.DoesNotExist."""
    key = SSHKey.objects.get(owner=owner, pk=key_id)
    key.delete()
    return key
