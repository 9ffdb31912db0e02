"""The build of a server on Proxmox VE, as idempotent steps.

`advance()` runs the steps from where the server is, under a lease so only one worker drives a
build at a time. A step that finds its work already done moves on (a clone that exists, a disk
already grown, a VM already running), so running any step twice yields one VM. Waiting on PVE is
not done by blocking: the step answers "come back in N seconds" and the task re-queues itself.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common import crypto as secrets
from instances import dedicated, placement
from instances.models import Family, Instance, OSTemplate
from instances.notifications import send_server_ready
from instances.proxmox import ProxmoxError, ProxmoxPermanent, ProxmoxTransient, PveClient
from instances.services import Status, TransitionConflict, event_record, instance_transition

logger = logging.getLogger(__name__)

STEPS = ["reserve", "clone", "wait_clone", "configure", "resize", "start", "wait_running", "ready"]
STEP_LABELS = {
    "reserve": "Reserving capacity",
    "clone": "Copying the OS image",
    "wait_clone": "Copying the OS image",
    "configure": "Configuring",
    "resize": "Growing the disk",
    "start": "Starting",
    "wait_running": "Booting",
    "ready": "Ready",
}
MARKER = "portal-instance={id}"


@dataclass(frozen=True)
class Wait:
    """The step is not finished; look again after `seconds`."""

    seconds: float
    reason: str = ""


class StepFailed(Exception):
    """A permanent problem: the build stops and staff are told."""


# --- Running the steps ---------------------------------------------------------------------------


def advance(
    instance_id: int, *, chain: str = "", client_factory=PveClient.for_cluster
) -> float | None:
    """Run steps until the build is done or must wait; returns seconds until the next look.

    `chain` names the task chain driving the build; a task of an older chain does nothing.
    (Empty: any chain, for callers outside Celery such as tests and the benchmark.)
    """
    token = _claim(instance_id, chain)
    if token is None:
        return None  # another worker drives this build; it will re-queue as needed
    try:
        return _run_steps(instance_id, token, client_factory)
    finally:
        Instance.objects.filter(pk=instance_id, lease_token=token).update(
            lease_token="", lease_until=None
        )


def _lease() -> timedelta:
    return timedelta(seconds=settings.PROVISIONING_LEASE)


def _claim(instance_id: int, chain: str = "") -> str | None:
    token = uuid.uuid4().hex
    now = timezone.now()
    building = Instance.objects.filter(
        pk=instance_id, status__in=[Status.QUEUED, Status.PROVISIONING]
    )
    if chain:
        building = building.filter(build_chain=chain)
    claimed = building.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        lease_token=token, lease_until=now + _lease()
    )
    return token if claimed else None


def _still_ours(instance_id: int, token: str) -> bool:
    """Renew the lease before each step; a worker whose lease expired (and was taken) stops."""
    return bool(
        Instance.objects.filter(pk=instance_id, lease_token=token).update(
            lease_until=timezone.now() + _lease()
        )
    )


def _run_steps(instance_id: int, token: str, client_factory) -> float | None:
    while _still_ours(instance_id, token):
        instance = Instance.objects.select_related("node", "cluster", "ipv4__pool", "os_image").get(
            pk=instance_id
        )
        if instance.status not in (Status.QUEUED, Status.PROVISIONING):
            return None
        if instance.family == Family.DEDICATED:
            return _advance_dedicated(instance)
        step = instance.build_step or STEPS[0]
        try:
            if _past_deadline(instance):
                raise StepFailed("The step made no progress for too long; support has been told.")
            if instance.status == Status.QUEUED and step != STEPS[0]:
                # A retried build resumes at the step it failed in; its VM and IP are kept.
                instance = instance_transition(
                    instance_id=instance.pk, to=Status.PROVISIONING, reason="Build resumed."
                )
            outcome = STEP_FUNCTIONS[step](instance, client_factory)
        except TransitionConflict:
            return None  # someone else (staff, billing, the reaper) changed the server: stop
        except ProxmoxTransient as exc:
            return _transient(instance, step, exc)
        except (ProxmoxError, StepFailed) as exc:
            _fail(instance, step, str(exc))
            return None
        except Exception as exc:  # a bug or a broken setting: staff must see it, not the reaper
            logger.exception("instance %s: unexpected error in %s", instance_id, step)
            _fail(instance, step, f"Unexpected error: {exc!r}")
            return None
        if isinstance(outcome, Wait):
            Instance.objects.filter(pk=instance_id, lease_token=token).update(
                waiting_reason=outcome.reason, updated_at=timezone.now()
            )
            return outcome.seconds
        if step == STEPS[-1]:
            return None
        _next_step(instance, step)
    return None


def _past_deadline(instance: Instance) -> bool:
    """A step (not a wait for capacity) running longer than PROVISIONING_DEADLINE."""
    if instance.status != Status.PROVISIONING or instance.step_started_at is None:
        return False
    limit = timedelta(seconds=settings.PROVISIONING_DEADLINE)
    return timezone.now() - instance.step_started_at > limit


def _advance_dedicated(instance: Instance) -> float | None:
    """Dedicated machines are installed by staff; the portal only reserves one and an IP."""
    if instance.status != Status.QUEUED:
        return None
    waiting = dedicated.assign(instance)
    if waiting:
        if waiting != instance.waiting_reason:
            event_record(instance, step="reserve", message=f"Waiting for a machine: {waiting}")
        Instance.objects.filter(pk=instance.pk).update(
            waiting_reason=waiting, updated_at=timezone.now()
        )
        return settings.PROVISIONING_CAPACITY_RETRY
    return None


def _next_step(instance: Instance, step: str) -> None:
    following = STEPS[STEPS.index(step) + 1]
    Instance.objects.filter(pk=instance.pk).update(
        build_step=following,
        step_started_at=timezone.now(),
        step_attempts=0,
        waiting_reason="",
        updated_at=timezone.now(),
    )
    if following != "ready" and STEP_LABELS[following] != STEP_LABELS[step]:
        event_record(instance, step=following, message=f"{STEP_LABELS[following]}…")


def _transient(instance: Instance, step: str, exc: ProxmoxError) -> float | None:
    attempts = instance.step_attempts + 1
    if attempts > settings.PROVISIONING_MAX_RETRIES:
        _fail(instance, step, f"Gave up after {attempts - 1} retries: {exc}")
        return None
    Instance.objects.filter(pk=instance.pk).update(
        step_attempts=attempts, updated_at=timezone.now()
    )
    delay = min(300.0, settings.PROVISIONING_RETRY_BASE * 2 ** (attempts - 1))
    delay *= random.uniform(0.8, 1.2)  # jitter: retries of many servers do not arrive together
    event_record(
        instance,
        step=step,
        message=f"{STEP_LABELS[step]} is taking longer; trying again in {delay:.0f} s.",
        detail=f"Transient Proxmox error (attempt {attempts}): {exc}",
    )
    return delay


def _fail(instance: Instance, step: str, message: str) -> None:
    logger.warning("instance %s failed in %s: %s", instance.pk, step, message)
    # If it is no longer being built (staff or billing moved it on), there is nothing to fail.
    with contextlib.suppress(TransitionConflict):
        _fail_transition(instance, step, message)


def _fail_transition(instance: Instance, step: str, message: str) -> None:
    instance_transition(
        instance_id=instance.pk,
        to=Status.FAILED,
        expect={Status.QUEUED, Status.PROVISIONING},
        reason=f"The build stopped while {STEP_LABELS[step].lower()}. Support has been told.",
        detail=message,
        last_error=message,
    )


def _poll_delay(instance: Instance) -> float:
    """Look again soon at first, then less often: a quick task is seen quickly, and a long
    clone or boot of many servers does not flood the queue with looks (each costs a worker
    a few API calls). The delay grows with the time already waited (a twentieth of it, so the
    build notices the end at most ~5% late), up to 5 s."""
    waited = (timezone.now() - (instance.step_started_at or timezone.now())).total_seconds()
    return min(max(settings.PROVISIONING_POLL, 0.05 * waited), max(settings.PROVISIONING_POLL, 5.0))


# --- The steps -----------------------------------------------------------------------------------


def step_reserve(instance: Instance, client_factory):
    if instance.status == Status.QUEUED and instance.node_id is None:
        try:
            placement.reserve(
                instance.pk,
                is_vmid_free=lambda cluster, vmid: client_factory(cluster).vmid_free(vmid),
            )
        except placement.NoCapacity as exc:
            if str(exc) != instance.waiting_reason:  # one timeline entry per reason, not per try
                event_record(
                    instance,
                    step="reserve",
                    message="Waiting for capacity in this location; the build starts by itself.",
                    detail=str(exc),
                )
            return Wait(settings.PROVISIONING_CAPACITY_RETRY, str(exc))
    if instance.status == Status.QUEUED:
        instance_transition(
            instance_id=instance.pk,
            to=Status.PROVISIONING,
            reason="Build started.",
            build_step="reserve",
            step_started_at=instance.step_started_at or timezone.now(),
        )
    return None


def _is_ours(client, found: dict, instance: Instance) -> bool:
    config = client.vm_config(found["node"], instance.vmid)
    marker = re.escape(MARKER.format(id=instance.pk))
    return re.search(rf"{marker}(?!\d)", config.get("description") or "") is not None


def step_clone(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    found = client.find_vm(instance.vmid)
    if found is not None:
        # PVE writes a bare config locked "clone" before the copy starts and our description
        # only at its end: a locked VM is our earlier clone (its task id was lost), and
        # wait_clone checks the marker once the copy is done.
        if found.get("lock") == "clone" or _is_ours(client, found, instance):
            return None
        raise StepFailed(
            f"VMID {instance.vmid} is used by a VM the portal did not create ({found.get('name')})."
        )
    template = _template_for(instance)
    source_node = template.node.name if template.node_id else _template_node(client, template)
    try:
        upid = client.clone(
            node=source_node,
            template_vmid=template.vmid,
            vmid=instance.vmid,
            name=instance.hostname,
            full=True,
            storage=_storage_name(instance),
            target=instance.node.name if source_node != instance.node.name else None,
            description=MARKER.format(id=instance.pk),
        )
    except ProxmoxPermanent as exc:
        if "already exists" in exc.message:  # our earlier request went through after all
            raise ProxmoxTransient(exc.message, status=exc.status) from exc
        raise
    Instance.objects.filter(pk=instance.pk).update(task_upid=upid)
    return None


def _template_node(client, template: OSTemplate) -> str:
    """Where a cluster-wide template (on shared storage) lives; clones go from there."""
    found = client.find_vm(template.vmid)
    if found is None:
        raise StepFailed(f"Template VMID {template.vmid} does not exist on {template.cluster}.")
    return found["node"]


def _template_for(instance: Instance) -> OSTemplate:
    templates = OSTemplate.objects.filter(image=instance.os_image, cluster=instance.cluster)
    template = templates.filter(node=instance.node).first() or templates.filter(node=None).first()
    if template is None:
        raise StepFailed(f"{instance.os_image} has no template on {instance.cluster}.")
    return template


def _storage_name(instance: Instance) -> str:
    pool = instance.node.storages.filter(pool__storage_class=instance.storage_class).first()
    if pool is None:
        raise StepFailed(f"{instance.node} has no {instance.storage_class} storage.")
    return pool.pool.name


def step_wait_clone(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    if instance.task_upid:
        status = client.task_status(instance.node.name, instance.task_upid)
        if status.running:
            return Wait(_poll_delay(instance), "Copying the OS image")
        if not status.ok:
            # The failed clone left nothing behind (PVE removes it); clone again next time.
            Instance.objects.filter(pk=instance.pk).update(task_upid="", build_step="clone")
            raise status.error()
    found = client.find_vm(instance.vmid)
    if found is None:
        Instance.objects.filter(pk=instance.pk).update(task_upid="", build_step="clone")
        raise ProxmoxTransient("the cloned VM is not there yet", status=None)
    if found.get("lock") == "clone":
        return Wait(_poll_delay(instance), "Copying the OS image")
    if not _is_ours(client, found, instance):
        raise StepFailed(f"VMID {instance.vmid} holds a VM the portal did not create.")
    Instance.objects.filter(pk=instance.pk).update(task_upid="")
    return None


def step_configure(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    started = _started_task(client, instance)
    if started is not None:
        if isinstance(started, Wait):
            return started
        # PVE keeps only a hash of the password now; ours is no longer needed.
        Instance.objects.filter(pk=instance.pk).update(root_password_encrypted="")
        return None
    address = instance.ipv4
    options = {
        "name": instance.hostname,
        "cores": instance.vcpus,
        "sockets": 1,
        "memory": instance.memory_mib,
        "ciuser": instance.os_image.default_user,
        "ipconfig0": f"ip={address.address}/{address.pool.prefix_length},gw={address.pool.gateway}",
        "nameserver": address.pool.dns_servers,
        "tags": ["portal", instance.family.replace("_", "-"), f"customer-{instance.owner_id}"],
        "description": MARKER.format(id=instance.pk),
        "onboot": True,
    }
    if instance.ipv6:
        options["ipconfig0"] += f",ip6={instance.ipv6}"
        if address.pool.ipv6_gateway:
            options["ipconfig0"] += f",gw6={address.pool.ipv6_gateway}"
    if instance.ssh_keys:
        options["sshkeys"] = instance.ssh_keys + "\n"
    if instance.root_password_encrypted:
        options["cipassword"] = secrets.decrypt(instance.root_password_encrypted)
    upid = client.set_config(instance.node.name, instance.vmid, **options)
    if upid and (waiting := _start_waiting(client, instance, upid, "Configuring")):
        return waiting
    Instance.objects.filter(pk=instance.pk).update(root_password_encrypted="")
    return None


class _Finished:
    """The step's PVE task ended well."""


FINISHED = _Finished()


def _start_waiting(client, instance: Instance, upid: str, reason: str) -> Wait | None:
    """Remember the task this step started; a short task is awaited briefly, else come back.

    A config task usually ends within a few hundred milliseconds: waiting that long here saves a
    trip through the queue and holds a worker no longer; a longer task (a resize) comes back.
    """
    Instance.objects.filter(pk=instance.pk).update(task_upid=upid)
    instance.task_upid = upid
    status = client.wait_task(instance.node.name, upid, timeout=0.3, poll=0.1)
    if status.running:
        return Wait(_poll_delay(instance), reason)
    Instance.objects.filter(pk=instance.pk).update(task_upid="")
    if not status.ok:
        raise status.error()
    return None


def _started_task(client, instance: Instance) -> Wait | _Finished | None:
    """For a step that started a PVE task: wait while it runs, raise if it failed.

    None means the step has not started its task yet (or its id was lost: it starts anew,
    which is harmless for config and resize).
    """
    if not instance.task_upid:
        return None
    status = client.task_status(instance.node.name, instance.task_upid)
    if status.running:
        return Wait(_poll_delay(instance), STEP_LABELS[instance.build_step])
    Instance.objects.filter(pk=instance.pk).update(task_upid="")
    if not status.ok:
        raise status.error()
    return FINISHED


_SIZE = re.compile(r"size=(\d+(?:\.\d+)?)([KMGT]?)")
_UNIT_GIB = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024, "": 1 / 1024**3}


def disk_size_gib(drive: str) -> float:
    match = _SIZE.search(drive or "")
    return float(match.group(1)) * _UNIT_GIB[match.group(2)] if match else 0.0


def step_resize(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    started = _started_task(client, instance)
    if started is not None:
        return started if isinstance(started, Wait) else None
    config = client.vm_config(instance.node.name, instance.vmid)
    if disk_size_gib(config.get("scsi0", "")) >= instance.disk_gib:
        return None  # already grown (or the template is big enough): disks never shrink
    upid = client.resize_disk(instance.node.name, instance.vmid, "scsi0", f"{instance.disk_gib}G")
    return _start_waiting(client, instance, upid, "Growing the disk") if upid else None


def step_start(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    if client.vm_status(instance.node.name, instance.vmid).get("status") == "running":
        return None
    upid = client.start(instance.node.name, instance.vmid)
    Instance.objects.filter(pk=instance.pk).update(task_upid=upid)
    return None


def step_wait_running(instance: Instance, client_factory):
    client = client_factory(instance.cluster)
    # A running VM wins over a start task's exit status: a repeated start (after a lost reply)
    # ends in "already running", which is success for us.
    if client.vm_status(instance.node.name, instance.vmid).get("status") == "running":
        Instance.objects.filter(pk=instance.pk).update(task_upid="")
        return None
    if instance.task_upid:
        status = client.task_status(instance.node.name, instance.task_upid)
        if not status.running and not status.ok:
            Instance.objects.filter(pk=instance.pk).update(task_upid="", build_step="start")
            raise status.error()
    return Wait(_poll_delay(instance), "Booting")


def step_ready(instance: Instance, client_factory):
    instance = instance_transition(
        instance_id=instance.pk,
        to=Status.RUNNING,
        expect={Status.PROVISIONING},
        reason="Your server is ready.",
        ready_at=timezone.now(),
        waiting_reason="",
    )
    transaction.on_commit(lambda: send_server_ready(instance.pk))
    return None


STEP_FUNCTIONS = {
    "reserve": step_reserve,
    "clone": step_clone,
    "wait_clone": step_wait_clone,
    "configure": step_configure,
    "resize": step_resize,
    "start": step_start,
    "wait_running": step_wait_running,
    "ready": step_ready,
}


# --- The reaper ----------------------------------------------------------------------------------


def reap(now=None) -> list[tuple[int, str]]:
    """Builds nobody drives any more (a worker died, a message was lost): resume or fail them.

    Returns (id, new chain) of the builds to resume, whose old task chains thereby end; a step
    past its deadline is failed for staff instead. A build waiting for capacity has no deadline.
    """
    now = now or timezone.now()
    stalled = Instance.objects.filter(
        status__in=[Status.QUEUED, Status.PROVISIONING],
        updated_at__lt=now - timedelta(seconds=settings.PROVISIONING_STUCK_AFTER),
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    # A dedicated machine being installed waits for staff, not for a worker.
    stalled = stalled.exclude(family=Family.DEDICATED, status=Status.PROVISIONING)
    resume = []
    for instance in stalled:
        if _past_deadline(instance):
            _fail(
                instance,
                instance.build_step or STEPS[0],
                "The build made no progress for too long.",
            )
            continue
        # Claim the row for this resume only if nobody touched it meanwhile; the new chain
        # ends whatever old task of this build may still turn up.
        chain = uuid.uuid4().hex
        touched = Instance.objects.filter(pk=instance.pk, updated_at=instance.updated_at).update(
            updated_at=now, build_chain=chain
        )
        if touched:
            event_record(instance, step=instance.build_step, message="Resuming a stalled build.")
            resume.append((instance.pk, chain))
    return resume
