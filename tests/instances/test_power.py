"""Power operations on a running server: each ends with the effect in PVE and on the timeline."""

from __future__ import annotations

import pytest

from instances import services
from instances.models import Instance, InstanceOperation
from sandbox import pve_guests
from tests.instances.operations import CUSTOMER, running_server, vm_of
from tests.instances.world import drive

State = InstanceOperation.State


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def power(server, action, user):
    operation = services.instance_power(
        instance=server, action=action, actor=CUSTOMER, actor_user=user
    )
    return drive(operation.pk)


def test_shut_down_powers_the_guest_off_cleanly(world, server, alice):
    operation = power(server, "shutdown", alice)
    assert operation.state == State.SUCCEEDED
    assert vm_of(world, server).status == "stopped"
    server.refresh_from_db()
    assert server.status == Instance.Status.STOPPED
    assert server.events.filter(message="Server shut down.").exists()
    requested = server.events.get(message="Shutdown requested.")
    assert (requested.actor, requested.actor_user) == ("customer", alice)


def test_a_guest_that_ignores_acpi_is_stopped_after_the_timeout_and_we_say_so(
    world, server, alice, settings
):
    settings.OPERATION_SHUTDOWN_TIMEOUT = 5
    vm_of(world, server).acpi = False
    operation = power(server, "shutdown", alice)
    assert operation.state == State.SUCCEEDED and operation.params["forced"] is True
    assert vm_of(world, server).status == "stopped"
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.STOPPED
    assert server.events.filter(message__contains="did not shut down within 5 s").exists()
    assert server.events.filter(
        message="Server stopped: it did not shut down by itself in time."
    ).exists()


def test_stop_then_start(world, server, alice):
    assert power(server, "stop", alice).state == State.SUCCEEDED
    assert vm_of(world, server).status == "stopped"
    server.refresh_from_db()
    assert power(server, "start", alice).state == State.SUCCEEDED
    assert vm_of(world, server).status == "running"
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.RUNNING
    assert server.events.filter(message="Server started.").exists()


def test_reboot_and_reset_restart_the_guest(world, server, alice):
    vm = vm_of(world, server)
    booted = vm.started_at
    assert power(server, "reboot", alice).state == State.SUCCEEDED
    assert vm.status == "running" and vm.started_at >= booted
    assert [t["type"] for t in world.tasklog][-1] == "qmreboot"
    assert power(server, "reset", alice).state == State.SUCCEEDED
    assert [t["type"] for t in world.tasklog][-1] == "qmreset"
    assert server.events.filter(message="Server rebooted.").exists()
    assert server.events.filter(message="Server reset.").exists()


def test_a_reboot_the_guest_ignores_fails_and_points_to_reset(world, server, alice, settings):
    settings.OPERATION_SHUTDOWN_TIMEOUT = 5
    vm_of(world, server).acpi = False
    operation = power(server, "reboot", alice)
    assert operation.state == State.FAILED
    assert "powerdown failed" in operation.error
    assert "Reset restarts it at once" in operation.error_message
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.RUNNING


def test_a_second_request_while_one_runs_is_refused_naming_it(world, server, alice):
    services.instance_power(instance=server, action="reboot", actor=CUSTOMER, actor_user=alice)
    with pytest.raises(services.OperationInProgress, match="A reboot is in progress"):
        services.instance_power(instance=server, action="stop", actor=CUSTOMER, actor_user=alice)
    assert server.operations.filter(state__in=InstanceOperation.LIVE).count() == 1


def test_the_database_refuses_a_second_live_operation(server):
    from django.db import IntegrityError, transaction

    InstanceOperation.objects.create(instance=server, kind="reboot")
    with pytest.raises(IntegrityError), transaction.atomic():
        InstanceOperation.objects.create(instance=server, kind="stop")


def test_an_action_the_status_does_not_allow_is_refused(world, server, alice):
    with pytest.raises(services.InstanceError, match="a start is not possible now"):
        services.instance_power(instance=server, action="start", actor=CUSTOMER, actor_user=alice)
    assert not server.operations.filter(kind="start").exists()


def test_a_guest_powered_off_from_inside_is_simply_started(world, server, alice):
    pve_guests.power_off_from_inside(world, server.vmid)
    # The portal still says running until the status sync notices; a reboot would fail, but
    # shut down finds it already off and just records it.
    operation = power(server, "shutdown", alice)
    assert operation.state == State.SUCCEEDED
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.STOPPED
