"""Reads for the customer's server pages (database only: pages never wait on Proxmox)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import User
from instances import placement
from instances.models import DedicatedServer, Family, Instance, IPAddress, Location, Node, OSImage
from instances.provisioning import STEP_LABELS, STEPS


def servers_of(user: User) -> QuerySet[Instance]:
    return (
        Instance.objects.filter(owner=user)
        .exclude(status=Instance.Status.TERMINATED)
        .select_related("location", "os_image", "ipv4")
    )


def server_of(user: User, instance_id: int) -> Instance:
    """The customer's own server, or 404 (another customer's server does not exist for them)."""
    return get_object_or_404(
        Instance.objects.select_related("location", "os_image", "ipv4__pool", "node"),
        pk=instance_id,
        owner=user,
    )


@dataclass(frozen=True)
class ProgressStep:
    label: str
    state: str  # done | current | todo | failed


DEDICATED_LABELS = {"reserve": "Reserving a machine", "install": "Installing", "ready": "Ready"}


def build_progress(instance: Instance) -> list[ProgressStep]:
    """The named build steps for the progress bar (consecutive steps of one label merged)."""
    if instance.family == Family.DEDICATED:
        step_labels, steps = DEDICATED_LABELS, list(DEDICATED_LABELS)
    else:
        step_labels, steps = STEP_LABELS, STEPS
    labels: list[str] = []
    for step in steps:
        if step_labels[step] not in labels:
            labels.append(step_labels[step])
    if instance.status in (Instance.Status.RUNNING, Instance.Status.STOPPED):
        return [ProgressStep(label, "done") for label in labels]
    current = step_labels.get(instance.build_step or "reserve", labels[0])
    if instance.status == Instance.Status.PENDING:
        current = None
    index = labels.index(current) if current in labels else -1
    failed = instance.status == Instance.Status.FAILED
    result = []
    for i, label in enumerate(labels):
        if i < index:
            state = "done"
        elif i == index:
            state = "failed" if failed else "current"
        else:
            state = "todo"
        result.append(ProgressStep(label, state))
    return result


def percent_done(progress: list[ProgressStep]) -> int:
    done = sum(1 for step in progress if step.state == "done")
    return round(100 * done / len(progress)) if progress else 0


def orderable_locations() -> QuerySet[Location]:
    return Location.objects.filter(active=True).order_by("name")


def images_for_location(location: Location) -> QuerySet[OSImage]:
    """Active OS images with a template in one of the location's clusters."""
    return (
        OSImage.objects.filter(active=True, templates__cluster__location=location)
        .distinct()
        .order_by("display_order", "name")
    )


def can_take(location: Location, spec) -> bool:
    """Whether the location has room for a server of `spec` right now (advisory, no locks).

    The order page uses it to say "sold out"; placement decides for real under locks after
    payment (and queues the build with a reason if the room went meanwhile).
    """
    has_address = IPAddress.objects.filter(
        pool__location=location, state=IPAddress.State.FREE
    ).exists()
    if not has_address:
        return False
    if spec.family == Family.DEDICATED:
        return DedicatedServer.objects.filter(
            location=location,
            state=DedicatedServer.State.AVAILABLE,
            cores__gte=spec.vcpus,
            memory_gib__gte=spec.memory_mib // 1024,
        ).exists()
    probe = Instance(
        location=location,
        vcpus=spec.vcpus,
        dedicated_cores=spec.dedicated_cores,
        memory_mib=spec.memory_mib,
        disk_gib=spec.disk_gib,
        storage_class=spec.storage_class,
    )
    nodes = Node.objects.filter(cluster__location=location, state=Node.State.ACTIVE)
    return any(
        placement.fits(placement.node_usage(node, spec.storage_class), probe)[0] for node in nodes
    )
