"""Infrastructure: locations, clusters, nodes, storage, OS images, IPs, dedicated machines."""

from __future__ import annotations

import ipaddress

from django.db import models
from django.db.models import Q
from django_countries.fields import CountryField

from common import crypto


class Family(models.TextChoices):
    STORAGE_VPS = "storage_vps", "Storage VPS"
    NVME_VPS = "nvme_vps", "NVMe VPS"
    VDS = "vds", "VDS"
    DEDICATED = "dedicated", "Dedicated"


class Location(models.Model):
    code = models.SlugField(max_length=32, unique=True, help_text="e.g. eu-central-1")
    name = models.CharField(max_length=100)
    country = CountryField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Cluster(models.Model):
    """One Proxmox VE cluster, reached over its HTTPS API with an API token."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="clusters")
    name = models.SlugField(max_length=64, unique=True)
    api_url = models.URLField("API URL", help_text="https://pve1.example.net:8006")
    token_id = models.CharField(max_length=128, help_text="user@realm!tokenname")
    token_secret_encrypted = models.TextField(editable=False, blank=True)
    ca_bundle = models.TextField(
        "CA certificate (PEM)",
        blank=True,
        help_text="The CA (or self-signed certificate) that signed the API's TLS certificate.",
    )
    tls_fingerprint = models.CharField(
        "pinned certificate SHA-256",
        max_length=128,
        blank=True,
        help_text="Alternative to a CA: the SHA-256 fingerprint of the API's certificate.",
    )
    vmid_min = models.PositiveIntegerField("first VMID", default=1000)
    vmid_max = models.PositiveIntegerField("last VMID", default=999999)
    bridge = models.CharField(max_length=32, default="vmbr0")
    backup_storage = models.CharField(
        max_length=64,
        blank=True,
        help_text="PVE storage (content type backup) the servers' backups go to, e.g. a shared "
        "NFS or PBS storage; empty: no backups on this cluster.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def token_secret(self) -> str:
        return crypto.decrypt(self.token_secret_encrypted)

    @token_secret.setter
    def token_secret(self, value: str) -> None:
        self.token_secret_encrypted = crypto.encrypt(value)


class StorageClass(models.TextChoices):
    NVME = "nvme", "NVMe"
    BULK = "bulk", "Bulk (HDD-class)"


class StoragePool(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="storage_pools")
    name = models.CharField(max_length=64, help_text="PVE storage id, e.g. nvme-pool")
    storage_class = models.CharField(max_length=8, choices=StorageClass.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="storagepool_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name} ({self.storage_class})"


class Node(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        DRAINING = "draining"
        OFFLINE = "offline"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    name = models.CharField(max_length=64)
    cores = models.PositiveIntegerField(help_text="physical cores")
    memory_mib = models.PositiveIntegerField("RAM (MiB)")
    cpu_overcommit = models.DecimalField(max_digits=4, decimal_places=2, default=4)
    ram_overcommit = models.DecimalField(max_digits=4, decimal_places=2, default=1)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    # A draining node's servers are live-migrated away one at a time (instances/drain.py).
    drain_paused = models.BooleanField(
        default=False, help_text="The drain of this node is paused: no further server is moved."
    )
    drain_problems = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Servers the drain could not move, with the reason (by instance id).",
    )

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="node_unique_name")]

    def __str__(self) -> str:
        return f"{self.cluster}/{self.name}"


class NodeStorage(models.Model):
    """How much of a storage pool one node can give to servers."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="storages")
    pool = models.ForeignKey(StoragePool, on_delete=models.CASCADE, related_name="node_storages")
    capacity_gib = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "pool"], name="nodestorage_unique_pool")
        ]

    def __str__(self) -> str:
        return f"{self.node} {self.pool.name}: {self.capacity_gib} GiB"


class OSImage(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100, help_text="e.g. Debian 12")
    family = models.CharField(max_length=32, help_text="e.g. debian")
    default_user = models.CharField(max_length=32, default="root")
    min_disk_gib = models.PositiveIntegerField(default=10)
    serial_console = models.BooleanField(
        "serial console",
        default=True,
        help_text="Its template has a serial port (serial0) with a login prompt: the browser "
        "console offers a text terminal as well as the screen.",
    )
    active = models.BooleanField(default=True)
    display_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["display_order", "name"]
        verbose_name = "OS image"

    def __str__(self) -> str:
        return self.name


class OSTemplate(models.Model):
    """Where an image's cloud-init template VM lives: per cluster, or per node for local storage."""

    image = models.ForeignKey(OSImage, on_delete=models.CASCADE, related_name="templates")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="templates")
    node = models.ForeignKey(
        Node,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text="Only when the template sits on a node's local storage.",
    )
    vmid = models.PositiveIntegerField("template VMID")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "cluster"],
                condition=Q(node__isnull=True),
                name="ostemplate_unique_per_cluster",
            ),
            models.UniqueConstraint(
                fields=["image", "cluster", "node"],
                condition=Q(node__isnull=False),
                name="ostemplate_unique_per_node",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image} on {self.node or self.cluster} (VMID {self.vmid})"


class IPPool(models.Model):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="ip_pools")
    name = models.CharField(max_length=64, unique=True)
    network = models.CharField(max_length=43, help_text="IPv4 network, e.g. 203.0.113.0/24")
    gateway = models.GenericIPAddressField(protocol="IPv4")
    dns_servers = models.CharField(max_length=200, default="1.1.1.1 9.9.9.9")
    ipv6_prefix = models.CharField(
        max_length=43,
        blank=True,
        help_text="Optional, e.g. 2001:db8:100::/48; each server gets its own /64 from it.",
    )
    ipv6_gateway = models.GenericIPAddressField(
        "IPv6 gateway",
        protocol="IPv6",
        null=True,
        blank=True,
        help_text="The routers' address for the servers' /64s, often a link-local fe80::1.",
    )
    quarantine_days = models.PositiveIntegerField(
        default=7, help_text="Days a released address rests before it is handed out again."
    )

    class Meta:
        verbose_name = "IP pool"

    def __str__(self) -> str:
        return f"{self.name} ({self.network})"

    @property
    def prefix_length(self) -> int:
        return ipaddress.ip_network(self.network, strict=False).prefixlen


class IPAddress(models.Model):
    class State(models.TextChoices):
        FREE = "free"
        ASSIGNED = "assigned"
        QUARANTINED = "quarantined"
        RESERVED = "reserved", "reserved (not for servers)"

    pool = models.ForeignKey(IPPool, on_delete=models.PROTECT, related_name="addresses")
    address = models.GenericIPAddressField(protocol="IPv4", unique=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.FREE)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pool", "id"]
        verbose_name = "IP address"
        verbose_name_plural = "IP addresses"
        indexes = [models.Index(fields=["pool", "state"])]

    def __str__(self) -> str:
        return self.address


class DedicatedServer(models.Model):
    """A physical machine in the inventory; staff install it for a dedicated-server order."""

    class State(models.TextChoices):
        AVAILABLE = "available"
        ASSIGNED = "assigned"
        INSTALLING = "installing"
        READY = "ready"
        RETIRED = "retired"

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="dedicated")
    asset_tag = models.CharField(max_length=32, unique=True)
    model = models.CharField(max_length=100, help_text="e.g. Dell R650")
    cpu = models.CharField("CPU", max_length=100)
    cores = models.PositiveIntegerField()
    memory_gib = models.PositiveIntegerField("RAM (GiB)")
    disks = models.CharField(max_length=200, help_text="e.g. 2× 1.92 TB NVMe")
    state = models.CharField(max_length=12, choices=State.choices, default=State.AVAILABLE)
    instance = models.OneToOneField(
        "instances.Instance",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dedicated_server",
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["location", "asset_tag"]

    def __str__(self) -> str:
        return f"{self.asset_tag} ({self.model}, {self.location.code})"
