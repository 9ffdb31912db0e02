"""Writes for servers. Billing (and the admin) ask for servers through these functions only."""

from __future__ import annotations

import logging
import re
import secrets as pysecrets
import string
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import SSHKey, User
from common import crypto as secrets
from instances.models import Instance, InstanceEvent, Location, OSImage

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
    Status.RUNNING: {Status.STOPPED, Status.SUSPENDED, Status.TERMINATING, Status.FAILED},
    Status.STOPPED: {Status.RUNNING, Status.SUSPENDED, Status.TERMINATING},
    Status.SUSPENDED: {Status.RUNNING, Status.STOPPED, Status.TERMINATING},
    Status.FAILED: {Status.QUEUED, Status.TERMINATING, Status.RUNNING},
    Status.TERMINATING: {Status.TERMINATED, Status.FAILED},
    Status.TERMINATED: set(),
}


# One DNS label (RFC 1123): what PVE accepts as a VM name and cloud-init as a hostname.
HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
HOSTNAME_RULE = (
    "A hostname is 1-63 lower-case letters, digits and hyphens, not starting or ending with a "
    "hyphen (e.g. web-1)."
)


@dataclass(frozen=True)
class InstanceSpec:
    family: str
    plan_name: str
    vcpus: int
    dedicated_cores: bool
    memory_mib: int
    disk_gib: int
    storage_class: str


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
) -> InstanceEvent:
    return InstanceEvent.objects.create(
        instance=instance,
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
            step=instance.build_step,
            old_status=old,
            new_status=to,
            actor=actor,
            actor_user=actor_user,
        )
    logger.info("instance %s: %s -> %s (%s)", instance_id, old, to, reason)
    return instance


def generate_root_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(pysecrets.choice(alphabet) for _ in range(length))


def instance_create(
    *,
    owner: User,
    hostname: str,
    location: Location,
    os_image: OSImage,
    spec: InstanceSpec,
    ssh_key_ids: list[int] | None = None,
    generate_password: bool = False,
    external_ref: str | None = None,
    paid: bool = True,
    queued_reason: str = "Payment received; build queued.",
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
) -> tuple[Instance, str | None]:
    """Create a server record and, when paid, queue its build.

    Idempotent per `external_ref`: asking twice returns the first server and no password.
    Returns the instance and the generated root password (shown once, then only encrypted
    until cloud-init has it).
    """
    if external_ref:
        existing = Instance.objects.filter(external_ref=external_ref).first()
        if existing:
            return existing, None
    if not HOSTNAME.fullmatch(hostname or ""):
        raise InstanceError(HOSTNAME_RULE)
    keys = SSHKey.objects.filter(owner=owner, pk__in=ssh_key_ids or [])
    if ssh_key_ids and keys.count() != len(set(ssh_key_ids)):
        raise InstanceError("One of the chosen SSH keys does not exist.")
    if not generate_password and not ssh_key_ids:
        raise InstanceError("Choose at least one SSH key or ask for a root password.")
    if spec.disk_gib < os_image.min_disk_gib:
        raise InstanceError(f"{os_image.name} needs at least {os_image.min_disk_gib} GiB of disk.")
    password = generate_root_password() if generate_password else None
    try:
        with transaction.atomic():
            instance = Instance.objects.create(
                owner=owner,
                external_ref=external_ref,
                hostname=hostname,
                location=location,
                os_image=os_image,
                family=spec.family,
                plan_name=spec.plan_name,
                vcpus=spec.vcpus,
                dedicated_cores=spec.dedicated_cores,
                memory_mib=spec.memory_mib,
                disk_gib=spec.disk_gib,
                storage_class=spec.storage_class,
                ssh_keys="\n".join(key.public_key for key in keys),
                root_password_encrypted=secrets.encrypt(password) if password else "",
                status=Status.PENDING,
            )
            event_record(
                instance,
                message="Server ordered.",
                new_status=Status.PENDING,
                actor=actor,
                actor_user=actor_user,
            )
            if paid:
                instance_queue(instance_id=instance.pk, reason=queued_reason)
    except IntegrityError:
        if external_ref:  # a concurrent request created it first
            return Instance.objects.get(external_ref=external_ref), None
        raise
    instance.refresh_from_db()
    return instance, password


def instance_queue(*, instance_id: int, reason: str, actor: str = Actor.SYSTEM, actor_user=None):
    """Queue the build (after payment, or a staff retry of a failed build)."""
    instance = instance_transition(
        instance_id=instance_id,
        to=Status.QUEUED,
        reason=reason,
        expect={Status.PENDING, Status.FAILED},
        actor=actor,
        actor_user=actor_user,
        last_error="",
        step_attempts=0,
        step_started_at=timezone.now(),
        build_chain=(chain := uuid.uuid4().hex),
    )
    _enqueue_build(instance.pk, chain)
    return instance


def _enqueue_build(instance_id: int, chain: str) -> None:
    from instances.tasks import provision_instance

    transaction.on_commit(lambda: provision_instance.delay(instance_id, chain))
