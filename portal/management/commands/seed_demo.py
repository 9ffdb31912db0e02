"""Demo data for `make run`: a staff user and a demo customer, safe to run again and again.

Each run gives both users a fresh random password and prints it, so the printed credentials
always work and no password lives in the repository.
"""

from __future__ import annotations

import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import CustomerProfile

STAFF_EMAIL = "staff@portal.example.com"
CUSTOMER_EMAIL = "demo@portal.example.com"


class Command(BaseCommand):
    help = "Create or refresh the demo staff user and demo customer (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Run even with DEBUG off (never do this on a real portal).",
        )

    def handle(self, *args, allow_production: bool = False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError("seed_demo is for development; DEBUG is off.")
        with transaction.atomic():
            staff_password = self._user(STAFF_EMAIL, staff=True)
            customer_password = self._user(CUSTOMER_EMAIL, staff=False)
            CustomerProfile.objects.get_or_create(
                user=get_user_model().objects.get(email=CUSTOMER_EMAIL),
                defaults={
                    "full_name": "Demo Customer",
                    "address_line1": "Friedrichstraße 1",
                    "postal_code": "10117",
                    "city": "Berlin",
                    "country": "DE",
                    "phone": "+49 30 1234567",
                },
            )
        self.stdout.write(self.style.SUCCESS("Demo accounts (passwords are new on every run):"))
        self.stdout.write(f"  staff     {STAFF_EMAIL}  {staff_password}   -> /admin/")
        self.stdout.write(f"  customer  {CUSTOMER_EMAIL}  {customer_password}")

    def _user(self, email: str, *, staff: bool) -> str:
        user, _ = get_user_model().objects.get_or_create(
            email=email, defaults={"username": email.split("@")[0]}
        )
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_staff = user.is_superuser = staff
        user.is_active = True
        user.save()
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return password
