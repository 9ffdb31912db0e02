"""Row locks really lock: placement and state changes rely on this, and only PostgreSQL has it."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import CustomerProfile

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_a_locked_row_cannot_be_locked_by_another_connection(alice):
    profile_id = CustomerProfile.objects.get(user=alice).pk
    locked = threading.Event()
    release = threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                CustomerProfile.objects.select_for_update().get(pk=profile_id)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        with pytest.raises(DatabaseError), transaction.atomic():
            CustomerProfile.objects.select_for_update(nowait=True).get(pk=profile_id)
    finally:
        release.set()
        holder.join(timeout=30)
    with transaction.atomic():
        assert CustomerProfile.objects.select_for_update(nowait=True).get(pk=profile_id)
