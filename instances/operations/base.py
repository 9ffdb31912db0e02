"""What an operation is made of: one ordered table of steps per kind, and what a step may answer.

A step is a function `step(ctx) -> Wait | None`: None when its work is done (the engine moves to
the next step), `Wait(seconds)` when PVE is still busy (the engine comes back later; a step never
blocks on a PVE task). Steps are idempotent: a step that finds its work already done moves on.
A step raises StepFailed for a permanent problem and TryAgain (or a ProxmoxTransient from the
client) for a passing one, which the engine retries with backoff.

This module and the kind modules import neither the engine nor proxmoxer, so pages can read the
step tables (labels for the progress bar) cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from common import crypto
from instances.models import Instance, InstanceOperation
from instances.operations import waiting
from instances.state import event_record, instance_transition

if TYPE_CHECKING:
    from instances.proxmox import PveClient

Status = Instance.Status
# A Wait with this many seconds is not polled: someone (staff) moves the operation on.
EXTERNAL = -1.0


@dataclass(frozen=True)
class Wait:
    """The step is not finished; look again after `seconds` (EXTERNAL: when told to)."""

    seconds: float
    reason: str = ""


class StepFailed(Exception):
    """A permanent problem: the operation stops and staff are told (the message is for them).

    `customer`, when given, is what the customer reads instead of the kind's usual words (for a
    failure they can do something about).
    """

    def __init__(self, message: str, *, customer: str = "") -> None:
        super().__init__(message)
        self.customer = customer


class TryAgain(Exception):
    """A passing problem (the engine retries the step with backoff; the message is for staff)."""


@dataclass(frozen=True)
class Step:
    name: str
    label: str  # what the customer reads on the progress bar
    run: Callable[[Context], Wait | None]
    # A step waiting for capacity or for people has no deadline.
    deadline: bool = True
    # Waits for people (staff), who move the operation on: never polled, never reaped.
    external: bool = False


@dataclass(frozen=True)
class Kind:
    """One kind of operation: its steps in order, and what the customer reads about it."""

    name: str
    noun: str  # "a reboot": "A reboot is in progress; try again when it has finished."
    steps: tuple[Step, ...]
    # The server statuses it may be asked from.
    allowed_from: frozenset[str]
    requested: str  # timeline entry when asked for, e.g. "Reboot requested."
    done: str  # timeline entry when it succeeds ("" when the last step says it)
    # What the customer reads when it fails (staff see PVE's message in the event's detail).
    failed: str
    # Called when it fails for good, inside the failing transaction (e.g. a build marks the
    # server failed).
    on_failure: Callable[[Context, str], None] | None = None
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(step.name for step in self.steps))

    def step(self, name: str) -> Step:
        return self.steps[self.names.index(name)] if name else self.steps[0]

    def after(self, name: str) -> Step | None:
        index = self.names.index(name) + 1
        return self.steps[index] if index < len(self.steps) else None

    def labels(self) -> list[str]:
        """The progress bar's labels in order (consecutive steps of one label are one)."""
        labels: list[str] = []
        for step in self.steps:
            if not labels or labels[-1] != step.label:
                labels.append(step.label)
        return labels

    @property
    def title(self) -> str:
        return self.noun.split(" ", 1)[-1].capitalize()


class Context:
    """What a step works with: its operation, the server, and the server's PVE cluster."""

    def __init__(
        self,
        operation: InstanceOperation,
        kind: Kind,
        client_factory: Callable[[Any], PveClient],
    ) -> None:
        self.operation = operation
        self.kind = kind
        self.instance: Instance = operation.instance
        self.client_factory = client_factory

    @cached_property
    def pve(self) -> PveClient:
        return self.client_factory(self.instance.cluster)

    @property
    def node(self) -> str:
        return self.instance.node.name

    @property
    def vmid(self) -> int:
        return self.instance.vmid

    @property
    def params(self) -> dict:
        return self.operation.params

    # --- the operation's row ---------------------------------------------------------------

    def save(self, **fields) -> None:
        """Write fields of the operation (and keep this copy in step)."""
        InstanceOperation.objects.filter(pk=self.operation.pk).update(
            updated_at=timezone.now(), **fields
        )
        for name, value in fields.items():
            setattr(self.operation, name, value)

    def goto(self, step: str) -> None:
        """Go back to an earlier step: its work has to be done again (retries keep counting)."""
        self.save(step=step, step_started_at=timezone.now(), task_upid="")

    def rewind(self) -> None:
        """Go back to the step before this one (which started what this one waited for)."""
        index = self.kind.names.index(self.operation.step or self.kind.names[0])
        self.goto(self.kind.names[max(0, index - 1)])

    @property
    def secret(self) -> str:
        """The password this operation carries to the server ("" if none)."""
        return crypto.decrypt(self.operation.secret_encrypted)

    def offer_password(self) -> None:
        """This operation's password (or none) replaces any the customer has not seen yet: it
        waits, encrypted, until they have seen it once (services.password_reveal)."""
        Instance.objects.filter(pk=self.instance.pk).update(
            new_password_encrypted=self.operation.secret_encrypted
        )

    def forget_secret(self) -> None:
        """PVE (or the guest) has the password now; ours is no longer needed."""
        if self.operation.secret_encrypted:
            self.save(secret_encrypted="")

    # --- the server ------------------------------------------------------------------------

    def event(self, message: str, detail: str = "") -> None:
        event_record(
            self.instance,
            message=message,
            detail=detail,
            step=self.operation.step,
            operation=self.operation,
        )

    def transition(self, to: str, reason: str, *, expect: set[str] | None = None, **fields):
        """Change the server's status on behalf of whoever asked for this operation."""
        self.instance = instance_transition(
            instance_id=self.instance.pk,
            to=to,
            reason=reason,
            expect=expect,
            actor=self.operation.actor,
            actor_user=self.operation.actor_user,
            operation=self.operation,
            **fields,
        )
        self.operation.instance = self.instance
        return self.instance

    # --- waiting on PVE --------------------------------------------------------------------

    def wait_key(self, what: str) -> str:
        """Names a kind of wait (a clone, a boot) on this cluster, to learn how long it takes."""
        return f"{self.instance.cluster_id}:{what}"

    def task_started(self, upid: str | None, what: str, reason: str) -> Wait | None:
        """Remember the PVE task this step started and give it a moment: quick tasks (a config
        change) usually end within a few hundred milliseconds, which saves a trip through the
        queue; a longer one is looked at again when it is expected to end."""
        if not upid:
            return None
        self.save(task_upid=upid, looked_at=None)
        status = self.pve.wait_task(upid, timeout=waiting.INLINE, poll=0.05)
        return self._after_look(status.running, status, what, reason)

    def task_outcome(self, what: str, reason: str) -> Wait | None:
        """For a step that started a PVE task: wait while it runs, raise if it failed.

        None when the task ended well, and also when no task is recorded (the step had not
        started it, or its id was lost: the caller checks PVE's state and starts anew).
        """
        if not self.operation.task_upid:
            return None
        status = self.pve.task_status(self.operation.task_upid)
        return self._after_look(status.running, status, what, reason)

    def _after_look(self, running: bool, status, what: str, reason: str) -> Wait | None:
        if running:
            return self.wait(what, reason)
        self.waited(what)
        self.save(task_upid="")
        if not status.ok:
            raise status.error()
        return None

    def wait(self, what: str, reason: str) -> Wait:
        """Still busy: when to look again, from how long this kind of wait usually takes."""
        now = timezone.now()
        waited = (now - (self.operation.step_started_at or now)).total_seconds()
        self.save(looked_at=now)
        return Wait(waiting.next_look(self.wait_key(what), waited), reason)

    def waited(self, what: str) -> None:
        """The wait is over: note how long it took, so the next one is looked at on time.

        It ended between the last look that found it busy and now; the earlier bound is kept,
        so the next wait is looked at a little early (and then often) rather than late.
        """
        started, looked = self.operation.step_started_at, self.operation.looked_at
        if started is None:
            return
        end = looked if looked and looked > started else timezone.now()
        waiting.record(self.wait_key(what), (end - started).total_seconds())


def started_step(ctx: Context) -> None:
    """Nothing to do: a step that only names a stage of the operation on the progress bar."""
    return None


def transition_step(to: str, reason: str, **fields) -> Callable[[Context], None]:
    """A last step that moves the server to status `to`."""

    def step(ctx: Context) -> None:
        if ctx.instance.status != to:
            ctx.transition(to, reason, **fields)

    return step
