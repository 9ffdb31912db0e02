"""Suspending, restoring and removing servers: what billing asks for when invoices go unpaid,
are paid, or a subscription ends (instances know nothing of money: the caller gives its reason,
which is what the customer reads), and what support can do from the admin.

Each is an operation (instances/operations/lifecycle.py). Asking twice is harmless: a server
already suspended (or being suspended) is left as it is, and so on.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from instances.consoles import consoles_end
from instances.models import ConsoleSession, Instance, InstanceOperation
from instances.services import OperationInProgress, operation_request, operation_resume
from instances.state import Actor, InstanceError, event_record

Kind = InstanceOperation.Kind
Status = Instance.Status


def _live(instance: Instance, kind: str) -> InstanceOperation | None:
    return instance.operations.filter(kind=kind, state__in=InstanceOperation.LIVE).first()


def _request(instance, kind, reason, actor, actor_user) -> InstanceOperation | None:
    """The operation, or the one of that kind already under way; None when there is nothing
    to do. Raises OperationInProgress while another kind of operation runs (try later)."""
    running = _live(instance, kind)
    if running is not None:
        return running
    return operation_request(
        instance_id=instance.pk,
        kind=kind,
        actor=actor,
        actor_user=actor_user,
        params={"reason": reason},
    )


def instance_suspend(
    *, instance: Instance, reason: str, actor: str = Actor.SYSTEM, actor_user: User | None = None
) -> InstanceOperation | None:
    """Shut the server down and block the customer's actions; `reason` is shown on its page."""
    instance.refresh_from_db()
    if instance.status in (Status.SUSPENDED, Status.TERMINATING, Status.TERMINATED):
        return None
    consoles_end(reason=ConsoleSession.End.SUSPENDED, instance=instance)
    return _request(instance, Kind.SUSPEND, reason, actor, actor_user)


def instance_unsuspend(
    *, instance: Instance, reason: str, actor: str = Actor.SYSTEM, actor_user: User | None = None
) -> InstanceOperation | None:
    """Start a suspended server again and lift the block."""
    instance.refresh_from_db()
    if instance.status != Status.SUSPENDED and _live(instance, Kind.SUSPEND) is None:
        return None
    if _live(instance, Kind.SUSPEND) is not None:
        raise OperationInProgress("The suspension is still under way; try again when it ended.")
    return _request(instance, Kind.UNSUSPEND, reason, actor, actor_user)


def instance_terminate(
    *, instance: Instance, reason: str, actor: str = Actor.SYSTEM, actor_user: User | None = None
) -> InstanceOperation | None:
    """Remove the server: the VM and its disks are destroyed, its IP rests in quarantine, its
    records stay."""
    instance.refresh_from_db()
    if instance.status in (Status.TERMINATED, Status.PENDING):
        return None
    if instance.status in (Status.QUEUED, Status.PROVISIONING):
        raise OperationInProgress("The server is still being built; try again when it is done.")
    return _request(instance, Kind.TERMINATE, reason, actor, actor_user)


def dedicated_task_done(*, instance: Instance, staff: User) -> None:
    """Support did the machine's part of a dedicated server's suspension, restore or removal."""
    with transaction.atomic():
        operation = (
            InstanceOperation.objects.select_for_update()
            .filter(instance=instance, state__in=InstanceOperation.LIVE, step="machine")
            .first()
        )
        if operation is None:
            raise InstanceError(f"No technicians' task is waiting on {instance.hostname}.")
        operation.params = {**operation.params, "done_by_staff": True}
        operation.save(update_fields=["params", "updated_at"])
        kind = operation.get_kind_display()
        event_record(
            instance,
            message=f"Our technicians did the machine's part of the {kind}.",
            actor=Actor.STAFF,
            actor_user=staff,
            operation=operation,
        )
        operation_resume(operation)
