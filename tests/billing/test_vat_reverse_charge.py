"""EU reverse charge end to end, on the VIES stand-in and the Stripe sandbox: only a VAT ID VIES
confirmed pays no VAT, Stripe's invoice names the ID, the ledger says reverse charge; a VAT ID
added or changed later reaches the Stripe customer."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import CustomerProfile
from accounts.tasks import recheck_vat_ids
from billing.models import LedgerEntry
from billing.vat import EU_B2C, REVERSE_CHARGE
from portal.celery import app
from tests.billing.conftest import deliver, pay, place, process_all, sandbox_events, stripe_api
from tests.factories import UserFactory

Status = CustomerProfile.VatIdStatus
VAT_ID = "FR44732829320"  # registered in the VIES stand-in (EXEMPLE SARL)
BUSINESS = {
    "full_name": "Claire Comptable",
    "company": "Exemple SARL",
    "address_line1": "12 Rue de la Paix",
    "address_line2": "",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
    "vat_id": VAT_ID,
    "phone": "+33 1 23 45 67 89",
}


@pytest.fixture
def tasks_run_at_once():
    """Tasks sent (the push to Stripe) run in the test's process, as a worker would run them."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def claire(client, db, tasks_run_at_once, django_capture_on_commit_callbacks):
    user = UserFactory(email="claire@example.fr")
    client.force_login(user)

    def save_profile(**changes):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/account/profile/", BUSINESS | changes)
        assert response.status_code == 302
        return CustomerProfile.objects.get(user=user)

    user.save_profile = save_profile
    return user


def deliver_all(client, sandbox, seen: set[str]) -> None:
    for event in sandbox_events(sandbox):
        if event["id"] not in seen:
            seen.add(event["id"])
            assert deliver(client, event).status_code == 200
    process_all()


def latest_paid_invoice(sandbox) -> dict:
    return sandbox_events(sandbox, "invoice.paid")[-1]["data"]["object"]


def stripe_customer(sandbox, user) -> dict:
    customer_id = user.billing_account.stripe_customer_id
    return stripe_api(sandbox).v1.customers.retrieve(customer_id, {"expand": ["tax_ids"]})


def test_a_vies_confirmed_business_pays_no_vat_and_its_invoice_names_the_id(
    client, shop, claire, stripe_settings
):
    assert claire.save_profile().vat_id_status == Status.CONFIRMED
    order = place(claire, shop)
    assert order.vat_treatment == REVERSE_CHARGE and order.vat_id == VAT_ID
    assert (order.monthly_net_cents, order.monthly_vat_cents) == (499, 0)
    pay(stripe_settings, order)
    deliver_all(client, stripe_settings, set())

    invoice = latest_paid_invoice(stripe_settings)
    assert invoice["total"] == 499 and not invoice["total_taxes"]
    assert invoice["customer_tax_exempt"] == "reverse"
    assert invoice["customer_tax_ids"] == [{"type": "eu_vat", "value": VAT_ID}]
    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.INVOICE_PAID)
    assert (entry.vat_treatment, entry.country, entry.vat_cents) == (REVERSE_CHARGE, "FR", 0)
    assert entry.customer_vat_id == VAT_ID


def test_with_vies_down_at_order_time_vat_is_charged_until_beat_confirms_the_id(
    client, shop, claire, stripe_settings, vies, django_capture_on_commit_callbacks
):
    vies.fail("FR", "MS_UNAVAILABLE")
    assert claire.save_profile().vat_id_status == Status.UNAVAILABLE
    first = place(claire, shop)
    assert (first.vat_treatment, first.monthly_vat_cents) == (EU_B2C, 100)
    pay(stripe_settings, first)
    seen: set[str] = set()
    deliver_all(client, stripe_settings, seen)
    invoice = latest_paid_invoice(stripe_settings)
    assert invoice["total"] == 599 and invoice["customer_tax_exempt"] == "none"
    assert invoice["customer_tax_ids"] == [{"type": "eu_vat", "value": VAT_ID}]  # as given
    assert LedgerEntry.objects.get(kind="invoice_paid").vat_treatment == EU_B2C

    vies.fail("FR", None)  # VIES is back; beat asks again once the retry is due
    CustomerProfile.objects.update(vat_id_next_check_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert recheck_vat_ids() == 1
    assert CustomerProfile.objects.get(user=claire).vat_id_status == Status.CONFIRMED
    assert stripe_customer(stripe_settings, claire)["tax_exempt"] == "reverse"  # pushed

    second = place(claire, shop, hostname="web-2")
    assert (second.vat_treatment, second.monthly_vat_cents) == (REVERSE_CHARGE, 0)
    pay(stripe_settings, second)
    deliver_all(client, stripe_settings, seen)
    invoice = latest_paid_invoice(stripe_settings)
    assert invoice["total"] == 499 and not invoice["total_taxes"]
    assert invoice["customer_tax_ids"] == [{"type": "eu_vat", "value": VAT_ID}]
    treatments = LedgerEntry.objects.filter(kind="invoice_paid").order_by("pk")
    assert [e.vat_treatment for e in treatments] == [EU_B2C, REVERSE_CHARGE]


def test_a_vat_id_changed_later_replaces_the_one_on_the_stripe_customer(
    client, shop, claire, stripe_settings, vies
):
    claire.save_profile()
    pay(stripe_settings, place(claire, shop))  # the Stripe customer now exists, with the ID
    customer = stripe_customer(stripe_settings, claire)
    [old] = customer["tax_ids"]["data"]
    assert (old["type"], old["value"]) == ("eu_vat", VAT_ID)

    vies.register("FR11123456782", "NOUVELLE SARL")
    claire.save_profile(vat_id="FR11123456782", company="Nouvelle SARL")
    customer = stripe_customer(stripe_settings, claire)
    assert [t["value"] for t in customer["tax_ids"]["data"]] == ["FR11123456782"]
    assert customer["name"] == "Nouvelle SARL" and customer["tax_exempt"] == "reverse"
    assert customer["metadata"]["vat_id"] == "FR11123456782"

    claire.save_profile(vat_id="")  # no longer a business with a VAT ID
    customer = stripe_customer(stripe_settings, claire)
    assert customer["tax_ids"]["data"] == [] and customer["tax_exempt"] == "none"


def test_an_id_vies_says_is_invalid_is_not_printed_on_invoices(
    client, shop, claire, stripe_settings, vies, django_capture_on_commit_callbacks
):
    claire.save_profile()
    pay(stripe_settings, place(claire, shop))
    vies.reset()
    vies.registry.pop(VAT_ID)  # deregistered; a year on, beat hears it
    CustomerProfile.objects.update(
        vat_id_next_check_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        recheck_vat_ids()
    assert CustomerProfile.objects.get(user=claire).vat_id_status == Status.INVALID
    customer = stripe_customer(stripe_settings, claire)
    assert customer["tax_ids"]["data"] == [] and customer["tax_exempt"] == "none"


def test_a_push_that_never_ran_is_made_good_at_the_next_checkout(
    client, shop, claire, stripe_settings, vies, django_capture_on_commit_callbacks
):
    claire.save_profile()
    pay(stripe_settings, place(claire, shop))
    vies.register("FR11123456782", "NOUVELLE SARL")
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down
        client.post("/account/profile/", BUSINESS | {"vat_id": "FR11123456782"})
    assert [t["value"] for t in stripe_customer(stripe_settings, claire)["tax_ids"]["data"]] == [
        VAT_ID
    ]
    pay(stripe_settings, place(claire, shop, hostname="web-2"))
    assert [t["value"] for t in stripe_customer(stripe_settings, claire)["tax_ids"]["data"]] == [
        "FR11123456782"
    ]
    assert latest_paid_invoice(stripe_settings)["customer_tax_ids"] == [
        {"type": "eu_vat", "value": "FR11123456782"}
    ]
