"""Re-encrypt every secret in the database with the first of FIELD_ENCRYPTION_KEYS.

Rotating keys: put the new key first in FIELD_ENCRYPTION_KEYS and keep the old ones after it,
deploy, run this, then drop the old keys. A value already under the first key is left as it
is, so running it again changes nothing. Prints counts, never a secret.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction

from accounts.mfa import ENCRYPTED_DATA, authenticator_data_map
from common import crypto


def encrypted_columns() -> list[tuple[type[models.Model], str]]:
    """Every column holding a common.crypto token: by convention named `*_encrypted`."""
    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if field.name.endswith("_encrypted")
    ]


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        unreadable: list[str] = []
        for model, field in encrypted_columns():
            counts, bad = self._column(model, field)
            self._report(f"{model._meta.label}.{field}", counts)
            unreadable += [f"{model._meta.label} {pk}" for pk in bad]
        counts, bad = self._authenticators()
        self._report("mfa.Authenticator.data", counts)
        unreadable += [f"mfa.Authenticator {pk}" for pk in bad]
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} value(s) no key in FIELD_ENCRYPTION_KEYS opens were left as "
                f"they were: {', '.join(unreadable)}"
            )

    def _report(self, what: str, counts: dict[str, int]) -> None:
        self.stdout.write(
            f"{what}: {counts['rotated']} re-encrypted, {counts['current']} already current"
        )

    @transaction.atomic
    def _column(self, model, field: str) -> tuple[dict[str, int], list[int]]:
        counts, bad = {"rotated": 0, "current": 0}, []
        # Rows locked until commit: a concurrent write (e.g. the build wiping a root password)
        # waits and then wins.
        rows = model._default_manager.select_for_update().exclude(**{field: ""}).order_by("pk")
        for pk, token in rows.values_list("pk", field):
            try:
                new = crypto.rotate(token)
            except ValueError:
                bad.append(pk)
                continue
            if new == token:
                counts["current"] += 1
            else:
                model._default_manager.filter(pk=pk, **{field: token}).update(**{field: new})
                counts["rotated"] += 1
        return counts, bad

    @transaction.atomic
    def _authenticators(self) -> tuple[dict[str, int], list[int]]:
        counts, bad = {"rotated": 0, "current": 0}, []
        rows = Authenticator.objects.select_for_update().filter(type__in=list(ENCRYPTED_DATA))
        for pk, kind, data in rows.order_by("pk").values_list("pk", "type", "data"):
            try:
                new = authenticator_data_map(kind, data, crypto.rotate)
            except ValueError:
                bad.append(pk)
                continue
            if new == data:
                counts["current"] += 1
            else:
                Authenticator.objects.filter(pk=pk).update(data=new)
                counts["rotated"] += 1
        return counts, bad
