"""Writes for servers. Billing, the pages and the admin ask for servers through these functions.

Every change to a server after it is created is an operation (instances/operations/): these
functions check that it may start, record who asked, and queue it; the engine runs it.
"""

from __future__ import annotations

import logging
import re
import secrets as pysecrets
import string
import uuid
from dataclasses import dataclass

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import SSHKey, User
from common import crypto
from instances import placement
from instances.models import (
    Family,
    Instance,
    InstanceOperation,
    Location,
    Node,
    OSImage,
    OSTemplate,
)
from instances.operations import KINDS
from instances.state import (
    Actor,
    InstanceError,
    Status,
    TransitionConflict,
    event_record,
    instance_transition,
)

logger = logging.getLogger(__name__)
Kind = InstanceOperation.Kind
OpState = InstanceOperation.State

__all__ = [
    "InstanceError",
    "OperationInProgress",
    "TransitionConflict",
    "instance_create",
    "operation_request",
]

# One DNS label (RFC 1123): what PVE accepts as a VM name and cloud-init as a hostname.
HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
HOSTNAME_RULE = (
    "A hostname is 1-63 lower-case letters, digits and hyphens, not starting or ending with a "
    "hyphen (e.g. web-1)."
)


class OperationInProgress(InstanceError):
    """Another operation runs on the server; the message names it."""


@dataclass(frozen=True)
class InstanceSpec:
    family: str
    plan_name: str
    vcpus: int
    dedicated_cores: bool
    memory_mib: int
    disk_gib: int
    storage_class: str
    traffic_tb: int = 0
    # The vCPUs the server's CPU layout should take live (the biggest size it may grow to);
    # 0: its own count.
    max_vcpus: int = 0
    # Noisy-neighbour limits (0: none): network rate, disk IOPS and MB/s, PVE cpuunits.
    net_rate_mbit: int = 0
    disk_iops_rd: int = 0
    disk_iops_wr: int = 0
    disk_mbps_rd: int = 0
    disk_mbps_wr: int = 0
    cpu_units: int = 0
    # Snapshots the server may keep, and how many daily backups are kept (0: none).
    snapshots_max: int = 0
    backups_kept: int = 0

    def fields(self) -> dict:
        """The Instance fields this spec sets."""
        return {**self.__dict__, "max_vcpus": max(self.max_vcpus, self.vcpus)}


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
    reason: str,
    ssh_key_ids: list[int] | None = None,
    generate_password: bool = False,
    external_ref: str | None = None,
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
) -> Instance:
    """Create a server record and queue its build; `reason` is the timeline's first entry.

    Idempotent per `external_ref`: asking twice returns the first server. A generated root
    password goes to the server with the build and waits, encrypted, until the customer has
    seen it once (`password_reveal`).
    """
    if external_ref:
        existing = Instance.objects.filter(external_ref=external_ref).first()
        if existing:
            return existing
    if not HOSTNAME.fullmatch(hostname or ""):
        raise InstanceError(HOSTNAME_RULE)
    keys = SSHKey.objects.filter(owner=owner, pk__in=ssh_key_ids or [])
    if ssh_key_ids and keys.count() != len(set(ssh_key_ids)):
        raise InstanceError("One of the chosen SSH keys does not exist.")
    if not generate_password and not ssh_key_ids:
        raise InstanceError("Choose at least one SSH key or ask for a root password.")
    if spec.disk_gib < os_image.min_disk_gib:
        raise InstanceError(f"{os_image.name} needs at least {os_image.min_disk_gib} GiB of disk.")
    password = generate_root_password() if generate_password else ""
    try:
        with transaction.atomic():
            instance = Instance.objects.create(
                owner=owner,
                external_ref=external_ref,
                hostname=hostname,
                location=location,
                os_image=os_image,
                **spec.fields(),
                ssh_keys="\n".join(key.public_key for key in keys),
                new_password_encrypted=crypto.encrypt(password),
                status=Status.PENDING,
            )
            event_record(
                instance,
                message="Server ordered.",
                new_status=Status.PENDING,
                actor=actor,
                actor_user=actor_user,
            )
            kind = Kind.INSTALL if spec.family == Family.DEDICATED else Kind.BUILD
            operation = _operation_create(
                instance, kind, actor=actor, actor_user=actor_user, secret=password
            )
            instance_transition(
                instance_id=instance.pk,
                to=Status.QUEUED,
                reason=reason,
                actor=actor,
                actor_user=actor_user,
                operation=operation,
            )
    except IntegrityError:
        if external_ref:  # a concurrent request created it first
            return Instance.objects.get(external_ref=external_ref)
        raise
    instance.refresh_from_db()
    return instance


# Kinds a dedicated server goes through too (technicians do the machine's part).
STAFF_RUN = (Kind.SUSPEND, Kind.UNSUSPEND, Kind.TERMINATE)


def operation_request(
    *,
    instance_id: int,
    kind: str,
    actor: str,
    actor_user: User | None = None,
    params: dict | None = None,
    secret: str = "",
) -> InstanceOperation:
    """Ask for a change to a server; it runs in the background (its steps show on the page).

    Raises OperationInProgress while another operation runs, and InstanceError when the server
    is not in a state the change starts from; both messages are for the person who asked.
    """
    spec = KINDS[kind]
    with transaction.atomic():
        instance = Instance.objects.select_for_update().get(pk=instance_id)
        if instance.family == Family.DEDICATED and kind not in STAFF_RUN:
            raise InstanceError(
                "A dedicated server is run by our technicians; please contact support for it."
            )
        if instance.status not in spec.allowed_from:
            raise InstanceError(
                f"{instance.hostname} is {instance.get_status_display()}; "
                f"{spec.noun} is not possible now."
            )
        operation = _operation_create(
            instance, kind, actor=actor, actor_user=actor_user, params=params, secret=secret
        )
        if spec.requested:
            event_record(
                instance,
                message=spec.requested,
                actor=actor,
                actor_user=actor_user,
                operation=operation,
            )
    return operation


def _operation_create(
    instance: Instance,
    kind: str,
    *,
    actor: str,
    actor_user: User | None,
    params: dict | None = None,
    secret: str = "",
) -> InstanceOperation:
    """The operation row (at most one live per server: the database refuses a second)."""
    running = instance.operations.filter(state__in=InstanceOperation.LIVE).first()
    if running is not None:
        raise OperationInProgress(_in_progress(running))
    try:
        with transaction.atomic():
            operation = InstanceOperation.objects.create(
                instance=instance,
                kind=kind,
                actor=actor,
                actor_user=actor_user,
                params=params or {},
                secret_encrypted=crypto.encrypt(secret),
                chain=uuid.uuid4().hex,
            )
    except IntegrityError:
        running = instance.operations.filter(state__in=InstanceOperation.LIVE).first()
        raise OperationInProgress(_in_progress(running)) from None
    _enqueue(operation)
    return operation


def _in_progress(operation: InstanceOperation | None) -> str:
    noun = KINDS[operation.kind].noun if operation else "another change"
    return f"{noun[0].upper()}{noun[1:]} is in progress; try again when it has finished."


def _enqueue(operation: InstanceOperation) -> None:
    # By name: the task module sits above this one (tasks -> engine -> operations -> services
    # would be a cycle). Sent once the row is committed, so the worker finds it.
    operation_id, chain = operation.pk, operation.chain
    transaction.on_commit(
        lambda: current_app.send_task("instances.advance_operation", args=(operation_id, chain))
    )


def operation_resume(operation: InstanceOperation) -> None:
    """Move on an operation that waits for people (staff finished their part)."""
    _enqueue(operation)


# Operations staff resume where they stopped: a build (or reinstall) leaves the server failed;
# an upgrade the customer paid for leaves it running with the new size still to apply.
RETRYABLE = (Kind.BUILD, Kind.INSTALL, Kind.REINSTALL, Kind.RESIZE)


def operation_retry(*, operation_id: int, actor: str, actor_user: User | None = None) -> None:
    """Staff resume a failed build, installation, reinstall or upgrade at the step it failed
    in (same VM and IP)."""
    with transaction.atomic():
        operation = InstanceOperation.objects.select_for_update().get(pk=operation_id)
        if operation.state != OpState.FAILED or operation.kind not in RETRYABLE:
            raise InstanceError(
                "Only a failed build, installation, reinstall or upgrade can be retried."
            )
        if Instance.objects.filter(pk=operation.instance_id, status=Status.FAILED).exists():
            first = KINDS[operation.kind].steps[0].name
            resumed = operation.step not in ("", first)
            instance_transition(
                instance_id=operation.instance_id,
                to=Status.PROVISIONING if resumed else Status.QUEUED,
                expect={Status.FAILED},
                reason=f"{KINDS[operation.kind].title} retried by support.",
                actor=actor,
                actor_user=actor_user,
                operation=operation,
            )
        else:
            event_record(
                operation.instance,
                message=f"{KINDS[operation.kind].title} retried by support.",
                actor=actor,
                actor_user=actor_user,
                operation=operation,
            )
        operation.state = OpState.QUEUED
        operation.chain = uuid.uuid4().hex
        operation.attempts = 0
        operation.error = operation.error_message = ""
        operation.finished_at = None
        operation.step_started_at = timezone.now()
        operation.save()
        _enqueue(operation)


def password_reveal(*, instance: Instance) -> str | None:
    """The generated root password, once: it is wiped as it is read (None if already seen)."""
    with transaction.atomic():
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        if not locked.new_password_encrypted:
            return None
        password = crypto.decrypt(locked.new_password_encrypted)
        Instance.objects.filter(pk=instance.pk).update(new_password_encrypted="")
    return password


# --- What customers (and staff) ask for on the server page -----------------------------------

POWER = (Kind.START, Kind.SHUTDOWN, Kind.STOP, Kind.REBOOT, Kind.RESET)


def instance_power(
    *, instance: Instance, action: str, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Start, shut down, stop, reboot or reset the server."""
    if action not in POWER:
        raise InstanceError("Unknown power action.")
    return operation_request(
        instance_id=instance.pk, kind=action, actor=actor, actor_user=actor_user
    )


def instance_reinstall(
    *,
    instance: Instance,
    image: OSImage,
    ssh_key_ids: list[int],
    generate_password: bool,
    confirm_hostname: str,
    actor: str,
    actor_user: User | None,
) -> InstanceOperation:
    """Wipe the disk and install `image` (same VMID, addresses and size); the keys are the
    owner's, and a generated password is shown once when the reinstall is done."""
    if confirm_hostname.strip() != instance.hostname:
        raise InstanceError(f"Type the server's name, {instance.hostname}, to confirm.")
    keys = list(SSHKey.objects.filter(owner=instance.owner_id, pk__in=ssh_key_ids))
    if len(keys) != len(set(ssh_key_ids)):
        raise InstanceError("One of the chosen SSH keys does not exist.")
    if not keys and not generate_password:
        raise InstanceError("Choose at least one SSH key or ask for a root password.")
    offered = OSTemplate.objects.filter(image=image, cluster=instance.cluster_id).exists()
    if not image.active or not offered:
        raise InstanceError(f"{image.name} is not offered in {instance.location.name}.")
    if instance.disk_gib < image.min_disk_gib:
        raise InstanceError(f"{image.name} needs at least {image.min_disk_gib} GiB of disk.")
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.REINSTALL,
        actor=actor,
        actor_user=actor_user,
        params={"image_id": image.pk, "ssh_keys": "\n".join(key.public_key for key in keys)},
        secret=generate_root_password() if generate_password else "",
    )


def instance_password_reset(
    *, instance: Instance, allow_reboot: bool, actor: str, actor_user: User | None
) -> InstanceOperation:
    """A new generated password for the login user (shown once when it works)."""
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.PASSWORD,
        actor=actor,
        actor_user=actor_user,
        params={"allow_reboot": allow_reboot},
        secret=generate_root_password(),
    )


def instance_rename(
    *, instance: Instance, hostname: str, actor: str, actor_user: User | None
) -> InstanceOperation:
    hostname = (hostname or "").strip().lower()
    if not HOSTNAME.fullmatch(hostname):
        raise InstanceError(HOSTNAME_RULE)
    if hostname == instance.hostname:
        raise InstanceError(f"The server is already called {hostname}.")
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.RENAME,
        actor=actor,
        actor_user=actor_user,
        params={"hostname": hostname},
    )


def instance_resize(
    *,
    instance: Instance,
    spec: InstanceSpec,
    label: str,
    actor: str = Actor.SYSTEM,
    actor_user: User | None = None,
) -> InstanceOperation:
    """Give the server a new size (billing calls this once the customer has paid for it):
    applied live where the VM allows, the rest at the next reboot; moved to another node first
    if its own has no room. `label` opens the timeline entry ("Upgraded to NVMe VPS L.")."""
    if spec.disk_gib < instance.disk_gib:
        raise InstanceError(
            f"Disks never shrink: {instance.hostname} has {instance.disk_gib} GiB, "
            f"{spec.plan_name} only {spec.disk_gib} GiB."
        )
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.RESIZE,
        actor=actor,
        actor_user=actor_user,
        params={"spec": spec.fields(), "label": label},
    )


def instance_migrate(
    *, instance: Instance, target: Node | None, actor: str, actor_user: User | None = None
) -> InstanceOperation:
    """Live-migrate the server to `target` (None: the least loaded other node with room)."""
    if target is not None:
        problem = placement.move_problem(instance, target)
        if problem:
            raise InstanceError(problem)
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.MIGRATE,
        actor=actor,
        actor_user=actor_user,
        params={"target_id": target.pk if target else None},
    )


def reboot_plan(*, instance: Instance, at, actor_user: User | None) -> None:
    """Reboot the server at `at` (applying what waits for a reboot); None cancels the plan."""
    if at is not None and at <= timezone.now():
        raise InstanceError("Pick a time in the future, or reboot now.")
    Instance.objects.filter(pk=instance.pk).update(reboot_at=at, reboot_by=actor_user)
    when = f"for {timezone.localtime(at):%Y-%m-%d %H:%M %Z}" if at else "cancelled"
    event_record(
        instance,
        message=f"Reboot planned {when}." if at else "Planned reboot cancelled.",
        actor=Actor.CUSTOMER if actor_user and not actor_user.is_staff else Actor.STAFF,
        actor_user=actor_user,
    )


def planned_reboots_start(now=None) -> int:
    """Start the reboots planned for now or earlier (beat); a server busy with another
    operation is rebooted at the next run. Returns how many started."""
    now = now or timezone.now()
    started = 0
    due = Instance.objects.filter(reboot_at__lte=now, status=Status.RUNNING)
    for instance in due.select_related("reboot_by"):
        user = instance.reboot_by
        actor = Actor.CUSTOMER if user and not user.is_staff else Actor.SYSTEM
        try:
            operation_request(
                instance_id=instance.pk, kind=Kind.REBOOT, actor=actor, actor_user=user
            )
        except InstanceError:
            continue
        Instance.objects.filter(pk=instance.pk).update(reboot_at=None)
        started += 1
    return started


def usage_refresh(*, instance: Instance, timeframe: str) -> None:
    """Ask a worker to fetch the server's usage samples for its graphs (by task name)."""
    current_app.send_task("instances.refresh_usage", args=(instance.pk, timeframe))


def status_sync_request(*, cluster_id: int) -> None:
    """Ask a worker to read the cluster's VM states from PVE now (support's "sync now")."""
    current_app.send_task("instances.sync_status", args=(cluster_id,))
