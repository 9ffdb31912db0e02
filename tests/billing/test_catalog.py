"""Plans pushed to Stripe (idempotent, new price on change), the read-only stripe_check, the
public plans page and the demo catalog."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from billing.models import Plan
from tests.billing.conftest import stripe_api

pytestmark = pytest.mark.django_db


def sync(*slugs) -> str:
    out = io.StringIO()
    call_command("stripe_sync_plans", *slugs, stdout=out)
    return out.getvalue()


def test_sync_is_idempotent(shop, stripe_settings):
    plan = Plan.objects.get(slug="nvme-vps-s")
    product, price = plan.stripe_product_id, plan.stripe_price_id
    assert product.startswith("prod_") and price.startswith("price_")
    assert "0 new prices" in sync()
    plan.refresh_from_db()
    assert (plan.stripe_product_id, plan.stripe_price_id) == (product, price)
    api = stripe_api(stripe_settings)
    prices = api.v1.prices.list(params={"product": product, "limit": 100})
    assert [p.id for p in prices] == [price]
    stripe_price = api.v1.prices.retrieve(price)
    assert stripe_price.unit_amount == 499
    assert stripe_price.currency == "eur"
    assert stripe_price.recurring.interval == "month"


def test_price_change_makes_a_new_price_and_keeps_the_old(shop, stripe_settings):
    plan = Plan.objects.get(slug="nvme-vps-s")
    old = plan.stripe_price_id
    Plan.objects.filter(pk=plan.pk).update(price_cents=549)
    output = sync("nvme-vps-s")
    plan.refresh_from_db()
    assert plan.stripe_price_id != old and plan.stripe_price_cents == 549
    assert f"archived {old}" in output
    api = stripe_api(stripe_settings)
    old_price = api.v1.prices.retrieve(old)
    assert old_price.unit_amount == 499  # what existing customers pay is untouched
    assert old_price.active is False  # but new orders cannot use it
    assert api.v1.prices.retrieve(plan.stripe_price_id).unit_amount == 549


def test_stripe_check_passes_and_changes_nothing(shop, stripe_settings):
    before = len(stripe_api(stripe_settings).v1.prices.list(params={"limit": 100}).data)
    out = io.StringIO()
    call_command("stripe_check", stdout=out)
    assert "Stripe looks right." in out.getvalue()
    after = len(stripe_api(stripe_settings).v1.prices.list(params={"limit": 100}).data)
    assert before == after


def test_stripe_check_reports_a_bad_key(shop, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_wrong"
    with pytest.raises(CommandError, match="refused the key"):
        call_command("stripe_check", stdout=io.StringIO())


def test_stripe_check_reports_an_unsynced_plan(shop):
    Plan.objects.filter(slug="vds-s").update(price_cents=3199)
    with pytest.raises(CommandError, match="1 problem"):
        call_command("stripe_check", stdout=io.StringIO())


def test_stripe_check_without_a_key(settings, db):
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY is not set"):
        call_command("stripe_check", stdout=io.StringIO())


def test_demo_catalog_is_pushed_by_seed_demo(db, settings, stripe_settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    plans = Plan.objects.all()
    families = {plan.family for plan in plans}
    assert families == {"storage_vps", "nvme_vps", "vds", "dedicated"}
    for family in families:
        assert 3 <= plans.filter(family=family).count() <= 4
    assert all(plan.stripe_in_sync for plan in plans)
    cheapest = plans.filter(family__in=["storage_vps", "nvme_vps"]).order_by("price_cents")[0]
    assert cheapest.price_cents == 499
    assert plans.filter(family="dedicated").order_by("price_cents")[0].price_cents == 12999
    api = stripe_api(stripe_settings)
    assert len(api.v1.products.list(params={"limit": 100}).data) == plans.count()


def test_plans_page_compares_the_families(client, shop):
    page = client.get("/plans/").content.decode()
    for text in ("NVMe VPS", "Storage VPS", "VDS", "VDS S", "€29.99", "+ €10.00 setup"):
        assert text in page
    assert "dedicated cores" in page


def test_the_plans_page_says_what_snapshots_and_backups_a_plan_includes(client, shop):
    Plan.objects.filter(slug="nvme-vps-s").update(snapshots_max=3, backups_kept=7)
    page = client.get("/plans/").content.decode()
    assert "3 snapshots, daily backups, 7 kept" in " ".join(page.split())


def test_sync_recreates_what_stripe_no_longer_has(shop, stripe_settings, german):
    """A product or customer deleted on Stripe's side is made again, not left dangling."""
    from billing.models import BillingAccount
    from billing.orders import customer_for

    plan = Plan.objects.get(slug="nvme-vps-s")
    old_price = plan.stripe_price_id
    old_customer = customer_for(german)
    stripe_settings.reset()  # Stripe forgets everything
    assert "3 new prices" in sync()
    plan.refresh_from_db()
    assert plan.stripe_price_id != old_price
    assert stripe_api(stripe_settings).v1.prices.retrieve(plan.stripe_price_id).unit_amount == 499
    new_customer = customer_for(german)
    assert new_customer != old_customer
    assert BillingAccount.objects.get(user=german).stripe_customer_id == new_customer
