"""Dedicated servers: a machine and an IP are reserved, then staff install it and hand it over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from instances import dedicated
from instances.models import DedicatedServer, Instance, InstanceOperation
from instances.operations import engine
from instances.services import InstanceSpec, instance_create
from tests.factories import make_location_with_capacity, make_os_image
from tests.instances.world import drive, live_operation

DEDICATED = InstanceSpec("dedicated", "Dedicated M", 16, True, 64 * 1024, 960, "nvme")


@pytest.fixture
def location(db):
    return make_location_with_capacity()


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


def order_metal(owner, location) -> Instance:
    return instance_create(
        owner=owner,
        hostname="metal",
        location=location,
        os_image=make_os_image(),
        spec=DEDICATED,
        generate_password=True,
        reason="Payment received; build queued.",
    )


def test_a_dedicated_order_gets_a_machine_and_an_ip_and_waits_for_staff(alice, location, machine):
    server = order_metal(alice, location)
    operation = live_operation(server.pk)
    assert operation.kind == InstanceOperation.Kind.INSTALL
    assert engine.advance(operation.pk) is None, "nothing to poll: staff move it on"
    server.refresh_from_db()
    machine.refresh_from_db()
    assert server.status == Instance.Status.PROVISIONING
    assert machine.state == DedicatedServer.State.ASSIGNED and machine.instance == server
    assert server.ipv4 is not None
    assert server.events.filter(message__contains="FRA-D-001 reserved").exists()


def test_staff_install_and_hand_over_a_dedicated_server(
    alice, staff, location, machine, django_capture_on_commit_callbacks
):
    server = order_metal(alice, location)
    engine.advance(live_operation(server.pk).pk)
    dedicated.mark_installing(instance_id=server.pk, staff=staff)
    dedicated.mark_ready(instance_id=server.pk, staff=staff)
    with django_capture_on_commit_callbacks(execute=True):
        drive(server.operations.get().pk)
    server.refresh_from_db()
    machine.refresh_from_db()
    assert server.status == Instance.Status.RUNNING
    assert machine.state == DedicatedServer.State.READY
    assert mail.outbox[0].to == ["alice@example.com"]
    assert server.events.filter(actor="staff").count() == 2
    assert server.operations.get().state == InstanceOperation.State.SUCCEEDED


def test_without_a_free_machine_the_order_waits_with_a_reason(alice, location, settings):
    server = order_metal(alice, location)
    operation = live_operation(server.pk)
    assert engine.advance(operation.pk) == settings.OPERATION_CAPACITY_RETRY
    operation.refresh_from_db()
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.QUEUED
    assert "No machine with 16 cores" in operation.waiting_reason


def test_the_reaper_leaves_a_machine_staff_are_installing(alice, location, machine, settings):
    server = order_metal(alice, location)
    operation = live_operation(server.pk)
    engine.advance(operation.pk)
    late = timezone.now() - timedelta(seconds=settings.OPERATION_DEADLINE + 5)
    InstanceOperation.objects.filter(pk=operation.pk).update(updated_at=late, step_started_at=late)
    assert engine.reap() == []
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.PROVISIONING
