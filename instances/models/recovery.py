"""A server's snapshots and backups, as the portal knows them (pages read these, never PVE)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from instances.models.infrastructure import OSImage
from instances.models.servers import Instance


class InstanceSnapshot(models.Model):
    """A snapshot of a server's disks on its host (PVE `snapshot`), taken for the customer.

    Rows stay once the snapshot is gone (deleted, or destroyed with the VM by a reinstall, a
    restore or the removal), with the time it went.
    """

    class State(models.TextChoices):
        CREATING = "creating", "being taken"
        READY = "ready", "ready"
        DELETING = "deleting", "being deleted"
        DELETED = "deleted", "deleted"

    SHOWN = (State.CREATING, State.READY, State.DELETING)

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField("PVE snapshot name", max_length=40)
    label = models.CharField(max_length=40, help_text="The customer's name for it.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.CREATING)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "name"],
                condition=~Q(state="deleted"),
                name="snapshot_unique_live_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} of {self.instance_id} ({self.state})"


class InstanceBackup(models.Model):
    """A vzdump archive of a server on its cluster's backup storage."""

    class State(models.TextChoices):
        QUEUED = "queued", "waiting"
        RUNNING = "running", "in progress"
        READY = "ready", "available"
        FAILED = "failed", "failed"
        DELETING = "deleting", "being deleted"
        DELETED = "deleted", "deleted"

    SHOWN = (State.QUEUED, State.RUNNING, State.READY, State.FAILED, State.DELETING)

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "scheduled"
        MANUAL = "manual", "on demand"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="backups")
    trigger = models.CharField(max_length=9, choices=Trigger.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    storage = models.CharField("PVE storage", max_length=64, blank=True)
    node = models.CharField("written by node", max_length=64, blank=True)
    volid = models.CharField("PVE volume", max_length=255, blank=True)
    size_bytes = models.BigIntegerField("size (bytes)", null=True, blank=True)
    # What the server ran when it was backed up (a restore brings that system back).
    os_image = models.ForeignKey(
        OSImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True, help_text="For staff: why it failed, PVE's own words.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["instance", "trigger", "created_at"], name="backup_scheduled_at")
        ]

    def __str__(self) -> str:
        return f"backup {self.pk} of {self.instance_id} ({self.state})"

    @property
    def marker(self) -> str:
        """The archive's notes, by which the portal finds it on the storage."""
        return f"portal-backup={self.pk}"
