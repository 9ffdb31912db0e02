"""Placement: a node with room on the right storage, honouring overcommit, and unique VMIDs/IPs."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import close_old_connections, connection

from instances import placement
from instances.models import Instance, IPAddress, Node
from tests.factories import make_instance, make_location_with_capacity


def always_free(cluster, vmid: int) -> bool:
    return True


@pytest.fixture
def location(db):
    return make_location_with_capacity()


def test_it_reserves_a_node_vmid_and_ip(alice, location):
    instance = make_instance(alice, location)
    reserved = placement.reserve(instance.pk, is_vmid_free=always_free)
    assert reserved.node.cluster.location == location
    assert reserved.vmid == reserved.cluster.vmid_min
    assert reserved.ipv4.state == IPAddress.State.ASSIGNED
    assert reserved.ipv6.startswith("2001:db8:100:") and reserved.ipv6.endswith("::1/64")


def test_reserving_twice_keeps_the_first_reservation(alice, location):
    instance = make_instance(alice, location)
    first = placement.reserve(instance.pk, is_vmid_free=always_free)
    again = placement.reserve(instance.pk, is_vmid_free=always_free)
    assert (again.node, again.vmid, again.ipv4) == (first.node, first.vmid, first.ipv4)
    assert IPAddress.objects.filter(state=IPAddress.State.ASSIGNED).count() == 1


def test_it_spreads_servers_over_nodes(alice, location):
    nodes = Counter()
    for i in range(4):
        reserved = placement.reserve(
            make_instance(alice, location, hostname=f"s{i}").pk, is_vmid_free=always_free
        )
        nodes[reserved.node.name] += 1
    assert nodes == {"pve-0": 2, "pve-1": 2}


def test_it_skips_a_vmid_that_pve_already_uses(alice, location):
    instance = make_instance(alice, location)
    taken_in_pve = {1000, 1001}
    reserved = placement.reserve(instance.pk, is_vmid_free=lambda c, v: v not in taken_in_pve)
    assert reserved.vmid == 1002


def test_draining_and_offline_nodes_get_nothing(alice, location):
    Node.objects.filter(name="pve-0").update(state=Node.State.DRAINING)
    Node.objects.filter(name="pve-1").update(state=Node.State.OFFLINE)
    with pytest.raises(placement.NoCapacity, match="No node in eu-test-1"):
        placement.reserve(make_instance(alice, location).pk, is_vmid_free=always_free)


def test_shared_vcpus_are_overcommitted_by_the_node_ratio(alice, db):
    location = make_location_with_capacity(nodes=1, cores=4, cpu_overcommit="4")
    for i in range(8):  # 8 × 2 vCPU = 16 vCPU = 4 cores at 4:1
        placement.reserve(
            make_instance(alice, location, hostname=f"s{i}", memory_mib=1024).pk,
            is_vmid_free=always_free,
        )
    with pytest.raises(placement.NoCapacity):
        placement.reserve(
            make_instance(alice, location, hostname="one-too-many", memory_mib=1024).pk,
            is_vmid_free=always_free,
        )


def test_vds_cores_and_ram_are_never_overcommitted(alice, db):
    location = make_location_with_capacity(
        nodes=1, cores=8, memory_mib=32768, cpu_overcommit="4", ram_overcommit="1.5"
    )
    vds = {"family": "vds", "dedicated_cores": True, "memory_mib": 8192}
    placement.reserve(
        make_instance(alice, location, hostname="vds1", vcpus=4, **vds).pk,
        is_vmid_free=always_free,
    )
    placement.reserve(
        make_instance(alice, location, hostname="vds2", vcpus=4, **vds).pk,
        is_vmid_free=always_free,
    )
    # 8 physical cores are taken; a shared VPS would still need a share of one.
    with pytest.raises(placement.NoCapacity):
        placement.reserve(
            make_instance(alice, location, hostname="vps", vcpus=1, memory_mib=512).pk,
            is_vmid_free=always_free,
        )


def test_disk_is_counted_per_storage_class(alice, db):
    location = make_location_with_capacity(nodes=1, nvme_gib=100, bulk_gib=1000)
    placement.reserve(
        make_instance(alice, location, hostname="big", disk_gib=100).pk, is_vmid_free=always_free
    )
    with pytest.raises(placement.NoCapacity, match="nvme"):
        placement.reserve(
            make_instance(alice, location, hostname="more", disk_gib=10).pk,
            is_vmid_free=always_free,
        )
    bulk = placement.reserve(
        make_instance(alice, location, hostname="bulk", disk_gib=500, storage_class="bulk").pk,
        is_vmid_free=always_free,
    )
    assert bulk.node is not None


def test_terminated_servers_free_their_capacity(alice, db):
    location = make_location_with_capacity(nodes=1, nvme_gib=100)
    first = placement.reserve(
        make_instance(alice, location, hostname="old", disk_gib=100).pk, is_vmid_free=always_free
    )
    Instance.objects.filter(pk=first.pk).update(status=Instance.Status.TERMINATED)
    placement.release(first)
    second = placement.reserve(
        make_instance(alice, location, hostname="new", disk_gib=100).pk, is_vmid_free=always_free
    )
    assert second.vmid != first.vmid
    assert second.ipv4 != first.ipv4, "the released address rests in quarantine"


def test_no_free_address_means_no_capacity(alice, db):
    location = make_location_with_capacity(addresses=1)
    placement.reserve(make_instance(alice, location, hostname="a").pk, is_vmid_free=always_free)
    with pytest.raises(placement.NoCapacity, match="No free IPv4"):
        placement.reserve(make_instance(alice, location, hostname="b").pk, is_vmid_free=always_free)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_placements_get_distinct_vmids_and_ips(alice):
    location = make_location_with_capacity(nodes=3, cores=4, memory_mib=65536, addresses=60)
    # 3 nodes × 4 cores × 4:1 = 48 vCPU: room for 48 one-vCPU servers, not for 50.
    ids = [
        make_instance(alice, location, hostname=f"c{i}", vcpus=1, memory_mib=1024, disk_gib=20).pk
        for i in range(50)
    ]
    barrier = threading.Barrier(len(ids))
    outcomes: dict[int, str] = {}

    def place(instance_id: int) -> None:
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            placement.reserve(instance_id, is_vmid_free=always_free)
            outcomes[instance_id] = "placed"
        except placement.NoCapacity:
            outcomes[instance_id] = "no capacity"
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    placed = Instance.objects.filter(pk__in=ids, node__isnull=False)
    assert Counter(outcomes.values()) == {"placed": 48, "no capacity": 2}
    assert placed.values("vmid").distinct().count() == 48
    assert placed.values("ipv4").distinct().count() == 48
    assert IPAddress.objects.filter(state=IPAddress.State.ASSIGNED).count() == 48
    per_node = Counter(placed.values_list("node__name", flat=True))
    assert all(count <= 16 for count in per_node.values()), per_node
