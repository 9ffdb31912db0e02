"""Celery tasks for billing: thin wrappers around billing.events."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from billing.events import event_process
from billing.models import StripeEvent
from billing.stripe_client import StripeError


@shared_task(
    name="billing.process_stripe_event",
    autoretry_for=(StripeError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_stripe_event(event_pk: int) -> str:
    return event_process(event_pk)


@shared_task(name="billing.retry_stripe_events")
def retry_stripe_events() -> int:
    """Queue again the stored events nobody finished (broker was down, retries ran out)."""
    cutoff = timezone.now() - datetime.timedelta(seconds=settings.STRIPE_EVENT_RETRY_AFTER)
    pending = StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
    ids = list(pending.order_by("received_at").values_list("pk", flat=True)[:500])
    for pk in ids:
        process_stripe_event.delay(pk)
    return len(ids)
