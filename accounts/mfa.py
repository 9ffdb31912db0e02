"""Two-factor authentication (allauth.mfa) with its secrets encrypted at rest.

allauth keeps a TOTP seed and the seed of the recovery codes in `Authenticator.data` and passes
each through the MFA adapter's encrypt()/decrypt(); ours uses the same keys as every other
secret in the database (common.crypto, FIELD_ENCRYPTION_KEYS).
"""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.adapter import DefaultMFAAdapter

from common import crypto

# The values of Authenticator.data that allauth encrypts, by authenticator type
# (`migrated_codes` is a list of codes, each encrypted on its own).
ENCRYPTED_DATA = {"totp": ("secret",), "recovery_codes": ("seed", "migrated_codes")}


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text)


def authenticator_data_map(kind: str, data: dict, transform: Callable[[str], str]) -> dict:
    """A copy of an authenticator's `data` with `transform` applied to each encrypted value."""
    data = dict(data)
    for key in ENCRYPTED_DATA.get(kind, ()):
        value = data.get(key)
        if isinstance(value, list):
            data[key] = [transform(item) for item in value]
        elif isinstance(value, str) and value:
            data[key] = transform(value)
    return data
