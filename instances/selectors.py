"""Reads for the customer's server pages (database only: pages never wait on Proxmox)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from django.utils.timezone import template_localtime

from accounts.models import User
from instances import placement
from instances.models import (
    DedicatedServer,
    Family,
    Instance,
    InstanceOperation,
    InstanceTraffic,
    IPAddress,
    Location,
    Node,
    OSImage,
)
from instances.operations import KINDS
from instances.operations.pending import waiting_for_reboot


def servers_of(user: User) -> QuerySet[Instance]:
    """The customer's servers for the list, each with `live_kind`: the operation running on it,
    if any. Only the columns the list shows are read (a column left out costs a query per row,
    which tests/portal/test_query_counts.py catches)."""
    live = InstanceOperation.objects.filter(
        instance=OuterRef("pk"), state__in=InstanceOperation.LIVE
    )
    return (
        Instance.objects.filter(owner=user)
        .exclude(status=Instance.Status.TERMINATED)
        .select_related("location", "os_image", "ipv4")
        .only(
            *("hostname", "plan_name", "family", "status", "missing_since", "created_at"),
            *("location__name", "os_image__name", "ipv4__address"),
        )
        .annotate(live_kind=Subquery(live.values("kind")[:1]))
    )


def server_of(user: User, instance_id: int) -> Instance:
    """The customer's own server, or 404 (another customer's server does not exist for them),
    with what its pages show: location, OS image and address."""
    return get_object_or_404(
        Instance.objects.select_related("location", "os_image", "ipv4"),
        pk=instance_id,
        owner=user,
    )


def latest_operation(instance: Instance) -> InstanceOperation | None:
    """The server's newest operation: the live one, if any (there is at most one)."""
    return instance.operations.order_by("-created_at", "-id").first()


TIMELINE_LENGTH = 50


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the server's timeline, its time already written out: formatting 100
    datetimes in the template was most of the server page's rendering time."""

    datetime: str  # ISO 8601, as the `date:"c"` filter writes it (for <time datetime>)
    when: str  # as `date:"Y-m-d H:i:s"` writes it
    message: str
    actor: str


def timeline(instance: Instance) -> list[TimelineEntry]:
    """The newest entries of the server's timeline, newest first, in the current time zone."""
    rows = instance.events.order_by("-created_at", "-id").values_list(
        "created_at", "message", "actor"
    )[:TIMELINE_LENGTH]
    entries = []
    for created_at, message, actor in rows:
        at = template_localtime(created_at)
        entries.append(
            TimelineEntry(at.isoformat(), at.strftime("%Y-%m-%d %H:%M:%S"), message, actor)
        )
    return entries


@dataclass(frozen=True)
class ProgressStep:
    label: str
    state: str  # done | current | todo | failed


def progress(operation: InstanceOperation) -> list[ProgressStep]:
    """The operation's steps for the progress bar, from its kind's table of steps."""
    kind = KINDS[operation.kind]
    labels = kind.labels()
    if operation.state == InstanceOperation.State.SUCCEEDED:
        return [ProgressStep(label, "done") for label in labels]
    index = labels.index(kind.step(operation.step).label)
    failed = operation.state == InstanceOperation.State.FAILED
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


def percent_done(steps: list[ProgressStep]) -> int:
    done = sum(1 for step in steps if step.state == "done")
    return round(100 * done / len(steps)) if steps else 0


POWER_ACTIONS = ("start", "shutdown", "reboot", "stop", "reset")


@dataclass(frozen=True)
class Panel:
    """What the server page shows and offers, from the database alone."""

    # The operation whose steps the page shows: the live one, or the one that left the server
    # failed (it waits for support).
    operation: InstanceOperation | None
    # The newest operation if it failed without failing the server (e.g. a reboot): said once.
    failure: InstanceOperation | None
    progress: list[ProgressStep]
    percent: int
    actions: frozenset[str]  # operation kinds the customer may ask for now
    traffic: InstanceTraffic | None  # None too when not asked for (the status partial)
    traffic_allowance_bytes: int
    # What waits for a reboot, in words ("the vCPUs and the RAM"); "" when nothing does.
    waiting_for_reboot: str = ""
    # Changes whenever anything the page shows at the top changes: the page looks now and then
    # whether it should reload (an operation starting, a payment restoring the server).
    version: str = ""


def panel(instance: Instance, *, with_traffic: bool = True) -> Panel:
    latest = latest_operation(instance)
    failed = latest is not None and latest.state == InstanceOperation.State.FAILED
    shown = latest is not None and (
        latest.is_live or (failed and instance.status == Instance.Status.FAILED)
    )
    operation = latest if shown else None
    steps = progress(operation) if operation else []
    busy = operation is not None and operation.is_live
    actions = frozenset()
    if not busy and instance.family != Family.DEDICATED and instance.missing_since is None:
        actions = frozenset(
            name
            for name in (*POWER_ACTIONS, "reinstall", "password", "rename", "resize")
            if instance.status in KINDS[name].allowed_from
        )
    traffic = instance.traffic.order_by("-period_start").first() if with_traffic else None
    return Panel(
        operation=operation,
        failure=latest if failed and not shown else None,
        progress=steps,
        percent=percent_done(steps),
        actions=actions,
        traffic=traffic,
        traffic_allowance_bytes=instance.traffic_tb * 10**12,
        waiting_for_reboot=waiting_for_reboot(instance.pending_changes),
        version=f"{instance.status}.{latest.pk if latest else 0}.{latest.state if latest else ''}"
        f".{instance.updated_at.timestamp():.0f}",
    )


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

    The order page uses it to say "sold out"; placement decides for real under locks when the
    build runs (and waits with a reason if the room went meanwhile).
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
