"""The reaper resumes abandoned builds and fails hopeless ones; dedicated machines go to staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from instances import dedicated, provisioning
from instances.models import DedicatedServer, Instance
from tests.factories import make_instance, make_location_with_capacity


@pytest.fixture
def location(db):
    return make_location_with_capacity()


def age(instance, *, updated: int, step_started: int) -> None:
    now = timezone.now()
    Instance.objects.filter(pk=instance.pk).update(
        updated_at=now - timedelta(seconds=updated),
        step_started_at=now - timedelta(seconds=step_started),
    )


def test_an_abandoned_build_is_resumed(alice, location, settings):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    age(server, updated=settings.PROVISIONING_STUCK_AFTER + 5, step_started=700)
    [(resumed, chain)] = provisioning.reap()
    assert resumed == server.pk
    assert Instance.objects.get(pk=server.pk).build_chain == chain
    assert server.events.filter(message="Resuming a stalled build.").exists()


def test_a_task_of_an_older_chain_does_nothing(alice, location, settings):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    Instance.objects.filter(pk=server.pk).update(build_step="clone", build_chain="new")
    # A redelivered message of the chain the reaper replaced: no claim, no step, no re-queue.
    assert provisioning.advance(server.pk, chain="old") is None
    assert Instance.objects.get(pk=server.pk).lease_token == ""
    assert not server.events.exists()


def test_a_build_someone_drives_is_left_alone(alice, location, settings):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    age(server, updated=settings.PROVISIONING_STUCK_AFTER + 5, step_started=700)
    Instance.objects.filter(pk=server.pk).update(
        lease_token="x", lease_until=timezone.now() + timedelta(minutes=1)
    )
    assert provisioning.reap() == []


def test_a_recently_active_build_is_left_alone(alice, location):
    make_instance(alice, location, status=Instance.Status.PROVISIONING)
    assert provisioning.reap() == []


def test_a_build_stuck_past_its_deadline_fails_for_staff(alice, location, settings):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    Instance.objects.filter(pk=server.pk).update(build_step="wait_clone")
    age(
        server,
        updated=settings.PROVISIONING_DEADLINE + 5,
        step_started=settings.PROVISIONING_DEADLINE + 5,
    )
    assert provisioning.reap() == []
    server.refresh_from_db()
    assert server.status == Instance.Status.FAILED
    assert "no progress for too long" in server.last_error


# --- Dedicated servers -------------------------------------------------------------------------


DEDICATED = {"family": "dedicated", "vcpus": 16, "memory_mib": 64 * 1024, "dedicated_cores": True}


@pytest.fixture
def machine(location):
    return DedicatedServer.objects.create(
        location=location,
        asset_tag="FRA-D-001",
        model="Dell R650",
        cpu="2× Xeon Silver 4314",
        cores=32,
        memory_gib=128,
        disks="2× 1.92 TB NVMe",
    )


def test_a_dedicated_order_gets_a_machine_and_an_ip_and_waits_for_staff(alice, location, machine):
    server = make_instance(alice, location, hostname="metal", **DEDICATED)
    assert provisioning.advance(server.pk) is None
    server.refresh_from_db()
    machine.refresh_from_db()
    assert server.status == Instance.Status.PROVISIONING
    assert machine.state == DedicatedServer.State.ASSIGNED and machine.instance == server
    assert server.ipv4 is not None
    assert "FRA-D-001 reserved" in server.events.last().message


def test_staff_install_and_hand_over_a_dedicated_server(
    alice, staff, location, machine, django_capture_on_commit_callbacks
):
    server = make_instance(alice, location, hostname="metal", **DEDICATED)
    provisioning.advance(server.pk)
    dedicated.mark_installing(instance_id=server.pk, staff=staff)
    with django_capture_on_commit_callbacks(execute=True):
        dedicated.mark_ready(instance_id=server.pk, staff=staff)
    server.refresh_from_db()
    machine.refresh_from_db()
    assert server.status == Instance.Status.RUNNING
    assert machine.state == DedicatedServer.State.READY
    assert mail.outbox[0].to == ["alice@example.com"]
    assert server.events.filter(actor="staff").count() == 2


def test_without_a_free_machine_the_order_waits_with_a_reason(alice, location, settings):
    server = make_instance(alice, location, hostname="metal", **DEDICATED)
    assert provisioning.advance(server.pk) == settings.PROVISIONING_CAPACITY_RETRY
    server.refresh_from_db()
    assert server.status == Instance.Status.QUEUED
    assert "No machine with 16 cores" in server.waiting_reason


def test_the_reaper_does_not_fail_a_machine_staff_are_installing(
    alice, location, machine, settings
):
    server = make_instance(alice, location, hostname="metal", **DEDICATED)
    provisioning.advance(server.pk)
    age(
        server,
        updated=settings.PROVISIONING_DEADLINE + 5,
        step_started=settings.PROVISIONING_DEADLINE + 5,
    )
    assert provisioning.reap() == []
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.PROVISIONING
