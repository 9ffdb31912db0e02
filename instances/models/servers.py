"""Customers' servers and their timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from instances.models.infrastructure import (
    Cluster,
    Family,
    IPAddress,
    Location,
    Node,
    OSImage,
    StorageClass,
)


class Instance(models.Model):
    """A customer's server. Its spec is a copy of the order's; instances know nothing of money."""

    class Status(models.TextChoices):
        PENDING = "pending"
        QUEUED = "queued"
        PROVISIONING = "provisioning"
        RUNNING = "running"
        STOPPED = "stopped"
        SUSPENDED = "suspended"
        FAILED = "failed"
        TERMINATING = "terminating"
        TERMINATED = "terminated"

    LIVE = (
        Status.QUEUED,
        Status.PROVISIONING,
        Status.RUNNING,
        Status.STOPPED,
        Status.SUSPENDED,
        Status.FAILED,
        Status.TERMINATING,
    )

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="instances"
    )
    external_ref = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text="Who asked for it (e.g. order:42); creating twice with one ref gives one server.",
    )
    hostname = models.CharField(max_length=63)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="instances")
    family = models.CharField(max_length=16, choices=Family.choices)
    plan_name = models.CharField(max_length=64, blank=True)
    vcpus = models.PositiveIntegerField()
    dedicated_cores = models.BooleanField(default=False)
    memory_mib = models.PositiveIntegerField()
    disk_gib = models.PositiveIntegerField()
    storage_class = models.CharField(max_length=8, choices=StorageClass.choices)
    traffic_tb = models.PositiveSmallIntegerField(
        "traffic allowance (TB a month)", default=0, help_text="0: not metered"
    )
    max_vcpus = models.PositiveSmallIntegerField(
        "vCPU ceiling",
        default=0,
        help_text="vCPUs its CPU layout takes without a reboot (PVE cores, with CPU and memory "
        "hotplug); 0: built before live upgrades, the layout comes at its next reboot.",
    )
    # The plan's noisy-neighbour limits, set on the VM at build and at every resize (0: none).
    net_rate_mbit = models.PositiveIntegerField("network rate (Mbit/s)", default=0)
    disk_iops_rd = models.PositiveIntegerField("disk read IOPS", default=0)
    disk_iops_wr = models.PositiveIntegerField("disk write IOPS", default=0)
    disk_mbps_rd = models.PositiveIntegerField("disk read (MB/s)", default=0)
    disk_mbps_wr = models.PositiveIntegerField("disk write (MB/s)", default=0)
    cpu_units = models.PositiveIntegerField(
        "CPU weight", default=0, help_text="PVE cpuunits against the node's other VMs"
    )
    # The plan's snapshots and backups (instances/snapshots.py, instances/backups.py).
    snapshots_max = models.PositiveSmallIntegerField(
        "snapshots allowed", default=0, help_text="How many snapshots it may keep; 0: none."
    )
    backups_kept = models.PositiveSmallIntegerField(
        "backups kept",
        default=0,
        help_text="Daily backups, the newest this many kept; 0: backups not included.",
    )
    os_image = models.ForeignKey(OSImage, on_delete=models.PROTECT, related_name="instances")
    ssh_keys = models.TextField(blank=True, help_text="authorized_keys lines put on the server")
    # A generated root password waits here, encrypted, until the customer has seen it once.
    new_password_encrypted = models.TextField(blank=True, editable=False)

    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, null=True, blank=True, related_name="instances"
    )
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, null=True, blank=True, related_name="instances"
    )
    # Set while a live migration moves the server: it occupies capacity on both nodes.
    moving_from = models.ForeignKey(
        Node, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    vmid = models.PositiveIntegerField("VMID", null=True, blank=True)
    ipv4 = models.ForeignKey(
        IPAddress, on_delete=models.PROTECT, null=True, blank=True, related_name="instances"
    )
    ipv6 = models.CharField("IPv6", max_length=50, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Why the server is suspended, in the words of whoever suspended it (billing's, support's).
    suspended_reason = models.CharField(max_length=300, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    # PVE config keys a change left pending, applied at the next reboot (PVE's /pending).
    pending_changes = models.JSONField(default=list, blank=True, editable=False)
    reboot_at = models.DateTimeField(
        "reboot planned for", null=True, blank=True, help_text="Applies the pending changes."
    )
    reboot_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What the status sync last saw of the VM on its cluster (instances/sync.py).
    observed_at = models.DateTimeField("last seen on Proxmox", null=True, blank=True)
    missing_since = models.DateTimeField(
        "missing on Proxmox since",
        null=True,
        blank=True,
        help_text="Set when the VM is not on its cluster any more: staff look into it.",
    )
    # PVE's network byte counters (since the VM started) as last read, to add up the traffic.
    net_in_seen = models.BigIntegerField(default=0, editable=False)
    net_out_seen = models.BigIntegerField(default=0, editable=False)
    uptime_seen = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "vmid"],
                condition=Q(vmid__isnull=False) & ~Q(status="terminated"),
                name="instance_unique_vmid_per_cluster",
            ),
            models.UniqueConstraint(
                fields=["ipv4"],
                condition=Q(ipv4__isnull=False) & ~Q(status="terminated"),
                name="instance_unique_live_ipv4",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hostname} (#{self.pk})"

    @property
    def login_user(self) -> str:
        return self.os_image.default_user

    @property
    def is_settled(self) -> bool:
        """No build or removal is under way (operations on a settled server are shown apart)."""
        return self.status not in {
            self.Status.PENDING,
            self.Status.QUEUED,
            self.Status.PROVISIONING,
            self.Status.TERMINATING,
        }


class InstanceEvent(models.Model):
    """Everything that happened to a server: the audit trail and the customer's timeline."""

    class Actor(models.TextChoices):
        SYSTEM = "system"
        CUSTOMER = "customer"
        STAFF = "staff"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="events")
    operation = models.ForeignKey(
        "instances.InstanceOperation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    old_status = models.CharField(max_length=16, blank=True)
    new_status = models.CharField(max_length=16, blank=True)
    step = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True, help_text="What the customer reads in the timeline.")
    detail = models.TextField(blank=True, help_text="For staff only, e.g. Proxmox's own message.")
    actor = models.CharField(max_length=8, choices=Actor.choices, default=Actor.SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.instance}: {self.old_status}→{self.new_status} {self.step} {self.message}"


class InstanceTraffic(models.Model):
    """Bytes a server received and sent in one traffic period (a month from its creation day)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="traffic")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start"]
        verbose_name_plural = "instance traffic"
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "period_start"], name="traffic_one_row_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} from {self.period_start:%Y-%m-%d}"

    @property
    def total_bytes(self) -> int:
        return self.bytes_in + self.bytes_out
