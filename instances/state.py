"""A server's status and its timeline: the one function that changes the status, and the log.

The bottom of the instances app's writes: operations, services and the admin all change a
server's status through `instance_transition` (row lock, allowed transitions, conditional
update, one event row), and write its timeline through `event_record`.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from instances.models import Instance, InstanceEvent, InstanceOperation

logger = logging.getLogger(__name__)
Status = Instance.Status
Actor = InstanceEvent.Actor


class InstanceError(Exception):
    """A request about a server that cannot be done; the message is for the person who asked."""


class TransitionConflict(InstanceError):
    """The server was not in a state this change starts from (someone else changed it first)."""


# Which status may follow which (DESIGN.md "Instance states").
ALLOWED = {
    Status.PENDING: {Status.QUEUED, Status.TERMINATED},
    Status.QUEUED: {Status.PROVISIONING, Status.FAILED, Status.TERMINATING},
    Status.PROVISIONING: {Status.RUNNING, Status.FAILED, Status.QUEUED, Status.TERMINATING},
    # A reinstall builds the server again: provisioning until it runs.
    Status.RUNNING: {
        Status.STOPPED,
        Status.PROVISIONING,
        Status.SUSPENDED,
        Status.TERMINATING,
        Status.FAILED,
    },
    Status.STOPPED: {
        Status.RUNNING,
        Status.PROVISIONING,
        Status.SUSPENDED,
        Status.TERMINATING,
        Status.FAILED,
    },
    Status.SUSPENDED: {Status.RUNNING, Status.STOPPED, Status.TERMINATING},
    Status.FAILED: {
        Status.QUEUED,
        Status.PROVISIONING,
        Status.TERMINATING,
        Status.RUNNING,
        Status.STOPPED,
    },
    Status.TERMINATING: {Status.TERMINATED, Status.FAILED},
    Status.TERMINATED: set(),
}


def event_record(
    instance: Instance,
    *,
    message: str,
    detail: str = "",
    step: str = "",
    old_status: str = "",
    new_status: str = "",
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
    operation: InstanceOperation | None = None,
) -> InstanceEvent:
    """Add an entry to the server's timeline (`detail` is for staff only)."""
    return InstanceEvent.objects.create(
        instance=instance,
        operation=operation,
        message=message,
        detail=detail,
        step=step,
        old_status=old_status,
        new_status=new_status,
        actor=actor,
        actor_user=actor_user,
    )


def instance_transition(
    *,
    instance_id: int,
    to: str,
    reason: str,
    detail: str = "",
    expect: set[str] | None = None,
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
    operation: InstanceOperation | None = None,
    **fields,
) -> Instance:
    """Move a server to status `to` (conditional update) and log it; raises TransitionConflict."""
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance_id)
        old = instance.status
        allowed_from = (
            expect if expect is not None else {s for s, nxt in ALLOWED.items() if to in nxt}
        )
        if old not in allowed_from or to not in ALLOWED[old]:
            raise TransitionConflict(f"Server {instance.hostname} is {old}; it cannot become {to}.")
        updated = Instance.objects.filter(pk=instance_id, status=old).update(
            status=to, updated_at=timezone.now(), **fields
        )
        if not updated:  # pragma: no cover - the row lock makes this unreachable
            raise TransitionConflict(f"Server {instance.hostname} changed while we looked.")
        instance.refresh_from_db()
        event_record(
            instance,
            message=reason,
            detail=detail,
            step=operation.step if operation else "",
            old_status=old,
            new_status=to,
            actor=actor,
            actor_user=actor_user,
            operation=operation,
        )
    logger.info("instance %s: %s -> %s (%s)", instance_id, old, to, reason)
    return instance
