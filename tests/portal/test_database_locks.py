"""What placement and state changes rely on when two connections change the same rows: the second
waits for the first. PostgreSQL does it with row locks (`select_for_update`); SQLite, which has
none, with one write transaction at a time (every transaction begins IMMEDIATE)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DatabaseError, OperationalError, connection, transaction

from accounts.models import CustomerProfile

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def held_by_another_connection(profile_id: int) -> Iterator[None]:
    """Another connection (a thread) locks the profile's row in an open transaction."""
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
        yield
    finally:
        release.set()
        holder.join(timeout=30)


@contextmanager
def busy_timeout_ms(milliseconds: int) -> Iterator[None]:
    """This connection waits for SQLite's write lock this long (settings say 20 s)."""
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
    try:
        yield
    finally:
        connection.close()  # the next connection has the configured timeout again


def test_a_second_writer_waits_while_a_row_is_being_changed(alice):
    profile_id = CustomerProfile.objects.get(user=alice).pk
    with held_by_another_connection(profile_id):
        # Readers are never held up (PostgreSQL's MVCC, SQLite's WAL): pages render during a build.
        assert CustomerProfile.objects.get(pk=profile_id).user_id == alice.pk
        if connection.vendor == "postgresql":
            with pytest.raises(DatabaseError), transaction.atomic():
                CustomerProfile.objects.select_for_update(nowait=True).get(pk=profile_id)
        else:
            assert connection.vendor == "sqlite"
            with (
                busy_timeout_ms(100),
                pytest.raises(OperationalError, match="database is locked"),
                transaction.atomic(),
            ):
                CustomerProfile.objects.select_for_update().get(pk=profile_id)
    with transaction.atomic():
        assert CustomerProfile.objects.select_for_update(nowait=True).get(pk=profile_id)
