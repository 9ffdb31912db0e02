"""A new size for a running server (what billing asks for once an upgrade is paid): hot-plugged
where the VM allows, pending until a reboot where it does not, moved to a node with room first,
and a Storage VPS disk moved to NVMe online. Driven through services and the engine, against the
demo cluster in fakepve."""

from __future__ import annotations

import dataclasses

import pytest

from instances import services
from instances.models import Instance, InstanceOperation, Node
from tests.instances.operations import CUSTOMER, SPEC, running_server, vm_of
from tests.instances.world import drive

Status = Instance.Status
SUCCEEDED = InstanceOperation.State.SUCCEEDED
# Built for live upgrades up to 8 vCPUs (the biggest size of its family).
GROWABLE = dataclasses.replace(SPEC, max_vcpus=8)
BIGGER = dataclasses.replace(
    SPEC, plan_name="NVMe L", vcpus=4, memory_mib=8192, disk_gib=80, max_vcpus=8
)


def resize(server: Instance, spec=BIGGER, label: str = "Upgraded to NVMe L.") -> InstanceOperation:
    operation = services.instance_resize(instance=server, spec=spec, label=label)
    done = drive(operation.pk)
    assert done.state == SUCCEEDED, done.error
    return done


def pending(vm) -> set[str]:
    return set(vm.pending)


def timeline(server: Instance) -> list[str]:
    return list(server.events.values_list("message", flat=True))


def test_a_new_server_is_built_for_live_upgrades(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=GROWABLE)
    config = vm_of(world, server).config
    assert set(config["hotplug"].split(",")) >= {"cpu", "memory"}
    assert (int(config["numa"]), int(config["cores"]), int(config["vcpus"])) == (1, 8, 2)
    assert server.max_vcpus == 8


def test_an_upgrade_hot_plugs_vcpus_and_ram_and_grows_the_disk_without_a_reboot(
    world, demo_location, alice
):
    server = running_server(alice, demo_location, spec=GROWABLE)
    vm = vm_of(world, server)
    booted = vm.started_at
    resize(server)
    assert (int(vm.config["vcpus"]), int(vm.config["memory"])) == (4, 8192)
    assert "size=80G" in vm.config["scsi0"]
    assert pending(vm) == set() and vm.status == "running"
    assert vm.started_at == booted  # no reboot
    server.refresh_from_db()
    assert (server.vcpus, server.memory_mib, server.disk_gib, server.plan_name) == (
        4,
        8192,
        80,
        "NVMe L",
    )
    assert server.pending_changes == []
    assert any("applied without a reboot" in entry for entry in timeline(server))


def test_an_older_server_gets_its_new_size_and_layout_at_the_next_reboot(
    world, demo_location, alice
):
    server = running_server(alice, demo_location, spec=GROWABLE)
    vm = vm_of(world, server)
    # As a server built before live upgrades: no hotplug, NUMA off, cores at its own count.
    for key in ("hotplug", "numa", "vcpus"):
        vm.config.pop(key, None)
    vm.config["cores"] = "2"
    Instance.objects.filter(pk=server.pk).update(max_vcpus=0)
    server.refresh_from_db()
    resize(server)
    server.refresh_from_db()
    assert {"cores", "vcpus", "memory", "numa"} <= set(server.pending_changes)
    assert any("take effect at the next reboot" in entry for entry in timeline(server))
    assert world.vm(server.vmid).status == "running"

    reboot = services.instance_power(
        instance=server, action="reboot", actor=CUSTOMER, actor_user=alice
    )
    assert drive(reboot.pk).state == SUCCEEDED
    server.refresh_from_db()
    assert server.pending_changes == []
    assert (int(vm.config["cores"]), int(vm.config["vcpus"])) == (8, 4)
    assert set(vm.config["hotplug"].split(",")) >= {"cpu", "memory"}


def test_more_vcpus_than_the_layout_takes_wait_for_the_reboot(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=GROWABLE)
    vds = dataclasses.replace(BIGGER, family="vds", dedicated_cores=True, vcpus=12, max_vcpus=16)
    resize(server, spec=vds)
    server.refresh_from_db()
    assert "cores" in server.pending_changes
    vm = vm_of(world, server)
    services_reboot = services.instance_power(
        instance=server, action="reboot", actor=CUSTOMER, actor_user=alice
    )
    drive(services_reboot.pk)
    assert int(vm.config["cores"]) == 12 and "vcpus" not in vm.config


def test_a_server_whose_node_is_full_moves_first_and_keeps_its_address(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=GROWABLE)
    address, vmid, source = server.ipv4_id, server.vmid, server.node
    Node.objects.filter(pk=source.pk).update(memory_mib=6144)  # room for 4 GiB, not for 8
    resize(server)
    server.refresh_from_db()
    vm = world.vm(vmid)
    assert server.node != source and vm.node == server.node.name
    assert (server.ipv4_id, server.vmid, server.moving_from) == (address, vmid, None)
    assert vm.status == "running" and int(vm.config["vcpus"]) == 4
    assert "Moved to another host (no downtime)." in timeline(server)


def test_a_storage_vps_moves_its_disk_to_nvme_online(world, demo_location, alice):
    storage_vps = dataclasses.replace(
        GROWABLE, family="storage_vps", plan_name="Storage S", storage_class="bulk"
    )
    server = running_server(alice, demo_location, spec=storage_vps)
    vm = vm_of(world, server)
    assert vm.config["scsi0"].startswith("bulk:")
    resize(server, spec=BIGGER)
    assert vm.config["scsi0"].startswith("nvme:") and "size=80G" in vm.config["scsi0"]
    assert vm.status == "running" and not [k for k in vm.config if k.startswith("unused")]
    server.refresh_from_db()
    assert server.storage_class == "nvme"


def test_fewer_vcpus_apply_at_once_and_less_ram_at_the_next_reboot(world, demo_location, alice):
    bigger = running_server(alice, demo_location, spec=dataclasses.replace(BIGGER, disk_gib=80))
    smaller = dataclasses.replace(BIGGER, plan_name="NVMe M", vcpus=2, memory_mib=4096)
    resize(bigger, spec=smaller, label="Moved to NVMe M.")
    vm = vm_of(world, bigger)
    assert int(vm.config["vcpus"]) == 2
    assert pending(vm) == {"memory"}


def test_a_disk_never_shrinks(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=GROWABLE)
    with pytest.raises(services.InstanceError, match="Disks never shrink"):
        services.instance_resize(
            instance=server, spec=dataclasses.replace(SPEC, disk_gib=20), label="Smaller."
        )
    assert not server.operations.filter(kind="resize").exists()


def test_a_second_change_while_the_upgrade_runs_is_refused(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=GROWABLE)
    services.instance_resize(instance=server, spec=BIGGER, label="Upgraded.")
    with pytest.raises(services.OperationInProgress, match="An upgrade is in progress"):
        services.instance_power(instance=server, action="reboot", actor=CUSTOMER, actor_user=alice)


def test_a_planned_reboot_applies_what_waits(world, demo_location, alice):
    from datetime import timedelta

    from django.utils import timezone

    server = running_server(alice, demo_location, spec=GROWABLE)
    smaller = dataclasses.replace(GROWABLE, memory_mib=2048)
    resize(server, spec=smaller, label="Moved to NVMe XS.")
    server.refresh_from_db()
    assert server.pending_changes == ["memory"]
    services.reboot_plan(instance=server, at=timezone.now() + timedelta(hours=2), actor_user=alice)
    assert services.planned_reboots_start() == 0
    assert services.planned_reboots_start(now=timezone.now() + timedelta(hours=3)) == 1
    reboot = server.operations.get(kind="reboot")
    assert (reboot.actor, reboot.actor_user) == (CUSTOMER, alice)
    drive(reboot.pk)
    server.refresh_from_db()
    assert (server.pending_changes, server.reboot_at) == ([], None)
    assert int(vm_of(world, server).config["memory"]) == 2048
