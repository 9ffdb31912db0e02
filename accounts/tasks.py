"""Thin Celery tasks for accounts: beat asks VIES again about the VAT IDs that are due."""

from __future__ import annotations

from celery import shared_task

from accounts import vat


@shared_task(name="accounts.recheck_vat_ids", ignore_result=True)
def recheck_vat_ids() -> int:
    """Beat: VAT IDs VIES could not check yet (backing off) and year-old confirmations."""
    return len(vat.vat_ids_due())
