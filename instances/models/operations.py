"""One row per change to a server: what was asked, by whom, and how far it got."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from instances.models.servers import Instance, InstanceEvent


class InstanceOperation(models.Model):
    """A change to a server (build, power, reinstall, ...), driven step by step by the engine.

    At most one operation per server is live (queued or running): a partial unique constraint
    holds that, whatever the code does. The steps of each kind are in instances/operations/.
    """

    class Kind(models.TextChoices):
        BUILD = "build"
        INSTALL = "install", "dedicated install"
        START = "start"
        SHUTDOWN = "shutdown", "shut down"
        STOP = "stop"
        REBOOT = "reboot"
        RESET = "reset"
        REINSTALL = "reinstall"
        PASSWORD = "password", "root password reset"
        RENAME = "rename"
        RESIZE = "resize", "upgrade"
        MIGRATE = "migrate", "move to another host"
        SUSPEND = "suspend", "suspension"
        UNSUSPEND = "unsuspend", "service restore"
        TERMINATE = "terminate", "removal"
        SNAPSHOT = "snapshot", "snapshot"
        ROLLBACK = "rollback", "rollback to a snapshot"
        SNAPSHOT_DELETE = "snapshot_delete", "snapshot deletion"
        BACKUP = "backup", "backup"
        RESTORE = "restore", "restore from a backup"
        FIREWALL = "firewall", "firewall change"
        REVERSE_DNS = "reverse_dns", "reverse DNS change"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    LIVE = (State.QUEUED, State.RUNNING)

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    actor = models.CharField(
        max_length=8, choices=InstanceEvent.Actor.choices, default=InstanceEvent.Actor.SYSTEM
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the kind needs to know (an image id, a hostname); never a secret.
    params = models.JSONField(default=dict, blank=True)
    # A root password on its way to the server: encrypted, and wiped once PVE has it.
    secret_encrypted = models.TextField(blank=True, editable=False)

    step = models.CharField(max_length=32, blank=True)
    step_started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Transient failures of the current step"
    )
    task_upid = models.CharField("PVE task waited on", max_length=200, blank=True)
    looked_at = models.DateTimeField("last looked at PVE", null=True, blank=True)
    waiting_reason = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True, help_text="For staff: what went wrong, PVE's own words.")
    error_message = models.TextField(blank=True, help_text="What the customer was told.")

    # The one chain of tasks that may drive the operation: queueing or resuming starts a new
    # chain, and a task of an older one (redelivered, or re-queued by a slow worker) just ends.
    chain = models.CharField(max_length=32, blank=True, editable=False)
    # A worker claims the operation for a while (conditional UPDATE), so two never drive it at
    # once; a claim left by a dead worker simply expires.
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance"],
                condition=Q(state__in=["queued", "running"]),
                name="instance_one_live_operation",
            ),
        ]
        indexes = [models.Index(fields=["state", "updated_at"], name="operation_state_updated")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.instance_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE
