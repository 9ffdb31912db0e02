"""The engine that drives operations: a lease per worker, steps in order, retries, the reaper.

`advance()` runs an operation's steps from where it is, under a lease so only one worker drives
it at a time, until it is done or must wait; it returns the seconds until the next look (the
Celery task re-queues itself) or None. A short wait (a config task, the last moments of a boot)
is waited out in the worker; anything longer goes back through the queue. Transient errors are
retried with exponential backoff and jitter, then the operation fails with PVE's message for
staff and plain words for the customer. The reaper resumes operations nobody drives and fails
those stuck past their deadline.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from instances.models import InstanceOperation
from instances.operations import KINDS, waiting
from instances.operations.base import EXTERNAL, Context, Kind, Step, StepFailed, TryAgain, Wait
from instances.proxmox import ProxmoxError, ProxmoxTransient, PveClient
from instances.state import TransitionConflict, event_record

logger = logging.getLogger(__name__)
State = InstanceOperation.State
LIVE = InstanceOperation.LIVE
RELATED = ("instance__node", "instance__cluster", "instance__ipv4__pool", "instance__os_image")


def advance(
    operation_id: int, *, chain: str = "", client_factory=PveClient.for_cluster
) -> float | None:
    """Run steps until the operation is done or must wait; seconds until the next look, or None.

    `chain` names the task chain driving the operation; a task of an older chain does nothing.
    (Empty: any chain, for callers outside Celery such as tests, staff tools and the benchmark.)
    """
    token = _claim(operation_id, chain)
    if token is None:
        return None  # another worker drives it and re-queues as needed (or it is over)
    try:
        return _run(operation_id, token, client_factory)
    finally:
        InstanceOperation.objects.filter(pk=operation_id, lease_token=token).update(
            lease_token="", lease_until=None
        )


def _lease() -> timedelta:
    return timedelta(seconds=settings.OPERATION_LEASE)


def _claim(operation_id: int, chain: str) -> str | None:
    token = uuid.uuid4().hex
    now = timezone.now()
    live = InstanceOperation.objects.filter(pk=operation_id, state__in=LIVE)
    if chain:
        live = live.filter(chain=chain)
    claimed = live.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        lease_token=token, lease_until=now + _lease()
    )
    return token if claimed else None


def _still_ours(operation_id: int, token: str) -> bool:
    """Renew the lease before each step; a worker whose lease expired (and was taken) stops."""
    return bool(
        InstanceOperation.objects.filter(pk=operation_id, lease_token=token).update(
            lease_until=timezone.now() + _lease()
        )
    )


def _run(operation_id: int, token: str, client_factory) -> float | None:
    inline_budget = waiting.INLINE
    while _still_ours(operation_id, token):
        operation = InstanceOperation.objects.select_related(*RELATED).get(pk=operation_id)
        if operation.state not in LIVE:
            return None
        kind = KINDS[operation.kind]
        step = kind.step(operation.step)
        ctx = Context(operation, kind, client_factory)
        if operation.state == State.QUEUED:
            _begin(ctx, step)
        try:
            if _past_deadline(operation, step):
                raise StepFailed("The step made no progress for too long.")
            outcome = step.run(ctx)
        except TransitionConflict as exc:
            # Someone else (staff, billing, the status sync) changed the server meanwhile.
            _finish(ctx, State.CANCELLED, step, detail=str(exc))
            return None
        except (ProxmoxTransient, TryAgain) as exc:
            return _transient(ctx, step, exc)
        except (ProxmoxError, StepFailed) as exc:
            _fail(ctx, step, str(exc), customer=getattr(exc, "customer", ""))
            return None
        except Exception as exc:  # a bug or a broken setting: staff must see it, not the reaper
            logger.exception("operation %s: unexpected error in %s", operation_id, step.name)
            _fail(ctx, step, f"Unexpected error: {exc!r}")
            return None
        if isinstance(outcome, Wait):
            ctx.save(waiting_reason=outcome.reason[:200])
            if outcome.seconds == EXTERNAL:
                return None
            if outcome.seconds <= inline_budget:
                # Sooner than a trip through the queue would bring us back: wait here.
                inline_budget -= outcome.seconds
                time.sleep(outcome.seconds)
                continue
            return outcome.seconds
        following = kind.after(step.name)
        if following is None:
            _finish(ctx, State.SUCCEEDED, step)
            return None
        _next_step(ctx, step, following)
    return None


def _begin(ctx: Context, step: Step) -> None:
    now = timezone.now()
    ctx.save(
        state=State.RUNNING,
        started_at=ctx.operation.started_at or now,
        step=step.name,
        step_started_at=ctx.operation.step_started_at or now,
    )


def _past_deadline(operation: InstanceOperation, step: Step) -> bool:
    """A step running longer than OPERATION_DEADLINE (waiting for capacity or people is not)."""
    if not step.deadline or operation.step_started_at is None:
        return False
    limit = timedelta(seconds=settings.OPERATION_DEADLINE)
    return timezone.now() - operation.step_started_at > limit


def _next_step(ctx: Context, step: Step, following: Step) -> None:
    ctx.save(
        step=following.name,
        step_started_at=timezone.now(),
        attempts=0,
        waiting_reason="",
        looked_at=None,
    )
    narrated = ctx.kind.name in ("build", "reinstall")
    if narrated and following.label != step.label and following is not ctx.kind.steps[-1]:
        ctx.event(f"{following.label}…")


def _transient(ctx: Context, step: Step, exc: Exception) -> float | None:
    attempts = ctx.operation.attempts + 1
    if attempts > settings.OPERATION_MAX_RETRIES:
        _fail(ctx, step, f"Gave up after {attempts - 1} retries: {exc}")
        return None
    ctx.save(attempts=attempts)
    delay = min(300.0, settings.OPERATION_RETRY_BASE * 2 ** (attempts - 1))
    delay *= random.uniform(0.8, 1.2)  # jitter: retries of many servers do not arrive together
    ctx.event(
        f"{step.label} is taking longer; trying again in {delay:.0f} s.",
        detail=f"Transient error (attempt {attempts}): {exc}",
    )
    return delay


def _fail(ctx: Context, step: Step, detail: str, *, customer: str = "") -> None:
    logger.warning("operation %s failed in %s: %s", ctx.operation.pk, step.name, detail)
    message = customer or ctx.kind.failed.format(step=step.label.lower())
    with transaction.atomic():
        if not _finish(ctx, State.FAILED, step, detail=detail, message=message, record=False):
            return
        if ctx.kind.on_failure is not None:
            try:
                ctx.kind.on_failure(ctx, message, detail)
                return
            except TransitionConflict:
                pass  # the server moved on meanwhile: the entry below still tells the story
        event_record(
            ctx.instance, message=message, detail=detail, step=step.name, operation=ctx.operation
        )


def _finish(
    ctx: Context,
    state: str,
    step: Step,
    *,
    detail: str = "",
    message: str = "",
    record: bool = True,
) -> bool:
    """End the operation (once: False if it had already ended) and note it on the timeline."""
    ended = InstanceOperation.objects.filter(pk=ctx.operation.pk, state__in=LIVE).update(
        state=state,
        finished_at=timezone.now(),
        error=detail,
        error_message=message,
        waiting_reason="",
        secret_encrypted="",
        updated_at=timezone.now(),
    )
    if not ended or not record:
        return bool(ended)
    if state == State.SUCCEEDED and ctx.kind.done:
        ctx.event(ctx.kind.done)
    elif state == State.CANCELLED:
        ctx.event(f"{ctx.kind.title} stopped: the server changed meanwhile.", detail=detail)
    return True


# --- The reaper ----------------------------------------------------------------------------------


def reap(now=None) -> list[tuple[int, str]]:
    """Operations nobody drives any more (a worker died, a message was lost): resume or fail.

    Returns (id, new chain) of the operations to resume, whose old task chains thereby end; a
    step past its deadline fails instead. Steps waiting for capacity or for staff are left be.
    """
    now = now or timezone.now()
    stalled = InstanceOperation.objects.filter(
        state__in=LIVE,
        updated_at__lt=now - timedelta(seconds=settings.OPERATION_STUCK_AFTER),
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    resume = []
    for operation in stalled.select_related(*RELATED):
        kind: Kind = KINDS[operation.kind]
        step = kind.step(operation.step)
        if step.external:
            continue  # waiting for people (a dedicated install): they move it on
        if _past_deadline(operation, step):
            ctx = Context(operation, kind, PveClient.for_cluster)
            _fail(ctx, step, "The operation made no progress for too long.")
            continue
        # Claim the row for this resume only if nobody touched it meanwhile; the new chain
        # ends whatever old task of this operation may still turn up.
        chain = uuid.uuid4().hex
        touched = InstanceOperation.objects.filter(
            pk=operation.pk, updated_at=operation.updated_at
        ).update(updated_at=now, chain=chain)
        if touched:
            event_record(
                operation.instance,
                message=f"Resuming {kind.noun} that had stalled.",
                step=operation.step,
                operation=operation,
            )
            resume.append((operation.pk, chain))
    return resume
