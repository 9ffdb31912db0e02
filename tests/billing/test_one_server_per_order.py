"""One paid order → exactly one server, held by database constraints and not only by code; and
the ledger is append-only."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from billing.models import LedgerEntry, Order
from billing.orders import order_mark_paid
from instances.models import Instance
from tests.billing.conftest import place
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def test_an_instance_belongs_to_at_most_one_order(shop, german):
    first, second = place(german, shop), place(german, shop, hostname="web-2")
    order_mark_paid(order_id=first.pk, subscription_id="sub_1", reason="paid")
    first.refresh_from_db()
    second.status = Order.Status.PAID
    second.instance = first.instance
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_a_subscription_pays_one_order(shop, german):
    first, second = place(german, shop), place(german, shop, hostname="web-2")
    Order.objects.filter(pk=first.pk).update(stripe_subscription_id="sub_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=second.pk).update(stripe_subscription_id="sub_1")


def test_an_unpaid_order_cannot_hold_a_server(shop, german):
    order = place(german, shop)
    instance = make_instance(german, shop["location"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(instance=instance)


def test_marking_paid_twice_gives_the_same_server(shop, german):
    order = place(german, shop)
    first = order_mark_paid(order_id=order.pk, subscription_id="sub_1", reason="paid")
    second = order_mark_paid(order_id=order.pk, subscription_id="sub_1", reason="paid")
    assert first.instance_id == second.instance_id
    assert Instance.objects.count() == 1


def test_ledger_rows_are_never_changed_or_deleted(german):
    entry = LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.PAYMENT,
        occurred_at=datetime.datetime.now(datetime.UTC),
        customer=german,
        currency="EUR",
        net_cents=499,
        vat_cents=95,
        gross_cents=594,
        stripe_object_id="pi_1",
    )
    entry.net_cents = 1
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    duplicate = LedgerEntry(
        kind=LedgerEntry.Kind.PAYMENT,
        occurred_at=entry.occurred_at,
        currency="EUR",
        net_cents=499,
        vat_cents=95,
        gross_cents=594,
        stripe_object_id="pi_1",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    wrong_sum = LedgerEntry(
        kind=LedgerEntry.Kind.REFUND,
        occurred_at=entry.occurred_at,
        currency="EUR",
        net_cents=-499,
        vat_cents=-95,
        gross_cents=-500,
        stripe_object_id="re_1",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        wrong_sum.save()


@pytest.mark.django_db(transaction=True)
def test_concurrent_payment_notices_make_one_server(shop, german):
    """Eight deliveries of "paid" for one order at the same moment: row locks on PostgreSQL, one
    write transaction at a time on SQLite."""
    order = place(german, shop)
    barrier = threading.Barrier(8)
    errors = []

    def notice():
        try:
            barrier.wait()
            order_mark_paid(order_id=order.pk, subscription_id="sub_1", reason="paid")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=notice) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Instance.objects.filter(external_ref=f"order:{order.pk}").count() == 1


def test_keys_deleted_before_payment_still_give_a_server(shop, german):
    """The paid customer gets the server, with a root password shown once instead of the key."""
    from accounts.services import sshkey_add, sshkey_delete
    from tests.accounts.test_ssh_keys import ED25519_KEY

    key = sshkey_add(owner=german, name="laptop", public_key=ED25519_KEY)
    order = place(german, shop, keys=[key.pk], password=False)
    sshkey_delete(owner=german, key_id=key.pk)
    order = order_mark_paid(order_id=order.pk, subscription_id="sub_1", reason="paid")
    assert order.instance.status == Instance.Status.QUEUED
    assert order.instance.new_password_encrypted


def test_the_database_refuses_ledger_updates_and_deletes(german):
    from django.db import DatabaseError

    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.PAYMENT,
        occurred_at=datetime.datetime.now(datetime.UTC),
        currency="EUR",
        net_cents=499,
        vat_cents=95,
        gross_cents=594,
        stripe_object_id="pi_db",
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(stripe_object_id="pi_db").update(net_cents=1, gross_cents=96)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(stripe_object_id="pi_db").delete()
    assert LedgerEntry.objects.get(stripe_object_id="pi_db").net_cents == 499
