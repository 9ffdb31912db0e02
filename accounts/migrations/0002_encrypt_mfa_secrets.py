"""Two-factor seeds stored before the MFA adapter encrypted them get encrypted now.

Only values that are not encrypted yet are touched, so running it again (or after new
authenticators were made encrypted) never encrypts twice; backwards, it decrypts them again.
"""

from django.db import migrations

from common import crypto

# A frozen copy of accounts.mfa.ENCRYPTED_DATA: what allauth passes through the adapter.
ENCRYPTED_DATA = {"totp": ("secret",), "recovery_codes": ("seed", "migrated_codes")}


def _map(data: dict, kind: str, transform) -> dict:
    data = dict(data)
    for key in ENCRYPTED_DATA[kind]:
        value = data.get(key)
        if isinstance(value, list):
            data[key] = [transform(item) for item in value]
        elif isinstance(value, str) and value:
            data[key] = transform(value)
    return data


def _rewrite(apps, transform) -> None:
    Authenticator = apps.get_model("mfa", "Authenticator")
    rows = Authenticator.objects.filter(type__in=list(ENCRYPTED_DATA)).order_by("pk")
    for pk, kind, data in rows.values_list("pk", "type", "data"):
        new = _map(data, kind, transform)
        if new != data:
            Authenticator.objects.filter(pk=pk).update(data=new)


def encrypt_seeds(apps, schema_editor):
    _rewrite(apps, lambda v: v if crypto.is_encrypted(v) else crypto.encrypt(v))


def decrypt_seeds(apps, schema_editor):
    _rewrite(apps, lambda v: crypto.decrypt(v) if crypto.is_encrypted(v) else v)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(encrypt_seeds, decrypt_seeds, elidable=False)]
