"""Thin Celery tasks: take ids, call the operation engine, re-queue themselves while PVE works."""

from __future__ import annotations

import logging

from celery import shared_task

from instances import backups, drain, firewall_check, services, sync, usage
from instances.models import Cluster, Instance
from instances.operations import engine
from instances.proxmox import ProxmoxError, PveClient

logger = logging.getLogger(__name__)


@shared_task(name="instances.advance_operation", ignore_result=True)
def advance_operation(operation_id: int, chain: str = "") -> None:
    delay = engine.advance(operation_id, chain=chain)
    if delay is not None:
        advance_operation.apply_async((operation_id, chain), countdown=delay)


@shared_task(name="instances.reap_operations", ignore_result=True)
def reap_operations() -> None:
    for operation_id, chain in engine.reap():
        advance_operation.delay(operation_id, chain)


@shared_task(name="instances.sync_status", ignore_result=True)
def sync_status(cluster_id: int | None = None) -> None:
    """Power state, node and traffic of every server (or of one cluster's) from PVE."""
    if cluster_id is None:
        sync.sync_all()
    else:
        sync.cluster_sync(Cluster.objects.get(pk=cluster_id))


@shared_task(name="instances.refresh_usage", ignore_result=True)
def refresh_usage(instance_id: int, timeframe: str) -> None:
    """Fetch a server's usage samples from PVE into the cache for its graphs."""
    instance = Instance.objects.select_related("cluster", "node").get(pk=instance_id)
    if instance.node_id is None or instance.vmid is None:
        return
    try:
        samples = PveClient.for_cluster(instance.cluster).rrd_data(
            instance.node.name, instance.vmid, timeframe=timeframe
        )
    except ProxmoxError as exc:
        logger.warning("usage of instance %s: %s", instance_id, exc)
        samples = []
    usage.store(instance_id, timeframe, samples)


@shared_task(name="instances.drain_node", ignore_result=True)
def drain_node(node_id: int) -> None:
    """The next server of a draining node moves (when the last move has ended)."""
    logger.info("drain of node %s: %s", node_id, drain.drain_advance(node_id))


@shared_task(name="instances.drain_nodes", ignore_result=True)
def drain_nodes() -> None:
    """Beat: every draining node moves on, in case a message was lost."""
    for line in drain.drain_all():
        logger.info("drain: %s", line)


@shared_task(name="instances.check_firewalls", ignore_result=True)
def check_firewalls() -> None:
    """Beat: every server's firewall on PVE equals the portal's, or is applied again."""
    for cluster, report in firewall_check.check_all().items():
        if report.repaired or report.unreadable:
            logger.warning(
                "firewalls on %s: repaired %s, unreadable %s",
                cluster,
                report.repaired,
                report.unreadable,
            )


@shared_task(name="instances.start_backups", ignore_result=True)
def start_backups() -> None:
    """Beat: the scheduled backups due now, within the window and the nodes' limits."""
    started = backups.backups_start_due()
    if started:
        logger.info("scheduled backups started: %s", started)


@shared_task(name="instances.planned_reboots", ignore_result=True)
def planned_reboots() -> None:
    """Beat: reboots customers planned for now or earlier (they apply pending changes)."""
    services.planned_reboots_start()
