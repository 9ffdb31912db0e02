"""The reaper resumes operations nobody drives and fails those stuck past their deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from instances.models import Instance, InstanceOperation
from instances.operations import engine
from tests.factories import make_instance, make_location_with_capacity, make_operation


@pytest.fixture
def location(db):
    return make_location_with_capacity()


def stalled(alice, location, *, kind="build", step="clone", updated: int, step_started: int):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    now = timezone.now()
    operation = make_operation(
        server, kind=kind, step=step, step_started_at=now - timedelta(seconds=step_started)
    )
    InstanceOperation.objects.filter(pk=operation.pk).update(
        updated_at=now - timedelta(seconds=updated)
    )
    return server, operation


def test_an_abandoned_operation_is_resumed_with_a_new_chain(alice, location, settings):
    server, operation = stalled(
        alice, location, updated=settings.OPERATION_STUCK_AFTER + 5, step_started=700
    )
    [(resumed, chain)] = engine.reap()
    assert resumed == operation.pk
    assert InstanceOperation.objects.get(pk=operation.pk).chain == chain != "chain-1"
    assert server.events.filter(message="Resuming a build that had stalled.").exists()


def test_an_operation_someone_drives_is_left_alone(alice, location, settings):
    _, operation = stalled(
        alice, location, updated=settings.OPERATION_STUCK_AFTER + 5, step_started=700
    )
    InstanceOperation.objects.filter(pk=operation.pk).update(
        lease_token="x", lease_until=timezone.now() + timedelta(minutes=1)
    )
    assert engine.reap() == []


def test_a_recently_active_operation_is_left_alone(alice, location):
    stalled(alice, location, updated=1, step_started=1)
    assert engine.reap() == []


def test_an_operation_stuck_past_its_deadline_fails_for_staff(alice, location, settings):
    late = settings.OPERATION_DEADLINE + 5
    server, operation = stalled(alice, location, step="wait_clone", updated=late, step_started=late)
    assert engine.reap() == []
    server.refresh_from_db()
    operation.refresh_from_db()
    assert server.status == Instance.Status.FAILED
    assert operation.state == InstanceOperation.State.FAILED
    assert "no progress for too long" in operation.error


def test_a_server_waiting_for_capacity_has_no_deadline(alice, location, settings):
    late = settings.OPERATION_DEADLINE + 5
    server, operation = stalled(alice, location, step="reserve", updated=late, step_started=late)
    [(resumed, _)] = engine.reap()
    assert resumed == operation.pk
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.PROVISIONING
