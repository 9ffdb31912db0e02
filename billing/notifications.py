"""Mail to customers about money: failed payments, reminders, receipts, and what happened to
a server because of its subscription. Each is sent once the transaction that decided it has
committed."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from billing.models import Invoice, Subscription, money
from instances.models import Instance


def _send(template: str, subject: str, to: str, **context) -> None:
    context |= {"site_name": settings.SITE_NAME, "billing_url": _url("billing:overview")}
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        message=render_to_string(f"billing/email/{template}.txt", context),
        from_email=None,
        recipient_list=[to],
    )


def _url(name: str, *args) -> str:
    return settings.SITE_URL + reverse(name, args=args)


def _due(invoice: Invoice) -> str:
    return money(invoice.total_cents - invoice.amount_paid_cents, invoice.currency)


def send_payment_failed(invoice: Invoice, *, next_attempt: datetime.datetime | None) -> None:
    _send(
        "payment_failed",
        "Your payment did not go through",
        invoice.owner.email,
        invoice=invoice,
        amount=_due(invoice),
        next_attempt=next_attempt,
        url=invoice.hosted_invoice_url or _url("billing:overview"),
    )


def send_reminder(invoice: Invoice, *, suspend_on: datetime.datetime | None) -> None:
    _send(
        "reminder",
        f"Reminder: invoice {invoice.number} is still unpaid",
        invoice.owner.email,
        invoice=invoice,
        amount=_due(invoice),
        suspend_on=suspend_on,
        url=invoice.hosted_invoice_url or _url("billing:overview"),
    )


def send_receipt(invoice: Invoice) -> None:
    _send(
        "receipt",
        f"Receipt for invoice {invoice.number}",
        invoice.owner.email,
        invoice=invoice,
        amount=money(invoice.amount_paid_cents, invoice.currency),
        url=invoice.hosted_invoice_url or _url("billing:overview"),
    )


def _server_mail(template: str, subject: str, subscription_id: int, instance_id: int) -> None:
    subscription = Subscription.objects.select_related("owner").get(pk=subscription_id)
    server = Instance.objects.get(pk=instance_id)
    _send(
        template,
        subject.format(hostname=server.hostname),
        subscription.owner.email,
        server=server,
        subscription=subscription,
        server_url=_url("instances:detail", server.pk),
    )


def send_suspended(subscription_id: int, instance_id: int) -> None:
    _server_mail("suspended", "{hostname} is suspended", subscription_id, instance_id)


def send_restored(subscription_id: int, instance_id: int) -> None:
    _server_mail("restored", "{hostname} runs again", subscription_id, instance_id)


def send_removed(subscription_id: int, instance_id: int) -> None:
    _server_mail("removed", "{hostname} was removed", subscription_id, instance_id)


def send_cancellation(subscription_id: int, instance_id: int) -> None:
    _server_mail("cancellation", "Cancellation of {hostname}", subscription_id, instance_id)
