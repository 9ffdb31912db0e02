"""Beat's look at every server's firewall on PVE: it must equal the portal's (anti-spoofing
included), and where it does not, the portal's is applied again and staff can see what differed.

A server with an operation under way is left for the next look (that operation writes the
firewall itself, or the server is moving). What differed is kept on the server's Firewall
(`drift`, for staff in the admin) and said on its timeline; the repair is a `firewall`
operation like any other, so a repair that fails shows as a failed operation for staff.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from instances import services
from instances.models import Cluster, Family, Firewall, Instance, InstanceOperation
from instances.operations import firewall as pve_firewall
from instances.operations.limits import nic_filtered
from instances.proxmox import ProxmoxError, PveClient
from instances.state import Actor

logger = logging.getLogger(__name__)
Status = Instance.Status
CHECKED = (Status.RUNNING, Status.STOPPED, Status.SUSPENDED)


@dataclass
class CheckReport:
    checked: int = 0
    repaired: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def cluster_check(cluster: Cluster, *, client_factory=PveClient.for_cluster) -> CheckReport:
    """Compare each server's firewall on the cluster with the portal's; repair what differs."""
    report = CheckReport()
    pve = client_factory(cluster)
    busy = set(
        InstanceOperation.objects.filter(
            instance__cluster=cluster, state__in=InstanceOperation.LIVE
        ).values_list("instance_id", flat=True)
    )
    servers = (
        Instance.objects.filter(
            cluster=cluster, status__in=CHECKED, vmid__isnull=False, node__isnull=False
        )
        .exclude(family=Family.DEDICATED)
        .select_related("node", "ipv4")
    )
    for instance in servers:
        if instance.pk in busy:
            continue
        report.checked += 1
        try:
            differences = server_check(pve, instance)
        except ProxmoxError as exc:
            logger.warning("firewall of %s not readable: %s", instance, exc)
            report.unreadable.append(instance.hostname)
            continue
        if differences:
            report.repaired.append(instance.hostname)
    return report


def server_check(pve, instance: Instance) -> list[str]:
    """What differs between the server's firewall on PVE and the portal's ([] when equal); a
    difference queues the repair (and is kept for staff once the repair is under way)."""
    firewall = Firewall.objects.filter(instance=instance).first()
    node, vmid = instance.node.name, instance.vmid
    target = pve_firewall.wanted(instance, pve_firewall.snapshot(firewall))
    actual, _raw = pve_firewall.read(pve, node, vmid)
    differences = target.differences(actual)
    nic = nic_filtered(pve.vm_config(node, vmid, current=True))
    fields: dict = {"checked_at": timezone.now(), "nic_filtered": nic}
    if differences and _repair(instance, differences):
        fields["drift"] = "; ".join(differences)
    firewall, _ = Firewall.objects.get_or_create(instance=instance)
    Firewall.objects.filter(pk=firewall.pk).update(**fields)
    return differences


def _repair(instance: Instance, differences: list[str]) -> bool:
    """Queue the `firewall` operation that applies the portal's firewall again (False: another
    operation began meanwhile, which the next look waits for)."""
    detail = "PVE differed from the portal: " + "; ".join(differences)
    try:
        services.operation_request(
            instance_id=instance.pk,
            kind=InstanceOperation.Kind.FIREWALL,
            actor=Actor.SYSTEM,
            params={
                "done": "The firewall on the host differed from your settings; they are in "
                "force again.",
                "detail": detail,
            },
        )
    except services.InstanceError as exc:
        logger.info("firewall repair of %s waits: %s", instance, exc)
        return False
    logger.warning("firewall of %s repaired: %s", instance, detail)
    return True


def check_all(*, client_factory=PveClient.for_cluster) -> dict[str, CheckReport]:
    """Every cluster's servers; a cluster that cannot be reached is skipped until next time."""
    reports = {}
    for cluster in Cluster.objects.all():
        try:
            reports[cluster.name] = cluster_check(cluster, client_factory=client_factory)
        except ProxmoxError as exc:
            logger.warning("firewall check of %s: %s", cluster, exc)
    return reports
