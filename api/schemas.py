"""What the API reads and writes, as pydantic schemas (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema

# --- Errors -----------------------------------------------------------------------------------


class FieldProblem(Schema):
    field: str | None
    message: str


class Error(Schema):
    code: str = Field(examples=["not_found"], description="Stable, for programs to act on.")
    message: str = Field(examples=["Not found."], description="For the person reading it.")
    field: str | None = Field(None, description="The input that was refused, if one was.")
    errors: list[FieldProblem] | None = None


# --- Catalogue --------------------------------------------------------------------------------


class Location(Schema):
    code: str = Field(examples=["fra1"])
    name: str
    country: str


class Image(Schema):
    slug: str = Field(examples=["debian-12"])
    name: str
    family: str
    default_user: str
    min_disk_gib: int


class Plan(Schema):
    id: int
    slug: str = Field(examples=["nvme-vps-m"])
    name: str
    family: str
    vcpus: int
    dedicated_cores: bool
    memory_mib: int
    disk_gib: int
    storage_class: str
    traffic_tb: int
    currency: str
    monthly_net_cents: int = Field(description="Monthly price excluding VAT, in cents.")
    setup_fee_net_cents: int


class PlanAvailability(Schema):
    location: str
    available: bool


class PlanDetail(Plan):
    availability: list[PlanAvailability]


# --- Servers and operations -------------------------------------------------------------------


class Step(Schema):
    label: str
    state: Literal["done", "current", "todo", "failed"]


class Operation(Schema):
    id: int
    server_id: int
    kind: str = Field(examples=["reboot"])
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    step: str = Field(description="The step running now (or where it stopped).")
    percent: int
    steps: list[Step]
    error_message: str = Field(description="What went wrong, for the customer ('' if nothing).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ServerSummary(Schema):
    id: int
    hostname: str
    status: str = Field(examples=["running"])
    family: str
    plan: str
    location: str
    image: str
    ipv4: str | None
    created_at: datetime
    busy_with: str | None = Field(description="The kind of the operation running, if any.")


class Server(ServerSummary):
    vcpus: int
    dedicated_cores: bool
    memory_mib: int
    disk_gib: int
    storage_class: str
    traffic_tb: int
    ipv6: str | None
    login_user: str
    ready_at: datetime | None
    suspended_reason: str
    waiting_for_reboot: str = Field(description="What applies at the next reboot ('' if nothing).")
    reboot_at: datetime | None = Field(description="A planned reboot, if any.")
    actions: list[str] = Field(description="What may be asked for now (power, reinstall …).")
    operation: Operation | None = Field(description="The operation running, if any.")
    traffic_used_bytes: int | None
    traffic_allowance_bytes: int


class PowerIn(Schema):
    action: Literal["start", "shutdown", "stop", "reboot", "reset"]


class RenameIn(Schema):
    hostname: str = Field(examples=["web-2"], max_length=63)


class ReinstallIn(Schema):
    image: str = Field(examples=["debian-12"], description="An image slug offered here.")
    ssh_keys: list[int] = Field(default_factory=list, description="Ids of your SSH keys.")
    generate_password: bool = False
    confirm_hostname: str = Field(description="The server's name, to confirm the disk is wiped.")


class PasswordResetIn(Schema):
    allow_reboot: bool = Field(
        False, description="Reboot if the guest agent cannot set the password live."
    )


class RebootPlanIn(Schema):
    at: datetime | None = Field(description="When to reboot; null cancels the plan.")


class RebootPlan(Schema):
    reboot_at: datetime | None


class Password(Schema):
    password: str = Field(description="Shown once: it is forgotten as it is read.")


Timeframe = Literal["hour", "day", "week", "month"]


class MetricsSample(Schema):
    time: int
    cpu: float | None = None
    maxcpu: float | None = None
    mem: float | None = None
    maxmem: float | None = None
    netin: float | None = None
    netout: float | None = None
    diskread: float | None = None
    diskwrite: float | None = None


class Metrics(Schema):
    timeframe: Timeframe
    state: Literal["ready", "loading"] = Field(
        description="loading: a worker is fetching them; ask again after Retry-After."
    )
    samples: list[MetricsSample]


# --- Network ----------------------------------------------------------------------------------


class PtrRecord(Schema):
    address: str = Field(examples=["203.0.113.10"])
    version: Literal[4, 6]
    ptr: str = Field(description="The name PowerDNS has for it ('' if none).")
    is_default: bool
    changing_to: str | None = Field(description="A change under way ('' = back to the default).")


class ReverseDns(Schema):
    managed: bool
    editable: bool = Field(description="The server's state allows a change now.")
    ipv6_network: str | None = Field(examples=["2001:db8:100:a::/64"])
    addresses: list[PtrRecord]


class ReverseDnsIn(Schema):
    address: str = Field(max_length=45, examples=["203.0.113.10"])
    ptr: str = Field(
        "", max_length=253, examples=["mail.example.com"], description="'' puts the default back."
    )


FirewallPolicy = Literal["ACCEPT", "DROP", "REJECT"]


class FirewallRule(Schema):
    direction: Literal["in", "out"] = "in"
    action: FirewallPolicy = "ACCEPT"
    protocol: Literal["", "tcp", "udp", "icmp", "icmpv6"] = Field(
        "", description="'' is any protocol."
    )
    port: str = Field("", max_length=20, examples=["22", "8000:8080"])
    source: str = Field("", max_length=50, examples=["198.51.100.0/24"], description="'' is any.")
    destination: str = Field("", max_length=50, description="'' is any.")
    comment: str = Field("", max_length=200)


class FirewallIn(Schema):
    enabled: bool
    policy_in: FirewallPolicy = "DROP"
    policy_out: FirewallPolicy = "ACCEPT"
    rules: list[FirewallRule] = Field(default_factory=list, description="In order, first first.")


class FirewallPreset(Schema):
    key: str
    name: str
    description: str


class Firewall(FirewallIn):
    applying: bool = Field(description="A change is being applied to the server now.")
    failure: str = Field(description="Why the last change could not be applied ('' if none).")
    changeable: bool
    filtering: bool = Field(
        description="False until the server's next reboot for one built "
        "before the firewall existed: its network card joins then."
    )
    presets: list[FirewallPreset]


class PresetIn(Schema):
    preset: str = Field(examples=["ssh"])


# --- Snapshots and backups ---------------------------------------------------------------------


class Snapshot(Schema):
    id: int
    label: str
    state: Literal["creating", "ready", "deleting"]
    created_at: datetime


class Snapshots(Schema):
    allowed: int = Field(description="How many the plan includes.")
    items: list[Snapshot]


class SnapshotIn(Schema):
    label: str = Field(max_length=40, examples=["before-upgrade"])


class Backup(Schema):
    id: int
    trigger: Literal["scheduled", "manual"]
    state: Literal["queued", "running", "ready", "failed", "deleting"]
    size_bytes: int | None
    created_at: datetime
    finished_at: datetime | None


class Backups(Schema):
    kept: int = Field(description="How many the plan keeps (0: not included).")
    offered: bool = Field(description="Backups are offered where the server is.")
    window: str = Field(description="When the scheduled ones run.")
    items: list[Backup]


# --- Orders and upgrades ----------------------------------------------------------------------


class ServerCreateIn(Schema):
    plan: str = Field(examples=["nvme-vps-m"], description="A plan slug.")
    location: str = Field(examples=["fra1"], description="A location code.")
    image: str = Field(examples=["debian-12"], description="An image slug.")
    hostname: str = Field(examples=["web-1"], max_length=63)
    ssh_keys: list[int] = Field(default_factory=list)
    generate_password: bool = False
    payment: Literal["checkout", "saved_card"] = Field(
        "checkout",
        description="checkout: pay on the returned Stripe Checkout page; saved_card: charge the "
        "card Stripe keeps for you (the one you paid with before), at once.",
    )


class Order(Schema):
    id: int
    status: Literal["awaiting_payment", "paid", "canceled"]
    plan: str
    location: str
    image: str
    hostname: str
    currency: str
    monthly_total_cents: int
    setup_total_cents: int
    vat_rate: str
    server_id: int | None = Field(description="The server, once the order is paid.")
    created_at: datetime
    paid_at: datetime | None


class OrderCreated(Schema):
    order: Order
    checkout_url: str | None = Field(description="Where to pay (payment=checkout).")
    payment_error: str | None = Field(
        description="Why paying did not start or was refused (a declined saved card ...); the "
        "order stays payable: POST /orders/{id}/checkout or /orders/{id}/pay-with-saved-card."
    )


class Checkout(Schema):
    checkout_url: str


class Card(Schema):
    label: str = Field(examples=["Visa •••• 4242"])
    brand: str = Field(examples=["visa"])
    last4: str = Field(examples=["4242"])
    expiry: str = Field(examples=["12/34"], description="MM/YY; good until the month's end.")


class SavedCard(Schema):
    card: Card | None = Field(description="None: no saved card; pay on Checkout.")


class UpgradeOption(Schema):
    plan: str
    kind: Literal["upgrade", "downgrade"]
    changes: list[str]
    live: bool = Field(description="Takes effect without a reboot.")
    monthly_total_cents: int
    due_now_cents: int | None = Field(description="An upgrade: charged now, prorated, VAT incl.")
    quote: str | None = Field(description="Pass to POST …/upgrade within 15 minutes.")
    refused: str = Field(description="Why it cannot be chosen ('' when it can).")


class UpgradeIn(Schema):
    quote: str
    keep_disk: bool = Field(False, description="CPU and RAM only: the disk keeps its size.")


class DowngradeIn(Schema):
    plan: str = Field(description="A smaller plan's slug; it applies from the next period.")


class Upgrade(Schema):
    id: int
    kind: Literal["upgrade", "downgrade"]
    state: str
    to_plan: str
    amount_due_cents: int
    effective_at: datetime | None
    pay_url: str = Field(description="Stripe's page to pay the upgrade's invoice, if it waits.")
    error: str


# --- SSH keys ---------------------------------------------------------------------------------


class SSHKey(Schema):
    id: int
    name: str
    key_type: str
    fingerprint: str
    created_at: datetime


class SSHKeyIn(Schema):
    name: str = Field(max_length=100)
    public_key: str = Field(max_length=16384)
