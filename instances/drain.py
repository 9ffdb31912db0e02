"""Draining a node: its servers are live-migrated away one at a time, to nodes with room.

A draining node takes no new servers (placement skips it). Each migration is an operation;
when one ends (well or not) the next server is asked for, and a beat task does the same in
case a message was lost. Staff can pause and resume a drain, and return the node to service,
which ends it. A server that cannot move (no room anywhere, or a migration that failed) is
listed on the node with the reason (operations/migrate.py) and skipped; the drain goes on
with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from accounts.models import User
from instances import services
from instances.models import Instance, InstanceEvent, InstanceOperation, Node
from instances.operations.migrate import MOVABLE

logger = logging.getLogger(__name__)
Kind = InstanceOperation.Kind


@dataclass(frozen=True)
class DrainProgress:
    left: int  # servers still on the node
    moving: Instance | None  # the one being moved now
    problems: dict[str, str]  # hostname: why it could not move


def drain_start(*, node: Node, actor_user: User | None) -> None:
    """No new servers on the node, and its servers move away."""
    Node.objects.filter(pk=node.pk).update(
        state=Node.State.DRAINING, drain_paused=False, drain_problems={}
    )
    logger.info("node %s: drain started by %s", node, actor_user)
    transaction.on_commit(lambda: drain_advance(node.pk))


def drain_pause(*, node: Node, paused: bool) -> None:
    """Pause the drain (the server being moved finishes its move), or resume it."""
    Node.objects.filter(pk=node.pk, state=Node.State.DRAINING).update(drain_paused=paused)
    if not paused:
        transaction.on_commit(lambda: drain_advance(node.pk))


def node_return_to_service(*, node: Node) -> None:
    """The node takes new servers again; a drain under way stops after its current move."""
    Node.objects.filter(pk=node.pk).update(
        state=Node.State.ACTIVE, drain_paused=False, drain_problems={}
    )


def _moving(node: Node) -> InstanceOperation | None:
    """The live migration away from the node, if one runs (queued, or under way)."""
    live = InstanceOperation.objects.filter(kind=Kind.MIGRATE, state__in=InstanceOperation.LIVE)
    return live.filter(Q(instance__node=node) | Q(instance__moving_from=node)).first()


def drain_advance(node_id: int) -> str:
    """Ask for the next migration away from a draining node, unless one runs; what it did."""
    with transaction.atomic():
        node = Node.objects.select_for_update().get(pk=node_id)
        if node.state != Node.State.DRAINING or node.drain_paused:
            return "not draining" if node.state != Node.State.DRAINING else "paused"
        if _moving(node) is not None:
            return "a server is moving"
        problems = dict(node.drain_problems)
        busy = InstanceOperation.objects.filter(state__in=InstanceOperation.LIVE).values(
            "instance_id"
        )
        candidates = (
            Instance.objects.filter(node=node, status__in=MOVABLE, moving_from=None)
            .exclude(pk__in=busy)
            .exclude(pk__in=[int(pk) for pk in problems])
            .order_by("pk")
        )
        for instance in candidates:
            try:
                services.instance_migrate(
                    instance=instance, target=None, actor=InstanceEvent.Actor.SYSTEM
                )
            except services.InstanceError as exc:
                problems[str(instance.pk)] = f"{instance.hostname}: {exc}"
                continue
            Node.objects.filter(pk=node.pk).update(drain_problems=problems)
            return f"moving {instance.hostname}"
        Node.objects.filter(pk=node.pk).update(drain_problems=problems)
    return "nothing left to move"


def drain_progress(node: Node) -> DrainProgress:
    left = Instance.objects.filter(node=node, status__in=MOVABLE).count()
    operation = _moving(node)
    return DrainProgress(
        left=left,
        moving=operation.instance if operation else None,
        problems={key: text for key, text in sorted(node.drain_problems.items())},
    )


def drain_all() -> list[str]:
    """Beat: every draining node moves on (a lost message never stops a drain)."""
    return [
        f"{node}: {drain_advance(node.pk)}"
        for node in Node.objects.filter(state=Node.State.DRAINING, drain_paused=False)
    ]
