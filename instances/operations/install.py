"""A dedicated server: a machine from the inventory and an IP, then staff install it.

The engine reserves a machine; the install step waits for staff (no polling, no deadline) who
mark the machine installing and ready from the admin (instances/dedicated.py), which moves the
operation on.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from instances import placement
from instances.models import DedicatedServer, Instance
from instances.notifications import send_server_ready
from instances.operations.base import EXTERNAL, Context, Kind, Step, Wait
from instances.operations.build import failed

Status = Instance.Status


def reserve_machine(ctx: Context) -> Wait | None:
    """An available machine that fits and an IP; without one, wait and try again later."""
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=ctx.instance.pk)
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
        waiting = None
        if server is None:
            waiting = f"No machine with {instance.vcpus} cores is free in {instance.location.code}."
        else:
            try:
                address = placement.allocate_ipv4(instance)
            except placement.NoCapacity as exc:
                waiting = str(exc)
        if waiting:
            if waiting != ctx.operation.waiting_reason:
                ctx.event(f"Waiting for a machine: {waiting}")
            return Wait(settings.OPERATION_CAPACITY_RETRY, waiting)
        server.state = DedicatedServer.State.ASSIGNED
        server.instance = instance
        server.save(update_fields=["state", "instance"])
        ctx.transition(
            Status.PROVISIONING,
            f"Machine {server.asset_tag} reserved; our technicians install it now.",
            ipv4=address,
            ipv6=placement.ipv6_for(address),
        )
    return None


def installed(ctx: Context) -> Wait | None:
    machine = DedicatedServer.objects.filter(instance=ctx.instance).first()
    if machine is not None and machine.state == DedicatedServer.State.READY:
        return None
    return Wait(EXTERNAL, "Our technicians are installing the machine")


def handed_over(ctx: Context) -> None:
    instance = ctx.transition(
        Status.RUNNING,
        "Your dedicated server is installed and ready.",
        expect={Status.PROVISIONING},
        ready_at=timezone.now(),
    )
    transaction.on_commit(lambda: send_server_ready(instance.pk))
    return None


INSTALL = Kind(
    name="install",
    noun="an installation",
    steps=(
        Step("reserve", "Reserving a machine", reserve_machine, deadline=False),
        Step("install", "Installing", installed, deadline=False, external=True),
        Step("ready", "Ready", handed_over),
    ),
    allowed_from=frozenset({Status.PENDING, Status.FAILED}),
    requested="",
    done="",
    failed="The installation stopped. Support has been told.",
    on_failure=failed,
)
