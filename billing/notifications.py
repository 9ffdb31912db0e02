"""Mail to customers about money."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from billing.models import Invoice, money


def send_payment_failed(invoice: Invoice, *, next_attempt: datetime.datetime | None) -> None:
    context = {
        "invoice": invoice,
        "amount": money(invoice.total_cents - invoice.amount_paid_cents, invoice.currency),
        "next_attempt": next_attempt,
        "url": settings.SITE_URL + reverse("billing:overview"),
        "site_name": settings.SITE_NAME,
    }
    send_mail(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Your payment did not go through",
        message=render_to_string("billing/email/payment_failed.txt", context),
        from_email=None,
        recipient_list=[invoice.owner.email],
    )
