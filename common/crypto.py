"""Secrets kept in the database (Proxmox API tokens, a root password until cloud-init has it,
two-factor seeds).

They are encrypted with a key derived from FIELD_ENCRYPTION_KEY (default: SECRET_KEY), never
stored in clear.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    material = settings.FIELD_ENCRYPTION_KEY.encode()
    key = hashlib.sha256(b"vps-portal field encryption\x00" + material).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def is_encrypted(value: str) -> bool:
    """Whether `value` has the shape of a token from `encrypt` (a Fernet token: version byte
    0x80, at least 73 bytes), which a TOTP seed (base32) or a hex seed never has."""
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (ValueError, UnicodeEncodeError):
        return False
    return len(raw) >= 73 and raw[0] == 0x80


def decrypt(token: str) -> str:
    """The clear text, or raise ValueError when the key changed or the token is damaged."""
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "cannot decrypt: FIELD_ENCRYPTION_KEY changed or the value is damaged"
        ) from None
