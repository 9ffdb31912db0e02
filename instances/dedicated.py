"""Dedicated servers: staff install the machine the installation operation reserved.

The operation (instances/operations/install.py) waits at its install step until staff mark the
machine ready here; marking it ready moves the operation on, which hands the server over.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from instances.models import DedicatedServer, InstanceEvent, InstanceOperation
from instances.services import operation_resume
from instances.state import TransitionConflict, event_record

Actor = InstanceEvent.Actor


def mark_installing(*, instance_id: int, staff: User) -> None:
    with transaction.atomic():
        server = DedicatedServer.objects.select_for_update().get(instance_id=instance_id)
        if server.state != DedicatedServer.State.ASSIGNED:
            raise TransitionConflict(f"{server.asset_tag} is {server.state}, not assigned.")
        server.state = DedicatedServer.State.INSTALLING
        server.save(update_fields=["state"])
        event_record(
            server.instance,
            step="install",
            message=f"Installing {server.instance.os_image.name} on {server.asset_tag}.",
            actor=Actor.STAFF,
            actor_user=staff,
        )


def mark_ready(*, instance_id: int, staff: User) -> None:
    """Staff finished the install: the operation hands the server to the customer."""
    with transaction.atomic():
        server = DedicatedServer.objects.select_for_update().get(instance_id=instance_id)
        if server.state not in (DedicatedServer.State.ASSIGNED, DedicatedServer.State.INSTALLING):
            raise TransitionConflict(f"{server.asset_tag} is {server.state}.")
        server.state = DedicatedServer.State.READY
        server.save(update_fields=["state"])
        event_record(
            server.instance,
            step="install",
            message=f"{server.asset_tag} is installed.",
            actor=Actor.STAFF,
            actor_user=staff,
        )
        operation = InstanceOperation.objects.filter(
            instance_id=instance_id,
            kind=InstanceOperation.Kind.INSTALL,
            state__in=InstanceOperation.LIVE,
        ).first()
        if operation is not None:
            operation_resume(operation)
