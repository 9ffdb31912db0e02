from __future__ import annotations

from celery import shared_task

from api import idempotency


@shared_task(name="api.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    """Forget idempotency keys older than API_IDEMPOTENCY_HOURS (beat, hourly)."""
    return idempotency.purge()
