"""What PVE says about the servers, brought into the portal by beat: power state, node, traffic.

One `/cluster/resources?type=vm` per cluster gives every VM's status, node and network byte
counters. A server stopped from inside the guest shows as stopped at the next run; a VM missing
from its cluster is flagged for staff, never shown as running. Traffic is added up from PVE's
counters (bytes since the VM started), not from rrddata (which keeps averages only): each run
adds what the counters grew by, or the whole counter when the VM restarted meanwhile.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from instances.models import Cluster, Instance, InstanceOperation, InstanceTraffic, Node
from instances.proxmox import ProxmoxError, PveClient
from instances.state import TransitionConflict, event_record, instance_transition

logger = logging.getLogger(__name__)
Status = Instance.Status
# Servers whose VM should exist on the cluster; their power state follows PVE's.
WATCHED = (Status.RUNNING, Status.STOPPED, Status.SUSPENDED)


@dataclass
class SyncReport:
    seen: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def traffic_period(instance: Instance, now: datetime) -> tuple[datetime, datetime]:
    """The month of traffic `now` falls in: from the server's creation day to the same day of
    the next month (the 31st becomes the month's last day), as a monthly subscription renews."""
    anchor = instance.created_at

    def on(year: int, month: int) -> datetime:
        day = min(anchor.day, calendar.monthrange(year, month)[1])
        return anchor.replace(year=year, month=month, day=day)

    start = on(now.year, now.month)
    if start > now:
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        start = on(year, month)
    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    return start, on(year, month)


def cluster_sync(cluster: Cluster, *, client_factory=PveClient.for_cluster, now=None) -> SyncReport:
    """Bring one cluster's VM states into the portal (one API call)."""
    now = now or timezone.now()
    report = SyncReport()
    resources = client_factory(cluster).cluster_resources("vm")
    vms = {int(item["vmid"]): item for item in resources if item.get("type") == "qemu"}
    nodes = {node.name: node for node in Node.objects.filter(cluster=cluster)}
    busy = set(
        InstanceOperation.objects.filter(
            instance__cluster=cluster, state__in=InstanceOperation.LIVE
        ).values_list("instance_id", flat=True)
    )
    servers = Instance.objects.filter(cluster=cluster, status__in=WATCHED, vmid__isnull=False)
    for instance in servers.select_related("node"):
        report.seen += 1
        vm = vms.get(instance.vmid)
        if vm is None:
            if _missing(instance, now):
                report.missing.append(instance.hostname)
            continue
        _found(instance, vm, nodes, now, moving=instance.pk in busy)
        _count_traffic(instance, vm, now)
        if instance.pk not in busy and _follow_power(instance, vm):
            report.changed.append(instance.hostname)
    return report


def _missing(instance: Instance, now) -> bool:
    if instance.missing_since:
        return False
    Instance.objects.filter(pk=instance.pk).update(missing_since=now)
    event_record(
        instance,
        message="We cannot see this server on its host right now. Support has been told.",
        detail=f"VMID {instance.vmid} is not in /cluster/resources of {instance.cluster}.",
    )
    logger.warning("instance %s: VM %s missing on its cluster", instance.pk, instance.vmid)
    return True


def _found(instance: Instance, vm: dict, nodes: dict[str, Node], now, *, moving: bool) -> None:
    fields: dict = {"observed_at": now}
    if instance.missing_since:
        fields["missing_since"] = None
        event_record(instance, message="The server is visible on its host again.")
    node = nodes.get(vm.get("node"))
    # While an operation runs (a migration, say) it keeps the node up to date itself.
    if node is not None and node.pk != instance.node_id and not moving:
        fields["node"] = node
        event_record(
            instance,
            message="The server now runs on another host.",
            detail=f"Seen on {node.name}, recorded on {instance.node}.",
        )
    Instance.objects.filter(pk=instance.pk).update(**fields)


def _follow_power(instance: Instance, vm: dict) -> bool:
    """The portal's running/stopped follows PVE's (a suspended server stays suspended)."""
    state = vm.get("status")
    if instance.status == Status.RUNNING and state == "stopped":
        to, reason = Status.STOPPED, "The server was stopped from inside (or on its host)."
    elif instance.status == Status.STOPPED and state == "running":
        to, reason = Status.RUNNING, "The server was started outside the portal."
    else:
        return False
    try:
        instance_transition(instance_id=instance.pk, to=to, reason=reason, expect={instance.status})
    except TransitionConflict:
        return False  # changed meanwhile; the next run looks again
    return True


def _count_traffic(instance: Instance, vm: dict, now) -> None:
    net_in, net_out = int(vm.get("netin") or 0), int(vm.get("netout") or 0)
    uptime = int(vm.get("uptime") or 0)
    restarted = uptime < instance.uptime_seen or net_in < instance.net_in_seen
    restarted = restarted or net_out < instance.net_out_seen
    grew_in = net_in if restarted else net_in - instance.net_in_seen
    grew_out = net_out if restarted else net_out - instance.net_out_seen
    start, end = traffic_period(instance, now)
    with transaction.atomic():
        row, _ = InstanceTraffic.objects.get_or_create(
            instance=instance, period_start=start, defaults={"period_end": end}
        )
        if grew_in or grew_out:
            InstanceTraffic.objects.filter(pk=row.pk).update(
                bytes_in=F("bytes_in") + grew_in, bytes_out=F("bytes_out") + grew_out
            )
        Instance.objects.filter(pk=instance.pk).update(
            net_in_seen=net_in, net_out_seen=net_out, uptime_seen=uptime
        )


def sync_all() -> SyncReport:
    """Every cluster that has servers; one cluster's trouble does not stop the others."""
    total = SyncReport()
    for cluster in Cluster.objects.filter(instances__status__in=WATCHED).distinct():
        try:
            report = cluster_sync(cluster)
        except ProxmoxError as exc:
            logger.warning("status sync of %s failed: %s", cluster, exc)
            continue
        total.seen += report.seen
        total.changed += report.changed
        total.missing += report.missing
    return total
