"""Suspending, restoring and removing servers (what billing asks for when money stops, comes
back, or the subscription ends), against the demo cluster in fakepve; a dedicated server waits
for the technicians at the machine's step."""

from __future__ import annotations

import pytest

from instances import lifecycle, selectors, services
from instances.models import DedicatedServer, Instance, InstanceOperation, IPAddress
from tests.instances.operations import CUSTOMER, running_server
from tests.instances.world import drive, portal_vms

Status = Instance.Status
SUCCEEDED = InstanceOperation.State.SUCCEEDED
UNPAID = "Suspended: the invoice of 3 December is unpaid. Pay it on the Billing page."


def suspend(server) -> Instance:
    operation = lifecycle.instance_suspend(instance=server, reason=UNPAID)
    assert drive(operation.pk).state == SUCCEEDED
    server.refresh_from_db()
    return server


def test_a_suspended_server_is_shut_down_and_its_actions_are_blocked(world, demo_location, alice):
    server = suspend(running_server(alice, demo_location))
    assert server.status == Status.SUSPENDED and server.suspended_reason == UNPAID
    assert world.vm(server.vmid).status == "stopped"
    assert selectors.panel(server).actions == frozenset()
    with pytest.raises(services.InstanceError, match="not possible now"):
        services.instance_power(instance=server, action="start", actor=CUSTOMER, actor_user=alice)
    assert server.events.filter(message=UNPAID, new_status="suspended").exists()


def test_asking_twice_suspends_once(world, demo_location, alice):
    server = running_server(alice, demo_location)
    first = lifecycle.instance_suspend(instance=server, reason=UNPAID)
    assert lifecycle.instance_suspend(instance=server, reason=UNPAID) == first
    drive(first.pk)
    assert lifecycle.instance_suspend(instance=server, reason=UNPAID) is None
    assert server.operations.filter(kind="suspend").count() == 1


def test_restoring_starts_the_server_and_lifts_the_block(world, demo_location, alice):
    server = suspend(running_server(alice, demo_location))
    operation = lifecycle.instance_unsuspend(instance=server, reason="Paid, thank you.")
    assert drive(operation.pk).state == SUCCEEDED
    server.refresh_from_db()
    assert (server.status, server.suspended_reason) == (Status.RUNNING, "")
    assert world.vm(server.vmid).status == "running"
    assert "reboot" in selectors.panel(server).actions
    assert lifecycle.instance_unsuspend(instance=server, reason="again") is None


def test_removal_destroys_the_vm_and_rests_the_address(world, demo_location, alice, bob):
    server = suspend(running_server(alice, demo_location))
    address = server.ipv4
    operation = lifecycle.instance_terminate(instance=server, reason="The subscription ended.")
    assert drive(operation.pk).state == SUCCEEDED
    server.refresh_from_db()
    assert server.status == Status.TERMINATED and server.terminated_at
    assert portal_vms(world) == [] and world.vm(server.vmid) is None
    assert not [name for sid in ("nvme", "bulk") for name in world.storages[sid]["volumes"]
                if f"-{server.vmid}-" in name]  # fmt: skip
    address.refresh_from_db()
    assert address.state == IPAddress.State.QUARANTINED and address.released_at
    assert server.events.count() > 3  # the records stay
    other = running_server(bob, demo_location, hostname="next")
    assert other.ipv4_id != address.pk  # not reused while it rests


def test_a_server_still_being_built_is_removed_after_its_build(world, demo_location, alice):
    from tests.instances.test_build import order

    building = order(alice, demo_location)
    with pytest.raises(services.OperationInProgress):
        lifecycle.instance_terminate(instance=building, reason="Cancelled.")


def test_a_dedicated_server_waits_for_the_technicians(db, alice, staff):
    from tests.factories import make_instance, make_location_with_capacity

    location = make_location_with_capacity()
    server = make_instance(alice, location, family="dedicated", status=Status.RUNNING)
    DedicatedServer.objects.create(
        location=location, asset_tag="D1", model="R650", cpu="Xeon", cores=8, memory_gib=64,
        disks="2x960", state=DedicatedServer.State.READY, instance=server,
    )  # fmt: skip
    operation = lifecycle.instance_suspend(instance=server, reason=UNPAID)
    waiting = drive(operation.pk)
    assert waiting.is_live and waiting.waiting_reason.startswith("Our technicians")
    lifecycle.dedicated_task_done(instance=server, staff=staff)
    assert drive(operation.pk).state == SUCCEEDED
    server.refresh_from_db()
    assert server.status == Status.SUSPENDED
    removal = lifecycle.instance_terminate(instance=server, reason="Ended.")
    drive(removal.pk)
    lifecycle.dedicated_task_done(instance=server, staff=staff)
    assert drive(removal.pk).state == SUCCEEDED
    assert DedicatedServer.objects.get(asset_tag="D1").state == DedicatedServer.State.AVAILABLE


def test_support_marks_the_technicians_part_done_in_the_admin(client, db, alice, staff):
    from tests.factories import make_instance, make_location_with_capacity

    server = make_instance(
        alice, make_location_with_capacity(), family="dedicated", status=Status.RUNNING
    )
    operation = lifecycle.instance_suspend(instance=server, reason=UNPAID)
    drive(operation.pk)
    client.force_login(staff)
    client.post(
        "/admin/instances/instance/",
        {"action": "dedicated_task_done", "_selected_action": [server.pk]},
    )
    assert drive(operation.pk).state == SUCCEEDED
    assert server.events.filter(actor="staff", actor_user=staff).exists()
