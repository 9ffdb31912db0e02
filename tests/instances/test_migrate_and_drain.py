"""Staff move a running server to another node without stopping it, and drain a node: every
server moved away once, one at a time, to nodes with room; paused and resumed; the servers that
cannot move listed with the reason. Against the demo cluster in fakepve."""

from __future__ import annotations

import time

import pytest

from instances import drain, services
from instances.models import Instance, InstanceOperation, Node
from instances.placement import node_usage
from tests.instances.operations import running_server
from tests.instances.world import drive, live_operation

STAFF = "staff"
SUCCEEDED, FAILED = InstanceOperation.State.SUCCEEDED, InstanceOperation.State.FAILED


def node(name: str) -> Node:
    return Node.objects.get(name=name)


def servers_on(owner, location, count: int, node_name: str = "pve-a") -> list[Instance]:
    """`count` running servers, all on one node (the others are closed to new servers meanwhile)."""
    Node.objects.exclude(name=node_name).update(state=Node.State.OFFLINE)
    servers = [running_server(owner, location, hostname=f"web{n}") for n in range(1, count + 1)]
    Node.objects.update(state=Node.State.ACTIVE)
    return servers


def migrate(server, target=None, user=None) -> InstanceOperation:
    operation = services.instance_migrate(
        instance=server, target=target, actor=STAFF, actor_user=user
    )
    return drive(operation.pk)


def test_a_live_migration_moves_the_server_and_keeps_everything_the_customer_sees(
    world, demo_location, alice, staff
):
    server = running_server(alice, demo_location)
    before = (server.ipv4_id, server.ipv6, server.vmid, server.hostname)
    target = Node.objects.exclude(pk=server.node_id).order_by("name").first()
    booted = world.vm(server.vmid).started_at
    assert migrate(server, target, staff).state == SUCCEEDED
    server.refresh_from_db()
    vm = world.vm(server.vmid)
    assert server.node == target and vm.node == target.name and server.moving_from is None
    assert (server.ipv4_id, server.ipv6, server.vmid, server.hostname) == before
    assert vm.status == "running" and vm.started_at == booted and server.status == "running"
    entry = server.events.get(message="Moved to another host (no downtime).")
    assert target.name in entry.detail  # for staff; the customer reads the message only


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"state": Node.State.DRAINING}, "is draining"),
        ({"state": Node.State.OFFLINE}, "is offline"),
        ({"memory_mib": 1024}, "has no room"),
    ],
)
def test_a_move_to_a_node_that_cannot_take_it_is_refused_with_the_reason(
    world, demo_location, alice, change, reason
):
    server = running_server(alice, demo_location)
    target = Node.objects.exclude(pk=server.node_id).first()
    Node.objects.filter(pk=target.pk).update(**change)
    with pytest.raises(services.InstanceError, match=reason):
        services.instance_migrate(instance=server, target=node(target.name), actor=STAFF)
    assert not server.operations.filter(kind="migrate").exists()


def test_a_failing_migration_leaves_the_server_running_on_its_source(world, demo_location, alice):
    server = running_server(alice, demo_location)
    source = server.node
    world.vm(server.vmid).migrate_error = "mirroring failed: target storage full"
    done = migrate(server, Node.objects.exclude(pk=source.pk).first())
    assert done.state == FAILED and "target storage full" in done.error
    server.refresh_from_db()
    assert server.node == source and server.moving_from is None and server.status == "running"
    assert world.vm(server.vmid).node == source.name and world.vm(server.vmid).status == "running"


def test_a_moving_server_occupies_room_on_both_nodes(world, demo_location, alice):
    server = running_server(alice, demo_location)
    source = server.node
    target = Node.objects.exclude(pk=source.pk).order_by("name").first()
    operation = services.instance_migrate(instance=server, target=target, actor=STAFF)
    from instances.operations import engine

    world.time_scale = 0.2  # the migration takes about 2 s: far longer than one look at it
    engine.advance(operation.pk)
    server.refresh_from_db()
    assert (server.node, server.moving_from) == (target, source)
    assert node_usage(source, "nvme").shared_vcpus == node_usage(target, "nvme").shared_vcpus == 2
    deadline = time.monotonic() + 30
    while world.vm(server.vmid).lock == "migrate" and time.monotonic() < deadline:
        time.sleep(0.05)  # until the fake's migration task has ended
    world.time_scale = 0
    assert drive(operation.pk).state == SUCCEEDED


def run_drain(source: Node, *, limit: int = 30) -> list[str]:
    """What a worker does: ask for the next move, drive it, until nothing is left."""
    said = []
    for _ in range(limit):
        said.append(drain.drain_advance(source.pk))
        moving = InstanceOperation.objects.filter(kind="migrate", state__in=InstanceOperation.LIVE)
        for operation in moving:
            drive(operation.pk)
        if said[-1] in ("nothing left to move", "paused", "not draining"):
            return said
    raise AssertionError(said)


def test_a_drain_moves_every_server_once_to_nodes_with_room(world, demo_location, alice, staff):
    servers = servers_on(alice, demo_location, 4)
    source = node("pve-a")
    drain.drain_start(node=source, actor_user=staff)
    said = run_drain(source)
    assert said[-1] == "nothing left to move"
    for server in servers:
        server.refresh_from_db()
        assert server.node != source and world.vm(server.vmid).node == server.node.name
        assert server.operations.filter(kind="migrate", state=SUCCEEDED).count() == 1
        assert world.vm(server.vmid).status == "running"
    assert drain.drain_progress(node("pve-a")).left == 0
    # Spread over the other nodes, least loaded first.
    assert {s.node.name for s in servers} == {"pve-b", "pve-c"}


def test_a_drain_pauses_and_resumes(world, demo_location, alice, staff):
    servers_on(alice, demo_location, 3)
    source = node("pve-a")
    drain.drain_start(node=source, actor_user=staff)
    assert drain.drain_advance(source.pk).startswith("moving ")
    drain.drain_pause(node=source, paused=True)
    drive(InstanceOperation.objects.get(kind="migrate", state__in=InstanceOperation.LIVE).pk)
    assert drain.drain_advance(source.pk) == "paused"
    assert drain.drain_progress(node("pve-a")).left == 2
    drain.drain_pause(node=source, paused=False)
    run_drain(source)
    assert drain.drain_progress(node("pve-a")).left == 0


def test_servers_that_cannot_move_are_listed_and_the_drain_goes_on(
    world, demo_location, alice, staff
):
    first, second, third = servers_on(alice, demo_location, 3)
    world.vm(second.vmid).migrate_error = "mirroring failed: disk full"
    source = node("pve-a")
    drain.drain_start(node=source, actor_user=staff)
    run_drain(source)
    progress = drain.drain_progress(node("pve-a"))
    assert progress.left == 1
    assert list(progress.problems.values()) == [
        f"{second.hostname}: migration problems: mirroring failed: disk full"
    ]
    for server in (first, third):
        server.refresh_from_db()
        assert server.node != source


def test_no_room_anywhere_is_listed_as_the_reason(world, demo_location, alice, staff):
    [server] = servers_on(alice, demo_location, 1)
    Node.objects.exclude(name="pve-a").update(memory_mib=1024)
    source = node("pve-a")
    drain.drain_start(node=source, actor_user=staff)
    assert run_drain(source)[-1] == "nothing left to move"
    [reason] = drain.drain_progress(node("pve-a")).problems.values()
    assert reason.startswith(f"{server.hostname}: No node in") and "has room" in reason
    assert live_operation(server.pk) is None


def test_return_to_service_ends_the_drain(world, demo_location, alice, staff):
    servers_on(alice, demo_location, 2)
    source = node("pve-a")
    drain.drain_start(node=source, actor_user=staff)
    drain.drain_advance(source.pk)
    drain.node_return_to_service(node=source)
    for operation in InstanceOperation.objects.filter(state__in=InstanceOperation.LIVE):
        drive(operation.pk)
    assert drain.drain_advance(source.pk) == "not draining"
    assert drain.drain_progress(node("pve-a")).left == 1
    assert node("pve-a").state == Node.State.ACTIVE


# --- From the admin, as support does it ---------------------------------------------------------


def test_support_moves_a_server_from_its_admin_page(client, world, demo_location, alice, staff):
    server = running_server(alice, demo_location)
    target = Node.objects.exclude(pk=server.node_id).order_by("name").first()
    client.force_login(staff)
    page = client.get(f"/admin/instances/instance/{server.pk}/migrate/")
    assert page.status_code == 200 and target.name in page.content.decode()
    response = client.post(f"/admin/instances/instance/{server.pk}/migrate/", {"target": target.pk})
    assert response.status_code == 302
    operation = server.operations.get(kind="migrate")
    assert (operation.actor, operation.actor_user) == ("staff", staff)
    assert drive(operation.pk).state == SUCCEEDED
    server.refresh_from_db()
    assert server.node == target


def test_support_drains_a_node_and_sees_its_progress(client, world, demo_location, alice, staff):
    servers_on(alice, demo_location, 2)
    source = node("pve-a")
    client.force_login(staff)
    client.post("/admin/instances/node/", {"action": "drain", "_selected_action": [source.pk]})
    source.refresh_from_db()
    assert source.state == Node.State.DRAINING
    drain.drain_advance(source.pk)  # what the message sent after the commit does
    page = client.get(f"/admin/instances/node/{source.pk}/change/").content.decode()
    assert "2 server(s) left, moving web" in page
    run_drain(source)
    page = client.get("/admin/instances/node/").content.decode()
    assert "0 server(s) left" in page
    client.post(
        "/admin/instances/node/", {"action": "return_to_service", "_selected_action": [source.pk]}
    )
    assert node("pve-a").state == Node.State.ACTIVE
