"""The billing lifecycle end to end: renewals with a receipt, dunning when a renewal fails,
suspension when it stays unpaid, restore when it is paid, removal after the grace period, and
cancellation by the customer or by staff. Money and servers never disagree.

Orders are paid on the Stripe demo_sandbox, whose clock is advanced for renewals; its webhooks are
delivered signed and processed as the worker does; servers are built and changed on the demo
cluster in fakepve. Beat's lifecycle tick is called with the time it would run at.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection, transaction

from billing import dunning
from billing.events import event_process
from billing.models import BillingEvent, LedgerEntry, StripeEvent, Subscription
from instances.models import Instance, InstanceOperation, IPAddress
from tests.billing.conftest import GOOD_CARD, LATER_DECLINED, deliver, sandbox_events, stripe_api
from tests.instances.world import drive

Status = Instance.Status
DAY = 86400


def drive_all(server) -> None:
    for operation in server.operations.filter(state__in=InstanceOperation.LIVE):
        drive(operation.pk)
    server.refresh_from_db()


def subscription_of(server) -> Subscription:
    return Subscription.objects.get(order__instance=server)


def statuses(subscription) -> list[tuple[str, str]]:
    events = BillingEvent.objects.filter(subscription=subscription, field="status")
    return list(events.values_list("old", "new"))


def stripe_now(demo_sandbox) -> datetime:
    """The sandbox's clock, which the renewals moved ahead of ours: beat runs at that time."""
    return datetime.fromtimestamp(demo_sandbox.now(), tz=UTC)


def renew_failing(demo_sandbox, settle, server) -> Subscription:
    """The month is over and the renewal's card is declined."""
    mail.outbox.clear()
    demo_sandbox.advance(32 * DAY)  # the renewal, and its draft invoice finalized and charged
    settle()
    subscription = subscription_of(server)
    assert subscription.status == "past_due"
    return subscription


def test_a_renewal_extends_the_period_and_mails_a_receipt(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german)
    before = subscription_of(server).current_period_end
    mail.outbox.clear()
    demo_sandbox.advance(32 * DAY)  # the renewal, and its draft invoice finalized and charged
    settle()
    subscription = subscription_of(server)
    assert subscription.current_period_end > before + timedelta(days=27)
    [receipt] = [m for m in mail.outbox if "Receipt for invoice" in m.subject]
    assert receipt.to == [german.email] and "/i/in_" in receipt.body
    settle()  # nothing twice
    assert len([m for m in mail.outbox if "Receipt" in m.subject]) == 1


@pytest.mark.django_db(transaction=True)
def test_two_events_of_a_paid_renewal_processed_at_once_mail_one_receipt(
    client, world, demo_sandbox, german, paid_server
):
    """Two workers take two events of the renewal's invoice at the same moment; the second
    waits for the first's lock on the invoice, then finds the receipt decided (PostgreSQL; on
    SQLite one write transaction runs at a time)."""
    paid_server(german)
    demo_sandbox.advance(32 * DAY)
    for event in sandbox_events(demo_sandbox):  # stored as the webhook does, not processed
        deliver(client, event)
    paid = StripeEvent.objects.filter(
        processed_at__isnull=True, type__in=("invoice.paid", "invoice.payment_succeeded")
    )
    first, second = paid.order_by("pk")[:2]
    mail.outbox.clear()
    holding, release = threading.Event(), threading.Event()

    def worker(event: StripeEvent, *, hold: bool) -> None:
        try:
            if hold:  # the first worker's transaction is still open when the second reads
                with transaction.atomic():
                    event_process(event.pk)
                    holding.set()
                    release.wait(10)
            else:
                holding.wait(10)
                event_process(event.pk)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(first,), kwargs={"hold": True}),
        threading.Thread(target=worker, args=(second,), kwargs={"hold": False}),
    ]
    for thread in threads:
        thread.start()
    holding.wait(10)
    time.sleep(0.5)  # the second has read the invoice from Stripe and waits for the lock
    release.set()
    for thread in threads:
        thread.join(30)
    assert StripeEvent.objects.filter(pk__in=(first.pk, second.pk), processed_at=None).count() == 0
    assert len([m for m in mail.outbox if "Receipt for invoice" in m.subject]) == 1


def test_a_failed_renewal_warns_without_touching_the_server(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german, card=LATER_DECLINED)
    subscription = renew_failing(demo_sandbox, settle, server)
    [failed] = [m for m in mail.outbox if "did not go through" in m.subject]
    assert "/i/in_" in failed.body  # the hosted invoice, to pay it with another card
    assert statuses(subscription)[-1] == ("active", "past_due")
    event = BillingEvent.objects.filter(subscription=subscription, new="past_due").get()
    assert event.stripe_event_id.startswith("evt_")
    page = client.get("/servers/").content.decode()
    assert "Payment failed — update your card." in page
    server.refresh_from_db()
    assert server.status == Status.RUNNING and not server.operations.filter(kind="suspend")
    assert subscription.past_due_since is not None


def test_dunning_counts_from_the_failed_payment_not_from_when_its_webhook_came(
    client, world, demo_sandbox, settle, german, settings, paid_server
):
    """The webhooks of a renewal that failed at Stripe's time T are processed at our time
    (here a month earlier; in production minutes later, after a worker outage hours): past due
    since T (to within the delivery's lag), reminders and suspension count from T, and the
    grace period from when Stripe gave up."""
    settings.DUNNING_SUSPEND_AFTER_DAYS = 10
    server = paid_server(german, card=LATER_DECLINED)
    subscription = renew_failing(demo_sandbox, settle, server)
    failed_at = stripe_now(demo_sandbox)  # the renewal failed a day ago or less
    assert subscription.current_period_start <= subscription.past_due_since <= failed_at
    report = dunning.lifecycle_tick(failed_at + timedelta(days=1))
    assert report.suspended == [] and report.ended == [] and report.reminded == []
    for _day in range(15):  # Stripe's retries end on the 9th day: unpaid, suspended then
        demo_sandbox.advance(DAY)
        settle()
    subscription.refresh_from_db()
    assert subscription.status == "unpaid"
    assert subscription.suspended_at > failed_at + timedelta(days=8)
    assert dunning.lifecycle_tick(stripe_now(demo_sandbox)).ended == []


def test_reminders_come_on_schedule_once_each(
    client, world, demo_sandbox, settle, german, settings, paid_server
):
    settings.DUNNING_REMINDER_DAYS = [3, 7]
    server = paid_server(german, card=LATER_DECLINED)
    renew_failing(demo_sandbox, settle, server)
    mail.outbox.clear()
    now = stripe_now(demo_sandbox)
    assert dunning.lifecycle_tick(now + timedelta(days=1)).reminded == []
    assert len(dunning.lifecycle_tick(now + timedelta(days=3, hours=1)).reminded) == 1
    assert dunning.lifecycle_tick(now + timedelta(days=3, hours=2)).reminded == []  # run twice
    assert len(dunning.lifecycle_tick(now + timedelta(days=7, hours=1)).reminded) == 1
    reminders = [m for m in mail.outbox if m.subject.startswith("[VPS portal] Reminder")]
    assert len(reminders) == 2 and "suspended" in reminders[0].body


def test_days_past_due_suspend_the_server_then_paying_restores_it(
    client, world, demo_sandbox, settle, german, settings, paid_server
):
    settings.DUNNING_SUSPEND_AFTER_DAYS = 5
    server = paid_server(german, card=LATER_DECLINED)
    subscription = renew_failing(demo_sandbox, settle, server)
    now = stripe_now(demo_sandbox)
    assert dunning.lifecycle_tick(now + timedelta(days=2)).suspended == []
    report = dunning.lifecycle_tick(now + timedelta(days=5, hours=1))
    assert report.suspended == [subscription.stripe_subscription_id]
    drive_all(server)
    assert server.status == Status.SUSPENDED
    assert "is unpaid. Pay it on the Billing page" in server.suspended_reason
    assert world.vm(server.vmid).status == "stopped"
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert "A server is suspended until the open invoice is paid." in page

    invoice = stripe_api(demo_sandbox).v1.invoices.list({"status": "open"}).data[0]
    demo_sandbox.pay_invoice(invoice.id, GOOD_CARD)
    settle()
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.suspended_at is None
    drive_all(server)
    assert server.status == Status.RUNNING and world.vm(server.vmid).status == "running"
    assert any("runs again" in m.subject for m in mail.outbox)


def test_stripe_giving_up_suspends_and_the_grace_period_removes(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german, card=LATER_DECLINED)
    subscription = renew_failing(demo_sandbox, settle, server)
    demo_sandbox.advance(15 * DAY)  # Stripe's retries end: unpaid
    settle()
    subscription.refresh_from_db()
    assert subscription.status == "unpaid"
    drive_all(server)
    assert server.status == Status.SUSPENDED
    address = server.ipv4

    report = dunning.lifecycle_tick(stripe_now(demo_sandbox) + timedelta(days=15))
    assert report.ended == [subscription.stripe_subscription_id]
    settle()
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    drive_all(server)
    assert server.status == Status.TERMINATED and world.vm(server.vmid) is None
    address.refresh_from_db()
    assert address.state == IPAddress.State.QUARANTINED
    assert statuses(subscription)[-3:] == [
        ("active", "past_due"),
        ("past_due", "unpaid"),
        ("unpaid", "canceled"),
    ]
    assert server.events.exists() and LedgerEntry.objects.filter(customer=german).exists()
    settle()
    assert dunning.lifecycle_tick(stripe_now(demo_sandbox) + timedelta(days=20)).ended == []
    assert server.operations.filter(kind="terminate").count() == 1


def test_a_customer_cancels_for_the_period_end_undoes_it_and_cancels_again(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german)
    page = client.get(f"/billing/servers/{server.pk}/cancel/").content.decode()
    assert "Cancel at the end of the period" in page
    client.post(f"/billing/servers/{server.pk}/cancel/", {"action": "period_end"})
    subscription = subscription_of(server)
    assert subscription.cancel_at_period_end
    assert "Keep web-1" in client.get(f"/billing/servers/{server.pk}/cancel/").content.decode()
    client.post(f"/billing/servers/{server.pk}/cancel/", {"action": "undo"})
    assert not subscription_of(server).cancel_at_period_end
    client.post(f"/billing/servers/{server.pk}/cancel/", {"action": "period_end"})
    server.refresh_from_db()
    assert server.status == Status.RUNNING  # until the period ends

    demo_sandbox.advance(32 * DAY)
    settle()
    assert subscription_of(server).status == "canceled"
    drive_all(server)
    assert server.status == Status.TERMINATED
    charged = stripe_api(demo_sandbox).v1.invoices.list({"limit": 100}).data
    assert [i.billing_reason for i in charged] == ["subscription_create"]  # nothing more


def test_cancel_now_needs_the_name_and_refunds_nothing(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german)
    response = client.post(
        f"/billing/servers/{server.pk}/cancel/",
        {"action": "now", "confirm_hostname": "wrong"},
        follow=True,
    )
    assert "Type web-1 exactly to confirm." in response.content.decode()
    assert subscription_of(server).status == "active"
    client.post(
        f"/billing/servers/{server.pk}/cancel/", {"action": "now", "confirm_hostname": "web-1"}
    )
    settle()
    drive_all(server)
    assert server.status == Status.TERMINATED
    assert not stripe_api(demo_sandbox).v1.refunds.list({"limit": 10}).data


def test_staff_cancel_at_once_with_a_prorated_refund(
    client, world, demo_sandbox, settle, german, staff, paid_server
):
    server = paid_server(german)
    subscription = subscription_of(server)
    refunded = dunning.cancel_now(
        subscription=subscription, user=staff, actor=BillingEvent.Actor.STAFF, refund=True
    )
    paid = stripe_api(demo_sandbox).v1.invoices.list({"limit": 1}).data[0]
    assert 0 < refunded <= paid.amount_paid
    [refund] = stripe_api(demo_sandbox).v1.refunds.list({"limit": 10}).data
    assert refund.amount == refunded
    settle()
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).get().gross_cents == -refunded
    drive_all(server)
    assert server.status == Status.TERMINATED
    cancel = BillingEvent.objects.get(field="cancellation")
    assert cancel.actor == "staff" and "refunded" in cancel.reason


def test_each_transition_is_written_once_however_often_stripe_repeats(
    client, world, demo_sandbox, settle, german, paid_server
):
    server = paid_server(german, card=LATER_DECLINED)
    subscription = renew_failing(demo_sandbox, settle, server)
    from billing.models import StripeEvent
    from tests.billing.conftest import deliver, process_all, sandbox_events

    for event in sandbox_events(demo_sandbox):  # every delivery again
        deliver(client, event)
    StripeEvent.objects.update(processed_at=None)  # and processed again, as after a lost ack
    process_all()
    assert statuses(subscription).count(("active", "past_due")) == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.INVOICE_ISSUED).count() == 2
