"""Choosing a node, a VMID and an IP for a server, under database locks.

Every placement in a location locks that location's node rows first (in id order, so two
placements never deadlock), which serialises the capacity arithmetic; unique constraints on
(cluster, vmid) and on live IPv4 addresses back that up.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from instances.models import (
    Cluster,
    Instance,
    IPAddress,
    IPPool,
    Node,
    NodeStorage,
    StorageClass,
)

# Servers in these statuses occupy capacity on their node (a failed build may still be retried).
OCCUPYING = Instance.LIVE


class NoCapacity(Exception):
    """Nothing in the location can take this server now; the message says what is short."""


@dataclass(frozen=True)
class NodeUsage:
    node: Node
    shared_vcpus: int
    dedicated_vcpus: int
    shared_memory_mib: int
    dedicated_memory_mib: int
    disk_gib: int
    disk_capacity_gib: int

    def cpu_load(self, extra: Decimal = Decimal(0)) -> Decimal:
        """Physical cores in use: dedicated cores count whole, shared vCPUs by the overcommit."""
        used = self.dedicated_vcpus + Decimal(self.shared_vcpus) / self.node.cpu_overcommit
        return used + extra

    def memory_load(self, extra: Decimal = Decimal(0)) -> Decimal:
        used = (
            self.dedicated_memory_mib + Decimal(self.shared_memory_mib) / self.node.ram_overcommit
        )
        return used + extra


def node_usage(node: Node, storage_class: str, *, exclude: int | None = None) -> NodeUsage:
    """What the servers on the node use (a server being moved counts on both of its nodes);
    `exclude` leaves one server out, to see whether it fits there with another size."""
    return nodes_usage([node], [storage_class], exclude=exclude)[node.pk, storage_class]


def nodes_usage(
    nodes: Iterable[Node],
    storage_classes: Iterable[str] = StorageClass.values,
    *,
    exclude: int | None = None,
) -> dict[tuple[int, str], NodeUsage]:
    """`node_usage` of many nodes for each storage class, `{(node id, class): usage}`, in
    three queries whatever the number of nodes (the admin's node list shows them all)."""
    nodes = {node.pk: node for node in nodes}
    kinds = list(storage_classes)
    occupying = Instance.objects.filter(status__in=OCCUPYING)
    if exclude is not None:
        occupying = occupying.exclude(pk=exclude)
    sums = {
        "shared_vcpus": Sum("vcpus", filter=Q(dedicated_cores=False), default=0),
        "dedicated_vcpus": Sum("vcpus", filter=Q(dedicated_cores=True), default=0),
        "shared_mem": Sum("memory_mib", filter=Q(dedicated_cores=False), default=0),
        "dedicated_mem": Sum("memory_mib", filter=Q(dedicated_cores=True), default=0),
        **{
            f"disk_{index}": Sum("disk_gib", filter=Q(storage_class=kind), default=0)
            for index, kind in enumerate(kinds)
        },
    }
    totals: dict[int, Counter] = {pk: Counter() for pk in nodes}
    # A server being moved is on its target (`node`) and still on its source (`moving_from`).
    for column in ("node", "moving_from"):
        rows = (
            occupying.filter(**{f"{column}__in": list(nodes)})
            .values(column)
            .annotate(**sums)
            .order_by()
        )
        for row in rows:
            totals[row.pop(column)].update(row)
    capacities = (
        NodeStorage.objects.filter(node__in=list(nodes))
        .values("node", "pool__storage_class")
        .annotate(total=Sum("capacity_gib", default=0))
        .order_by()
    )
    capacity = {(row["node"], row["pool__storage_class"]): row["total"] for row in capacities}
    return {
        (pk, kind): NodeUsage(
            node=node,
            shared_vcpus=totals[pk]["shared_vcpus"],
            dedicated_vcpus=totals[pk]["dedicated_vcpus"],
            shared_memory_mib=totals[pk]["shared_mem"],
            dedicated_memory_mib=totals[pk]["dedicated_mem"],
            disk_gib=totals[pk][f"disk_{index}"],
            disk_capacity_gib=capacity.get((pk, kind), 0),
        )
        for pk, node in nodes.items()
        for index, kind in enumerate(kinds)
    }


def fits(usage: NodeUsage, instance: Instance) -> tuple[bool, Decimal]:
    """Whether the server fits on the node, and how loaded the node would be (0..1) after it."""
    node = usage.node
    if instance.dedicated_cores:  # VDS: physical cores and RAM, never overcommitted
        cpu_need, mem_need = Decimal(instance.vcpus), Decimal(instance.memory_mib)
    else:
        cpu_need = Decimal(instance.vcpus) / node.cpu_overcommit
        mem_need = Decimal(instance.memory_mib) / node.ram_overcommit
    cpu_after = usage.cpu_load(cpu_need) / node.cores
    mem_after = usage.memory_load(mem_need) / node.memory_mib
    disk_after = (
        Decimal(usage.disk_gib + instance.disk_gib) / usage.disk_capacity_gib
        if usage.disk_capacity_gib
        else Decimal("Infinity")
    )
    load = max(cpu_after, mem_after, disk_after)
    return load <= 1, load


def choose_node(instance: Instance, nodes: list[Node]) -> Node:
    """The least loaded node that can take the server (spreading load across nodes)."""
    best: tuple[Decimal, int, Node] | None = None
    for node in nodes:
        ok, load = fits(node_usage(node, instance.storage_class), instance)
        if ok and (best is None or (load, node.pk) < best[:2]):
            best = (load, node.pk, node)
    if best is None:
        raise NoCapacity(f"No node in {instance.location.code} has room for {_describe(instance)}.")
    return best[2]


VmidCheck = Callable[[Cluster, int], bool]


def allocate_vmid(node: Node, is_vmid_free: VmidCheck) -> int:
    """The next VMID of the node's cluster that neither we nor PVE use. Caller holds the lock."""
    cluster = node.cluster
    highest = Instance.objects.filter(cluster=cluster).aggregate(m=Max("vmid"))["m"]
    candidate = max(cluster.vmid_min, (highest or 0) + 1)
    taken = set(
        Instance.objects.filter(cluster=cluster, vmid__gte=candidate)
        .exclude(status=Instance.Status.TERMINATED)
        .values_list("vmid", flat=True)
    )
    templates = set(cluster.templates.values_list("vmid", flat=True))
    while candidate <= cluster.vmid_max:
        if (
            candidate not in taken
            and candidate not in templates
            and is_vmid_free(cluster, candidate)
        ):
            return candidate
        candidate += 1
    raise NoCapacity(f"Cluster {cluster.name} has no free VMID left in its range.")


def allocate_ipv4(instance: Instance) -> IPAddress:
    """A free address of the location (or one whose quarantine is over). Caller is atomic."""
    now = timezone.now()
    for pool in IPPool.objects.filter(location=instance.location).order_by("id"):
        rested = now - timedelta(days=pool.quarantine_days)
        address = (
            IPAddress.objects.select_for_update(skip_locked=True)
            .filter(pool=pool)
            .filter(
                Q(state=IPAddress.State.FREE)
                | Q(state=IPAddress.State.QUARANTINED, released_at__lt=rested)
            )
            .order_by("id")
            .first()
        )
        if address is not None:
            address.state = IPAddress.State.ASSIGNED
            address.released_at = None
            address.save(update_fields=["state", "released_at"])
            return address
    raise NoCapacity(f"No free IPv4 address in {instance.location.code}.")


def ipv6_for(address: IPAddress) -> str:
    """The server's own /64 from the pool's IPv6 prefix, numbered like its IPv4 address."""
    if not address.pool.ipv6_prefix:
        return ""
    prefix = ipaddress.ip_network(address.pool.ipv6_prefix, strict=False)
    v4 = ipaddress.ip_network(address.pool.network, strict=False)
    index = int(ipaddress.ip_address(address.address)) - int(v4.network_address)
    if prefix.prefixlen > 64 or index >= 2 ** (64 - prefix.prefixlen):
        return ""
    subnet = int(prefix.network_address) + (index << 64)
    return f"{ipaddress.IPv6Address(subnet + 1)}/64"


def reserve(instance_id: int, *, is_vmid_free: VmidCheck) -> Instance:
    """Give the server a node, VMID and IP (idempotent: a reserved server keeps what it has).

    `is_vmid_free(cluster, vmid)` asks the chosen node's cluster whether PVE uses the VMID.
    """
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance_id)
        if instance.node_id and instance.vmid and instance.ipv4_id:
            return instance
        nodes = list(
            Node.objects.select_for_update()
            .filter(cluster__location=instance.location, state=Node.State.ACTIVE)
            .select_related("cluster")
            .order_by("id")
        )
        node = choose_node(instance, nodes)
        instance.node = node
        instance.cluster = node.cluster
        instance.vmid = allocate_vmid(node, is_vmid_free)
        instance.ipv4 = allocate_ipv4(instance)
        instance.ipv6 = ipv6_for(instance.ipv4)
        instance.save(
            update_fields=[
                "node",
                "cluster",
                "vmid",
                "ipv4",
                "ipv6",
                "updated_at",
            ]
        )
        return instance


def release(instance: Instance) -> None:
    """Hand the server's IP back to its pool, in quarantine (on termination)."""
    if instance.ipv4_id:
        IPAddress.objects.filter(pk=instance.ipv4_id).update(
            state=IPAddress.State.QUARANTINED, released_at=timezone.now()
        )


# --- Moving a server: a new size where it is, or another node of its cluster -----------------


def _describe(instance: Instance) -> str:
    return (
        f"{instance.vcpus} vCPU, {instance.memory_mib} MiB RAM and {instance.disk_gib} GiB "
        f"{instance.storage_class}"
    )


def reserve_move(
    instance_id: int,
    *,
    spec: dict | None = None,
    target_id: int | None = None,
    away: bool = False,
) -> Instance:
    """Room for the server: with `spec` (its new size) on its own node if that node has it,
    else (or `away` from its node) on the least loaded other active node of its cluster; with
    `target_id` on that node. A server that has to move gets its target as `node` and keeps its
    current node as `moving_from` until the migration ends, so it occupies capacity on both.
    Raises NoCapacity.
    """
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance_id)
        # The cluster's node rows in id order, as every placement locks them.
        nodes = list(
            Node.objects.select_for_update().filter(cluster=instance.cluster_id).order_by("id")
        )
        for name, value in (spec or {}).items():
            setattr(instance, name, value)
        current = instance.moving_from or instance.node
        if target_id is None:
            usage = node_usage(current, instance.storage_class, exclude=instance.pk)
            stay = not away and fits(usage, instance)[0]
            others = [n for n in nodes if n.pk != current.pk and n.state == Node.State.ACTIVE]
            target = current if stay else choose_node(instance, others)
        else:
            target = next((n for n in nodes if n.pk == target_id), None)
            problem = move_problem(instance, target, current=current)
            if problem:
                raise NoCapacity(problem)
        instance.node = target
        instance.moving_from = None if target.pk == current.pk else current
        instance.save(update_fields=[*(spec or {}), "node", "moving_from", "updated_at"])
        return instance


def move_problem(instance: Instance, target: Node | None, *, current: Node | None = None) -> str:
    """Why the server cannot move to `target` now ("" when it can)."""
    current = current or instance.node
    if target is None or target.cluster_id != instance.cluster_id:
        return f"{instance.hostname} can only move to another node of {instance.cluster}."
    if target.pk == current.pk:
        return f"{instance.hostname} already runs on {target.name}."
    if target.state != Node.State.ACTIVE:
        return f"{target.name} is {target.state}; servers cannot move to it."
    if not fits(node_usage(target, instance.storage_class, exclude=instance.pk), instance)[0]:
        return f"{target.name} has no room for {_describe(instance)}."
    return ""


def move_finished(instance_id: int, *, node: Node) -> None:
    """The migration ended with the server on `node` (where PVE says it is)."""
    Instance.objects.filter(pk=instance_id).update(node=node, moving_from=None)


def move_abandoned(instance_id: int) -> None:
    """The migration did not happen: the server stays on the node it was on."""
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance_id)
        if instance.moving_from_id:
            instance.node_id, instance.moving_from_id = instance.moving_from_id, None
            instance.save(update_fields=["node", "moving_from", "updated_at"])
