"""Snapshots of a server: what the customer asks for, and what the server page shows of them.

Taking, rolling back to and deleting a snapshot are operations (operations/snapshots.py); the
plan says how many a server may keep (`Instance.snapshots_max`, from billing's spec).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from instances.models import Family, Instance, InstanceOperation, InstanceSnapshot
from instances.operations import KINDS
from instances.services import operation_request
from instances.state import InstanceError, event_record

Kind = InstanceOperation.Kind
State = InstanceSnapshot.State
LABEL_MAX = 40


def snapshots_of(instance: Instance) -> list[InstanceSnapshot]:
    """The server's snapshots, newest first (those being taken or deleted too)."""
    return list(instance.snapshots.filter(state__in=InstanceSnapshot.SHOWN))


@dataclass(frozen=True)
class SnapshotsPanel:
    """The server page's Snapshots card (database only)."""

    snapshots: list[InstanceSnapshot]
    allowed: int  # the plan's number
    can_change: bool  # nothing else runs and the server may take, roll back or delete one now

    @property
    def full(self) -> bool:
        return len(self.snapshots) >= self.allowed


def can_change(instance: Instance, operation: InstanceOperation | None, kind: str) -> bool:
    """Whether the customer may ask for `kind` now (no operation runs, the server is there)."""
    return (
        (operation is None or not operation.is_live)
        and instance.status in KINDS[kind].allowed_from
        and instance.missing_since is None
    )


def snapshots_panel(
    instance: Instance, operation: InstanceOperation | None
) -> SnapshotsPanel | None:
    """None for a server without a VM (a dedicated one, one not built yet)."""
    if instance.family == Family.DEDICATED or instance.vmid is None:
        return None
    return SnapshotsPanel(
        snapshots=snapshots_of(instance),
        allowed=instance.snapshots_max,
        can_change=can_change(instance, operation, Kind.SNAPSHOT),
    )


def _check_allowed(instance: Instance) -> None:
    if instance.family == Family.DEDICATED:
        raise InstanceError("A dedicated server has no snapshots; our technicians can help.")
    if not instance.snapshots_max:
        raise InstanceError(f"Snapshots are not included in {instance.plan_name or 'the plan'}.")


def snapshot_take(
    *, instance: Instance, label: str, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Snapshot the server's disks, named `label` (up to the plan's number of snapshots)."""
    label = " ".join((label or "").split())
    if not label:
        raise InstanceError("Name the snapshot (up to 40 characters), e.g. before-upgrade.")
    if len(label) > LABEL_MAX:
        raise InstanceError(f"A snapshot's name is at most {LABEL_MAX} characters.")
    _check_allowed(instance)
    with transaction.atomic():
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        count = locked.snapshots.filter(state__in=InstanceSnapshot.SHOWN).count()
        if count >= locked.snapshots_max:
            raise InstanceError(
                f"{locked.hostname} has {count} snapshots, as many as its plan includes; "
                "delete one to take another."
            )
        snapshot = InstanceSnapshot.objects.create(
            instance=locked, label=label, name=f"p{timezone.now():%Y%m%d%H%M%S%f}"
        )
        operation = operation_request(
            instance_id=locked.pk,
            kind=Kind.SNAPSHOT,
            actor=actor,
            actor_user=actor_user,
            params={"snapshot_id": snapshot.pk},
        )
        event_record(
            locked,
            message=f"Snapshot “{label}” requested.",
            actor=actor,
            actor_user=actor_user,
            operation=operation,
        )
    return operation


def _ready(instance: Instance, snapshot_id) -> InstanceSnapshot:
    snapshot = instance.snapshots.filter(pk=_id(snapshot_id), state=State.READY).first()
    if snapshot is None:
        raise InstanceError("That snapshot is not there (any more); pick one from the list.")
    return snapshot


def _id(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def snapshot_rollback(
    *, instance: Instance, snapshot_id, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Put the server back to the snapshot: everything written since is lost; it is stopped
    and, if it was running, started again."""
    snapshot = _ready(instance, snapshot_id)
    with transaction.atomic():
        operation = operation_request(
            instance_id=instance.pk,
            kind=Kind.ROLLBACK,
            actor=actor,
            actor_user=actor_user,
            params={
                "snapshot_id": snapshot.pk,
                "was_running": instance.status == Instance.Status.RUNNING,
            },
        )
        event_record(
            instance,
            message=f"Rollback to the snapshot “{snapshot.label}” requested.",
            actor=actor,
            actor_user=actor_user,
            operation=operation,
        )
    return operation


def snapshot_delete(
    *, instance: Instance, snapshot_id, actor: str, actor_user: User | None
) -> InstanceOperation:
    snapshot = _ready(instance, snapshot_id)
    with transaction.atomic():
        operation = operation_request(
            instance_id=instance.pk,
            kind=Kind.SNAPSHOT_DELETE,
            actor=actor,
            actor_user=actor_user,
            params={"snapshot_id": snapshot.pk},
        )
        InstanceSnapshot.objects.filter(pk=snapshot.pk).update(state=State.DELETING)
        event_record(
            instance,
            message=f"Deletion of the snapshot “{snapshot.label}” requested.",
            actor=actor,
            actor_user=actor_user,
            operation=operation,
        )
    return operation
