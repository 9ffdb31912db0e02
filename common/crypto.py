"""Secrets kept in the database (Proxmox API tokens, a root password until cloud-init has it,
two-factor seeds), never stored in clear.

They are encrypted with keys derived from FIELD_ENCRYPTION_KEYS: new values with the first key,
while any listed key decrypts. To change keys, put the new one first and keep the old ones after
it, run `manage.py rotate_secrets` (re-encrypts every value with the first key), then drop them.
A model column holding such a token is named `*_encrypted`: that is how rotate_secrets and the
admin's test find them all.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet(key: str) -> Fernet:
    material = hashlib.sha256(b"vps-portal field encryption\x00" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(material))


def _keys() -> list[Fernet]:
    keys = [key for key in settings.FIELD_ENCRYPTION_KEYS if key]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty.")
    return [_fernet(key) for key in keys]


def encrypt(plain: str) -> str:
    return _keys()[0].encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    """The clear text, or raise ValueError when no key opens it (a key was dropped from
    FIELD_ENCRYPTION_KEYS too early) or the value is damaged."""
    if not token:
        return ""
    try:
        return MultiFernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "cannot decrypt: none of FIELD_ENCRYPTION_KEYS opens it, or the value is damaged"
        ) from None


def rotate(token: str) -> str:
    """`token` encrypted with the first key: the same token when it already is, so rotating
    twice changes nothing. Raises ValueError like decrypt()."""
    if not token:
        return ""
    keys = _keys()
    try:
        keys[0].decrypt(token.encode())
    except InvalidToken:
        pass
    else:
        return token
    try:
        return MultiFernet(keys).rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "cannot decrypt: none of FIELD_ENCRYPTION_KEYS opens it, or the value is damaged"
        ) from None


def is_encrypted(value: str) -> bool:
    """Whether `value` has the shape of a token from `encrypt` (a Fernet token: version byte
    0x80, at least 73 bytes), which a TOTP seed (base32) or a hex seed never has."""
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (ValueError, UnicodeEncodeError):
        return False
    return len(raw) >= 73 and raw[0] == 0x80
