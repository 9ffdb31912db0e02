"""Push the catalog to Stripe: a product per plan and a price per plan amount (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing import catalog, stripe_client
from billing.models import Plan


class Command(BaseCommand):
    help = "Create or update Stripe products and prices for the plans (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="only these plans (default: all)")

    def handle(self, *args, slugs=(), **options):
        plans = Plan.objects.order_by("family", "display_order")
        if slugs:
            plans = plans.filter(slug__in=slugs)
        created = 0
        for plan in plans:
            try:
                result = catalog.plan_sync(plan)
            except stripe_client.StripeError as error:
                raise CommandError(f"{plan.slug}: {error}") from error
            if result.price_created:
                created += 1
                note = f"new price {result.plan.stripe_price_id}"
                if result.archived_price:
                    note += f" (archived {result.archived_price} for new orders)"
            else:
                note = "in sync"
            self.stdout.write(f"  {plan.slug:<18} {plan.price:>10}  {note}")
        self.stdout.write(
            self.style.SUCCESS(f"{plans.count()} plans checked, {created} new prices.")
        )
