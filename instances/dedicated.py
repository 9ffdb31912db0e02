"""Dedicated servers: a machine from the inventory, installed by staff, tracked like any build."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from instances import placement
from instances.models import DedicatedServer, Instance, InstanceEvent
from instances.notifications import send_server_ready
from instances.services import Status, TransitionConflict, event_record, instance_transition

Actor = InstanceEvent.Actor


def assign(instance: Instance) -> str | None:
    """Give a paid dedicated order an available machine and an IP, and hand it to staff.

    Returns a waiting reason when no machine fits (the build is retried later), else None.
    """
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance.pk)
        if instance.status != Status.QUEUED:
            return None
        server = (
            DedicatedServer.objects.select_for_update(skip_locked=True)
            .filter(
                location=instance.location,
                state=DedicatedServer.State.AVAILABLE,
                cores__gte=instance.vcpus,
                memory_gib__gte=instance.memory_mib // 1024,
            )
            .filter(Q(instance__isnull=True))
            .order_by("cores", "memory_gib", "asset_tag")
            .first()
        )
        if server is None:
            return f"No machine with {instance.vcpus} cores is free in {instance.location.code}."
        try:
            address = placement.allocate_ipv4(instance)
        except placement.NoCapacity as exc:
            return str(exc)
        server.state = DedicatedServer.State.ASSIGNED
        server.instance = instance
        server.save(update_fields=["state", "instance"])
        instance_transition(
            instance_id=instance.pk,
            to=Status.PROVISIONING,
            reason=f"Machine {server.asset_tag} reserved; our technicians install it now.",
            build_step="install",
            step_started_at=timezone.now(),
            ipv4=address,
            ipv6=placement.ipv6_for(address),
            waiting_reason="",
        )
    return None


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
    """Staff finished the install: the customer's server is running; the password is wiped."""
    with transaction.atomic():
        server = DedicatedServer.objects.select_for_update().get(instance_id=instance_id)
        if server.state not in (DedicatedServer.State.ASSIGNED, DedicatedServer.State.INSTALLING):
            raise TransitionConflict(f"{server.asset_tag} is {server.state}.")
        server.state = DedicatedServer.State.READY
        server.save(update_fields=["state"])
        instance_transition(
            instance_id=instance_id,
            to=Status.RUNNING,
            reason="Your dedicated server is installed and ready.",
            expect={Status.PROVISIONING},
            actor=Actor.STAFF,
            actor_user=staff,
            build_step="ready",
            ready_at=timezone.now(),
            root_password_encrypted="",
        )
        transaction.on_commit(lambda: send_server_ready(instance_id))
