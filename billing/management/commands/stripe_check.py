"""A read-only smoke test of the Stripe credentials: nothing is created or changed."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import stripe_client
from billing.models import Plan


class Command(BaseCommand):
    help = "Check STRIPE_SECRET_KEY, the API address and the synced prices (read-only)."

    def handle(self, *args, **options):
        problems = []
        base = settings.STRIPE_API_BASE or "https://api.stripe.com"
        self.stdout.write(f"API {base}, version {stripe_client.API_VERSION}")
        key = settings.STRIPE_SECRET_KEY
        if not key:
            raise CommandError("STRIPE_SECRET_KEY is not set.")
        mode = "live" if key.startswith(("sk_live_", "rk_live_")) else "test"
        self.stdout.write(f"key: {mode} mode")
        if not settings.STRIPE_WEBHOOK_SECRET:
            problems.append("STRIPE_WEBHOOK_SECRET is not set: webhooks would all be refused.")
        try:
            stripe_client.prices_list(limit=1)
        except stripe_client.StripeError as error:
            raise CommandError(f"Stripe refused the key or is unreachable: {error}") from error
        self.stdout.write("key accepted (listed prices)")
        for plan in Plan.objects.filter(active=True):
            if not plan.stripe_in_sync:
                problems.append(f"plan {plan.slug}: not pushed (run manage.py stripe_sync_plans)")
                continue
            try:
                price = stripe_client.price_retrieve(plan.stripe_price_id)
            except stripe_client.StripeError as error:
                problems.append(f"plan {plan.slug}: price {plan.stripe_price_id}: {error}")
                continue
            if price.get("unit_amount") != plan.price_cents or not price.get("active"):
                problems.append(
                    f"plan {plan.slug}: Stripe price {price['id']} is "
                    f"{price.get('unit_amount')} (active={price.get('active')}), "
                    f"the plan says {plan.price_cents}"
                )
        for problem in problems:
            self.stdout.write(self.style.WARNING(problem))
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found.")
        self.stdout.write(self.style.SUCCESS("Stripe looks right."))
