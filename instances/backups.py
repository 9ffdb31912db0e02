"""Backups of a server: "back up now", restoring, the daily schedule, and what the server page
shows of them.

The plan says whether backups are included and how many are kept (`Instance.backups_kept`,
from billing's spec); the cluster says where they go (`Cluster.backup_storage`). Beat starts
the scheduled ones inside BACKUP_WINDOW, no more per node than BACKUP_MAX_PER_NODE at once,
one a day per server; each is an operation (operations/backups.py), so a server never has two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from accounts.models import User
from instances.models import Cluster, Family, Instance, InstanceBackup, InstanceOperation, Node
from instances.services import operation_request
from instances.snapshots import can_change
from instances.state import Actor, InstanceError, event_record

logger = logging.getLogger(__name__)
Kind = InstanceOperation.Kind
State = InstanceBackup.State
Trigger = InstanceBackup.Trigger
Status = Instance.Status


def backups_of(instance: Instance) -> list[InstanceBackup]:
    """The server's backups, newest first: made, being made, and the failed attempts."""
    return list(instance.backups.filter(state__in=InstanceBackup.SHOWN))


@dataclass(frozen=True)
class BackupsPanel:
    """The server page's Backups card (database only)."""

    backups: list[InstanceBackup]
    kept: int  # the plan's number; 0: not included
    offered: bool  # the server's cluster has a backup storage
    window: str  # when the scheduled ones run, in words
    can_change: bool  # nothing else runs: "back up now" and restore are possible


def backups_panel(instance: Instance, operation: InstanceOperation | None) -> BackupsPanel | None:
    """None for a server without a VM (a dedicated one, one not built yet)."""
    if instance.family == Family.DEDICATED or instance.vmid is None:
        return None
    offered = bool(instance.backups_kept) and bool(
        Cluster.objects.filter(pk=instance.cluster_id)
        .values_list("backup_storage", flat=True)
        .first()
    )
    return BackupsPanel(
        backups=backups_of(instance),
        kept=instance.backups_kept,
        offered=offered,
        window=str(Window.from_settings()),
        can_change=can_change(instance, operation, Kind.BACKUP),
    )


def _check_allowed(instance: Instance) -> None:
    if instance.family == Family.DEDICATED:
        raise InstanceError("Backups of a dedicated server are arranged with our technicians.")
    if not instance.backups_kept:
        raise InstanceError(f"Backups are not included in {instance.plan_name or 'the plan'}.")
    storage = Cluster.objects.filter(pk=instance.cluster_id).values_list(
        "backup_storage", flat=True
    )
    if not storage.first():
        raise InstanceError(f"Backups are not offered in {instance.location.name} yet.")


def backup_request(
    *, instance: Instance, trigger: str, actor: str, actor_user: User | None = None
) -> InstanceOperation:
    """Back the server up (the oldest backups beyond the plan's number go once it is made)."""
    _check_allowed(instance)
    with transaction.atomic():
        backup = InstanceBackup.objects.create(
            instance=instance, trigger=trigger, os_image_id=instance.os_image_id
        )
        operation = operation_request(
            instance_id=instance.pk,
            kind=Kind.BACKUP,
            actor=actor,
            actor_user=actor_user,
            params={"backup_id": backup.pk},
        )
        if trigger == Trigger.MANUAL:
            event_record(
                instance,
                message="Backup requested.",
                actor=actor,
                actor_user=actor_user,
                operation=operation,
            )
    return operation


def backup_now(*, instance: Instance, actor: str, actor_user: User | None) -> InstanceOperation:
    return backup_request(
        instance=instance, trigger=Trigger.MANUAL, actor=actor, actor_user=actor_user
    )


def backup_restore(
    *, instance: Instance, backup_id, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Replace the server's disks by the backup: everything written since and its snapshots
    are lost; it is stopped and, if it was running, started again."""
    try:
        backup = instance.backups.filter(pk=int(backup_id), state=State.READY).first()
    except (TypeError, ValueError):
        backup = None
    if backup is None:
        raise InstanceError("That backup is not there (any more); pick one from the list.")
    with transaction.atomic():
        operation = operation_request(
            instance_id=instance.pk,
            kind=Kind.RESTORE,
            actor=actor,
            actor_user=actor_user,
            params={"backup_id": backup.pk, "was_running": instance.status == Status.RUNNING},
        )
        made = timezone.localtime(backup.created_at)
        event_record(
            instance,
            message=f"Restore from the backup of {made:%Y-%m-%d %H:%M} requested.",
            actor=actor,
            actor_user=actor_user,
            operation=operation,
        )
    return operation


# --- The schedule ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """When scheduled backups may start: from `start` to `end` (it may pass midnight) in
    `zone`; start == end means at any time."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def from_settings(cls) -> Window:
        start, _, end = settings.BACKUP_WINDOW.partition("-")
        return cls(
            time.fromisoformat(start), time.fromisoformat(end), ZoneInfo(settings.BACKUP_TIME_ZONE)
        )

    def opened(self, now: datetime) -> datetime | None:
        """When the window `now` is in opened, or None when `now` is outside it."""
        local = now.astimezone(self.zone)
        if self.start == self.end:
            return datetime.combine(local.date(), time(), self.zone)
        opened = datetime.combine(local.date(), self.start, self.zone)
        if self.start < self.end:
            return opened if self.start <= local.time() < self.end else None
        if local.time() >= self.start:
            return opened
        if local.time() < self.end:  # after midnight: it opened yesterday
            return opened - timedelta(days=1)
        return None

    def __str__(self) -> str:
        if self.start == self.end:
            return "at any time of day"
        return f"between {self.start:%H:%M} and {self.end:%H:%M} ({self.zone.key})"


def _due(opened: datetime):
    """Servers whose plan includes backups and that had no scheduled one since `opened`."""
    done = InstanceBackup.objects.filter(
        instance=OuterRef("pk"), trigger=Trigger.SCHEDULED, created_at__gte=opened
    )
    return (
        Instance.objects.filter(
            status__in=(Status.RUNNING, Status.STOPPED),
            backups_kept__gt=0,
            node__isnull=False,
            vmid__isnull=False,
            missing_since__isnull=True,
        )
        .exclude(family=Family.DEDICATED)
        .exclude(cluster__backup_storage="")
        .exclude(Exists(done))
        .annotate(last=Max("backups__created_at"))
        .order_by("last", "pk")  # never backed up first, then the longest ago
        .select_related("location")
    )


def backups_start_due(now: datetime | None = None) -> int:
    """Beat: start the scheduled backups due now, as many per node as it has free slots (the
    rest wait for a later run). Returns how many started."""
    now = now or timezone.now()
    opened = Window.from_settings().opened(now)
    if opened is None:
        return 0
    by_node: dict[int, list[Instance]] = {}
    for instance in _due(opened):
        by_node.setdefault(instance.node_id, []).append(instance)
    started = 0
    for node_id, instances in sorted(by_node.items()):
        started += _start_on_node(node_id, instances)
    return started


def _start_on_node(node_id: int, instances: list[Instance]) -> int:
    started = 0
    with transaction.atomic():
        Node.objects.select_for_update().get(pk=node_id)  # as a backup claiming its slot does
        running = InstanceOperation.objects.filter(
            kind=Kind.BACKUP, state__in=InstanceOperation.LIVE, instance__node_id=node_id
        ).count()
        free = settings.BACKUP_MAX_PER_NODE - running
        for instance in instances:
            if started >= free:
                break
            try:
                backup_request(instance=instance, trigger=Trigger.SCHEDULED, actor=Actor.SYSTEM)
            except InstanceError as exc:  # busy with another operation: a later run tries
                logger.info("scheduled backup of %s not started: %s", instance.pk, exc)
                continue
            started += 1
    return started
