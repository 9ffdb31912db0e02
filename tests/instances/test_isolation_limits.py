"""Noisy-neighbour limits from the plan: the NIC's rate, the disk's IOPS and MB/s, the CPU
weight, set on the VM at build and at every resize (live), checked in the fake's VM config, and
shown on the server page."""

from __future__ import annotations

import dataclasses

import pytest
from django.urls import reverse

from billing.models import Plan
from billing.orders import spec_of
from instances import services
from instances.models import Instance, InstanceOperation
from instances.operations.limits import limits_of
from tests.instances.operations import SPEC, running_server, vm_of
from tests.instances.world import drive

NVME = dataclasses.replace(
    SPEC,
    max_vcpus=8,
    net_rate_mbit=1000,
    disk_iops_rd=20000,
    disk_iops_wr=10000,
    disk_mbps_rd=1000,
    disk_mbps_wr=500,
    cpu_units=200,
)
VDS = dataclasses.replace(
    NVME,
    family="vds",
    plan_name="VDS M",
    vcpus=4,
    dedicated_cores=True,
    memory_mib=8192,
    disk_gib=80,
    net_rate_mbit=2000,
    disk_iops_rd=50000,
    disk_iops_wr=25000,
    disk_mbps_rd=2000,
    disk_mbps_wr=1000,
    cpu_units=4000,
)


def test_a_server_is_built_with_its_plans_limits(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=NVME)
    config = vm_of(world, server).config
    assert limits_of(config) == {
        "rate": "125",  # MB/s: 1000 Mbit/s
        "iops_rd": "20000",
        "iops_wr": "10000",
        "mbps_rd": "1000",
        "mbps_wr": "500",
        "cpuunits": 200,
    }
    assert "firewall=1" in config["net0"]
    assert config["scsi0"].startswith("nvme:vm-") and "discard=on" in config["scsi0"]


def test_an_upgrade_sets_the_new_limits_without_a_reboot(world, demo_location, alice):
    server = running_server(alice, demo_location, spec=NVME)
    vm = vm_of(world, server)
    booted = vm.started_at
    operation = services.instance_resize(instance=server, spec=VDS, label="Upgraded to VDS M.")
    assert drive(operation.pk).state == InstanceOperation.State.SUCCEEDED
    assert limits_of(vm.config) == {
        "rate": "250",
        "iops_rd": "50000",
        "iops_wr": "25000",
        "mbps_rd": "2000",
        "mbps_wr": "1000",
        "cpuunits": 4000,
    }
    assert not ({"net0", "scsi0", "cpuunits"} & set(vm.pending)), "all of it live"
    assert vm.started_at == booted
    server.refresh_from_db()
    assert (server.net_rate_mbit, server.cpu_units, server.disk_iops_rd) == (2000, 4000, 50000)


def test_a_plan_without_limits_leaves_the_vm_unlimited(world, demo_location, alice):
    server = running_server(alice, demo_location)
    operation = services.instance_resize(instance=server, spec=NVME, label="Upgraded.")
    drive(operation.pk)
    unlimited = dataclasses.replace(NVME, net_rate_mbit=0, disk_iops_rd=0, disk_mbps_wr=0)
    drive(services.instance_resize(instance=server, spec=unlimited, label="Again.").pk)
    limits = limits_of(vm_of(world, server).config)
    assert (limits["rate"], limits["iops_rd"], limits["mbps_wr"]) == (None, None, None)
    assert limits["iops_wr"] == "10000"


def test_the_server_page_shows_the_limits(alice_client, world, demo_location, alice):
    server = running_server(alice, demo_location, spec=VDS)
    page = alice_client.get(reverse("instances:detail", args=[server.pk])).content.decode()
    assert "Limits and firewall" in page
    assert "2 Gbit/s" in page
    assert "50,000 IOPS, 2,000 MB/s" in page and "25,000 IOPS, 1,000 MB/s" in page
    assert "4,000" in page and "dedicated cores" in page
    assert "Firewall: <strong>off</strong>" in page


@pytest.mark.parametrize(
    ("slug", "rate", "units"),
    [("storage-vps-s", 500, 100), ("nvme-vps-m", 1000, 400), ("vds-l", 2000, 8000)],
)
def test_the_demo_plans_give_their_servers_the_familys_limits(world, slug, rate, units):
    spec = spec_of(Plan.objects.get(slug=slug))
    assert (spec.net_rate_mbit, spec.cpu_units) == (rate, units)
    assert spec.disk_iops_rd > spec.disk_iops_wr > 0


def test_a_vds_core_weighs_more_than_a_shared_vcpu(world):
    vds, vps = Plan.objects.get(slug="vds-s"), Plan.objects.get(slug="nvme-vps-s")
    assert vds.vcpus == vps.vcpus
    assert vds.cpu_units == 10 * vps.cpu_units


def test_a_dedicated_machine_gets_no_vm_limits(world):
    assert spec_of(Plan.objects.get(slug="dedi-8")).cpu_units == 0
    assert not Instance._meta.get_field("cpu_units").default
