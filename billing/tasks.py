"""Celery tasks for billing: thin wrappers around billing.events."""

from __future__ import annotations

import datetime
import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from accounts.vat import vat_id_updated
from billing import dunning, upgrades
from billing.events import event_process
from billing.ledger import LedgerNotReady
from billing.models import StripeEvent
from billing.orders import customer_tax_sync
from billing.stripe_client import StripeError

logger = logging.getLogger(__name__)


def _worth_retrying(error: Exception) -> bool:
    """Stripe unreachable or busy, a row another event writes first, a database hiccup."""
    if isinstance(error, StripeError):
        return error.transient
    return isinstance(error, LedgerNotReady | OperationalError)


@shared_task(name="billing.process_stripe_event", bind=True, max_retries=8)
def process_stripe_event(self, event_pk: int) -> str:
    try:
        return event_process(event_pk)
    except Exception as error:
        if _worth_retrying(error) and self.request.retries < self.max_retries:
            delay = min(300, 2 ** (self.request.retries + 1)) + random.uniform(0, 1)
            raise self.retry(exc=error, countdown=delay) from error
        # Not something waiting fixes (or retries ran out): kept for staff, see the admin's
        # Stripe events with an error; beat tries again until STRIPE_EVENT_MAX_ATTEMPTS.
        logger.error("stripe event %s failed: %s", event_pk, error)
        return f"failed: {error}"


def stripe_event_queue(event_pk: int) -> None:
    """Ask a worker to process a stored event, once committed, without waiting on a broker
    that is down: one try, bounded by the broker's timeouts. If it fails, the event stays
    stored and unprocessed, and retry_stripe_events (beat) queues it again."""
    try:
        process_stripe_event.apply_async((event_pk,), retry=False)
    except KombuOperationalError as error:
        logger.warning(
            "stripe event %s stored but not queued (%s); beat queues it later", event_pk, error
        )


@shared_task(name="billing.retry_stripe_events")
def retry_stripe_events(now: datetime.datetime | None = None) -> int:
    """Queue again the stored events nobody finished (broker was down, retries ran out), each
    at most STRIPE_EVENT_MAX_ATTEMPTS times in all, and not while a retry may still be due."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.STRIPE_EVENT_RETRY_AFTER)
    pending = StripeEvent.objects.filter(
        Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=cutoff),
        processed_at__isnull=True,
        received_at__lt=cutoff,
        attempts__lt=settings.STRIPE_EVENT_MAX_ATTEMPTS,
    )
    ids = list(pending.order_by("received_at").values_list("pk", flat=True)[:500])
    for pk in ids:
        process_stripe_event.delay(pk)
    return len(ids)


@shared_task(name="billing.upgrades_due", ignore_result=True)
def upgrades_due() -> int:
    """Beat: paid upgrades whose server was busy, downgrades whose period began, and upgrades
    whose payment window Stripe closed (upgrades.upgrades_due)."""
    return upgrades.upgrades_due()


@shared_task(name="billing.sync_customer_tax", bind=True, max_retries=8)
def sync_customer_tax(self, user_id: int) -> str:
    """A changed VAT ID (or what VIES says of it) to the customer's Stripe record."""
    try:
        customer_tax_sync(user_id=user_id)
    except StripeError as error:
        if error.transient and self.request.retries < self.max_retries:
            delay = min(300, 2 ** (self.request.retries + 1)) + random.uniform(0, 1)
            raise self.retry(exc=error, countdown=delay) from error
        # Refused, or retries ran out: the customer's next checkout pushes it again.
        logger.error("user %s: VAT ID not pushed to Stripe: %s", user_id, error)
        return f"failed: {error}"
    return "ok"


@receiver(vat_id_updated)
def _vat_id_updated(sender, profile, **kwargs) -> None:
    """accounts sends this once the change is committed; queue the push without waiting on a
    broker that is down (the next checkout pushes the VAT ID anyway)."""
    try:
        sync_customer_tax.apply_async((profile.user_id,), retry=False)
    except KombuOperationalError as error:
        logger.warning("user %s: VAT ID push not queued (%s)", profile.user_id, error)


@shared_task(name="billing.lifecycle_tick", ignore_result=True)
def lifecycle_tick() -> None:
    """Beat: dunning reminders, suspensions and removals that are due (billing/dunning.py)."""
    report = dunning.lifecycle_tick()
    logger.info("lifecycle: %s", report)


@shared_task(name="billing.run_export", ignore_result=True)
def run_export(run_pk: int) -> str:
    """A finance export too big for a request (billing/exports/services.py)."""
    from billing.exports.services import export_run_execute

    return export_run_execute(run_pk)


@shared_task(name="billing.monthly_exports", ignore_result=True)
def monthly_exports() -> int:
    """Beat, on the 1st: last month's exports mailed to FINANCE_EXPORT_EMAIL (once)."""
    from billing.exports.services import monthly_exports_send

    return monthly_exports_send()
