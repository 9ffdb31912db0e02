"""Money: the catalog, orders, Stripe's customers/subscriptions/invoices mirrored, the ledger."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.vat import TREATMENT_CHOICES, VatSituation
from instances.models import Family, Instance, Location, OSImage, StorageClass


def money(cents: int, currency: str = "EUR") -> str:
    """`499, "EUR"` → `€4.99`; negative amounts keep their sign."""
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency.upper(), currency.upper() + " ")
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{symbol}{whole:,}.{rest:02d}"


class PlanQuerySet(models.QuerySet):
    def on_sale(self):
        """Plans a customer can order now: active and pushed to Stripe."""
        return self.filter(active=True).exclude(stripe_price_id="")


def default_currency() -> str:
    return settings.CURRENCY


class Plan(models.Model):
    """One size of one product line, as sold. Prices are integer cents, excluding VAT."""

    family = models.CharField(max_length=16, choices=Family.choices)
    name = models.CharField(max_length=60, help_text="Size name, e.g. NVMe VPS M")
    slug = models.SlugField(max_length=60, unique=True)
    vcpus = models.PositiveSmallIntegerField("vCPUs")
    dedicated_cores = models.BooleanField(default=False)
    memory_mib = models.PositiveIntegerField("RAM (MiB)")
    disk_gib = models.PositiveIntegerField("disk (GiB)")
    storage_class = models.CharField(max_length=8, choices=StorageClass.choices)
    traffic_tb = models.PositiveSmallIntegerField("traffic (TB/month)", default=32)
    # Noisy-neighbour limits its servers get (0: none), applied at build and at every resize.
    net_rate_mbit = models.PositiveIntegerField("network rate (Mbit/s)", default=0)
    disk_iops_rd = models.PositiveIntegerField("disk read IOPS", default=0)
    disk_iops_wr = models.PositiveIntegerField("disk write IOPS", default=0)
    disk_mbps_rd = models.PositiveIntegerField("disk read (MB/s)", default=0)
    disk_mbps_wr = models.PositiveIntegerField("disk write (MB/s)", default=0)
    cpu_units = models.PositiveIntegerField(
        "CPU weight", default=0, help_text="PVE cpuunits; dedicated cores weigh more"
    )
    # Snapshots a server may keep, and its daily backups kept (0: not included).
    snapshots_max = models.PositiveSmallIntegerField("snapshots", default=0)
    backups_kept = models.PositiveSmallIntegerField(
        "backups kept", default=0, help_text="Daily backups, the newest this many kept; 0: none"
    )
    price_cents = models.PositiveIntegerField("monthly price (cents, excl. VAT)")
    currency = models.CharField(max_length=3, default=default_currency)
    setup_fee_cents = models.PositiveIntegerField("setup fee (cents, excl. VAT)", default=0)
    active = models.BooleanField(default=True, help_text="Offered to new orders")
    display_order = models.PositiveSmallIntegerField(default=0)
    stripe_product_id = models.CharField(max_length=64, blank=True)
    stripe_price_id = models.CharField(
        max_length=64, blank=True, help_text="The Stripe price new orders use (set by sync)"
    )
    stripe_price_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text="The amount stripe_price_id charges"
    )

    objects = PlanQuerySet.as_manager()

    class Meta:
        ordering = ["family", "display_order", "price_cents"]
        constraints = [models.CheckConstraint(condition=Q(vcpus__gt=0), name="plan_has_vcpus")]

    def __str__(self) -> str:
        return self.name

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    @property
    def price(self) -> str:
        return money(self.price_cents, self.currency)

    @property
    def stripe_in_sync(self) -> bool:
        return bool(self.stripe_price_id) and self.stripe_price_cents == self.price_cents


class TaxRate(models.Model):
    """A Stripe tax rate we created, one per (country, percentage)."""

    country = models.CharField(max_length=2)
    percentage = models.DecimalField(max_digits=5, decimal_places=2)
    stripe_tax_rate_id = models.CharField(max_length=64, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["country", "percentage"], name="taxrate_unique")
        ]

    def __str__(self) -> str:
        return f"VAT {self.country} {self.percentage}%"


class BillingAccount(models.Model):
    """The customer's Stripe customer."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="billing_account"
    )
    stripe_customer_id = models.CharField(max_length=64, unique=True)
    # Stripe disputes (chargebacks) of this customer's payments not decided yet: staff look
    # into them, and no new order is taken meanwhile (billing/disputes.py).
    open_disputes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.stripe_customer_id})"


class Order(models.Model):
    """A customer's order for one server; amounts are fixed by the server when it is placed."""

    class Status(models.TextChoices):
        AWAITING_PAYMENT = "awaiting_payment", "awaiting payment"
        PAID = "paid"
        CANCELED = "canceled"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="orders")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    os_image = models.ForeignKey(OSImage, on_delete=models.PROTECT, related_name="+")
    hostname = models.CharField(max_length=63)
    ssh_key_ids = models.JSONField(default=list, blank=True)
    generate_password = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.AWAITING_PAYMENT
    )
    # The quote the customer saw (server-computed), kept for support; Stripe's invoice is the bill.
    currency = models.CharField(max_length=3)
    monthly_net_cents = models.PositiveIntegerField()
    monthly_vat_cents = models.PositiveIntegerField()
    setup_net_cents = models.PositiveIntegerField()
    setup_vat_cents = models.PositiveIntegerField()
    vat_treatment = models.CharField(max_length=20, choices=TREATMENT_CHOICES)
    vat_country = models.CharField(max_length=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat_id = models.CharField(max_length=20, blank=True)
    stripe_price_id = models.CharField(max_length=64)
    stripe_checkout_session_id = models.CharField(max_length=80, blank=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # One paid order → exactly one server: a unique column, not only code.
    instance = models.OneToOneField(
        Instance, null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(instance__isnull=True) | Q(status="paid"),
                name="order_instance_only_when_paid",
            ),
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~Q(stripe_subscription_id=""),
                name="order_unique_subscription",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.plan}, {self.hostname})"

    @property
    def external_ref(self) -> str:
        """What the server is created under: asking twice for one order finds the same server."""
        return f"order:{self.pk}"

    @property
    def first_total_cents(self) -> int:
        return (
            self.monthly_net_cents
            + self.monthly_vat_cents
            + self.setup_net_cents
            + self.setup_vat_cents
        )

    @property
    def vat_situation(self) -> VatSituation:
        return VatSituation(self.vat_treatment, self.vat_country, self.vat_rate, self.vat_id)

    @property
    def is_payable(self) -> bool:
        return self.status == self.Status.AWAITING_PAYMENT


class Subscription(models.Model):
    """Stripe's subscription for an order, mirrored (always re-read from Stripe, never guessed)."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="subscription")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    stripe_subscription_id = models.CharField(max_length=64, unique=True)
    stripe_price_id = models.CharField(max_length=64, blank=True)
    # The size it pays for now: the order's, then each upgrade's or downgrade's once applied.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, related_name="+")
    status = models.CharField(max_length=24)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # Dunning (billing/lifecycle.py): since when it is past due, reminders sent, and whether
    # billing suspended its server (only such a suspension is lifted by paying).
    past_due_since = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    suspended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-order__created_at"]

    def __str__(self) -> str:
        return f"{self.stripe_subscription_id} ({self.status})"

    @property
    def is_current(self) -> bool:
        return self.status not in {"canceled", "incomplete_expired"}


class Upgrade(models.Model):
    """A change of a subscription's size the customer asked for (billing/upgrades.py).

    An upgrade is charged at once, prorated, through a Stripe subscription update that Stripe
    applies only once its invoice is paid (`pending_if_incomplete`); the server is resized when
    Stripe's subscription shows the new price. A downgrade takes effect at the next period.
    """

    class Kind(models.TextChoices):
        UPGRADE = "upgrade"
        DOWNGRADE = "downgrade"

    class State(models.TextChoices):
        REQUESTED = "requested"  # being sent to Stripe
        AWAITING_PAYMENT = "awaiting_payment", "awaiting payment"  # Stripe's pending_update
        SCHEDULED = "scheduled"  # a downgrade, from the next period on
        PAID = "paid"  # Stripe applied it; the server is being resized
        APPLIED = "applied"
        EXPIRED = "expired"  # not paid in time (or payment refused): nothing changed
        CANCELLED = "cancelled"  # a downgrade the customer took back before it began
        FAILED = "failed"

    LIVE = (State.REQUESTED, State.AWAITING_PAYMENT, State.SCHEDULED, State.PAID)

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="upgrades"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="upgrades"
    )
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_price_id = models.CharField(max_length=64)
    keep_disk = models.BooleanField(
        default=False,
        help_text="CPU and RAM only: the disk keeps its size (so a later "
        "downgrade needs no smaller disk)",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    # The quote: Stripe's invoice preview at this proration date, reused by the update itself.
    quote_key = models.CharField(max_length=64, unique=True)
    proration_date = models.DateTimeField()
    amount_due_cents = models.IntegerField(help_text="Due at once, VAT included (the preview)")
    currency = models.CharField(max_length=3)
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    amount_paid_cents = models.IntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Stripe drops it then")
    effective_at = models.DateTimeField(null=True, blank=True, help_text="A downgrade's start")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Never two changes in flight for one subscription.
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(state__in=["requested", "awaiting_payment", "scheduled", "paid"]),
                name="upgrade_one_live_per_subscription",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_plan} → {self.to_plan} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in self.LIVE


class Invoice(models.Model):
    """Stripe's invoice, mirrored for the billing page (Stripe's is the legal invoice)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invoices"
    )
    stripe_invoice_id = models.CharField(max_length=64, unique=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True)
    number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    subtotal_cents = models.IntegerField()
    tax_cents = models.IntegerField()
    total_cents = models.IntegerField()
    amount_paid_cents = models.IntegerField(default=0)
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    invoice_pdf = models.URLField(max_length=500, blank=True)
    issued_at = models.DateTimeField()
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.number or self.stripe_invoice_id


class StripeEvent(models.Model):
    """A webhook delivery as received; processed after commit by billing.tasks."""

    event_id = models.CharField(max_length=80, unique=True)
    type = models.CharField(max_length=80)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="stripeevent_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class LedgerEntry(models.Model):
    """Append-only money movements for finance; exports read only this table.

    Written from Stripe's objects (never from order state). One row per (kind, Stripe object):
    a replayed webhook finds its row already there. Rows are never updated or deleted.
    """

    class Kind(models.TextChoices):
        INVOICE_ISSUED = "invoice_issued", "invoice issued"
        INVOICE_PAID = "invoice_paid", "invoice paid"
        INVOICE_VOIDED = "invoice_voided", "invoice voided"
        PAYMENT = "payment"
        REFUND = "refund"
        CREDIT_NOTE = "credit_note", "credit note"
        # Corrections of rows above: an invoice written off, a credit note voided, a refund
        # that failed after it had been booked.
        INVOICE_UNCOLLECTIBLE = "invoice_written_off", "invoice written off"
        CREDIT_NOTE_VOIDED = "credit_note_voided", "credit note voided"
        REFUND_FAILED = "refund_failed", "refund failed"
        # Finance exports (billing/exports/): failed attempts, disputes, and Stripe's payouts
        # with the balance transactions each one pays out.
        PAYMENT_FAILED = "payment_failed", "payment failed"
        DISPUTE = "dispute"
        PAYOUT = "payout"
        PAYOUT_FAILED = "payout_failed", "payout failed"
        BALANCE_TRANSACTION = "balance_transaction", "balance transaction"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    currency = models.CharField(max_length=3)
    net_cents = models.BigIntegerField()
    vat_cents = models.BigIntegerField()
    gross_cents = models.BigIntegerField()
    country = models.CharField(max_length=2, blank=True)
    vat_treatment = models.CharField(max_length=20, choices=TREATMENT_CHOICES, blank=True)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=200, blank=True)
    stripe_object_id = models.CharField(max_length=80)
    stripe_invoice_id = models.CharField(max_length=80, blank=True)
    stripe_customer_id = models.CharField(max_length=80, blank=True)
    stripe_event_id = models.CharField(max_length=80, blank=True)
    # What the finance exports need, as Stripe's objects showed it when the row was written.
    # On payout and balance-transaction rows net = gross (no VAT: they move money, not sales)
    # and fee_cents is Stripe's fee; Stripe's own "net" is gross - fee.
    document_number = models.CharField(max_length=64, blank=True)
    corrects_number = models.CharField(
        max_length=64, blank=True, help_text="A credit note's invoice number"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    customer_vat_id = models.CharField(max_length=32, blank=True)
    mrr_cents = models.BigIntegerField(
        default=0, help_text="The recurring monthly amount (net) an invoice bills"
    )
    fee_cents = models.BigIntegerField(default=0)
    category = models.CharField(
        max_length=40, blank=True, help_text="A balance transaction's type / reporting category"
    )
    failure_reason = models.CharField(max_length=200, blank=True)
    stripe_subscription_id = models.CharField(max_length=80, blank=True)
    stripe_source_id = models.CharField(
        max_length=80, blank=True, help_text="The charge, refund or dispute money moved for"
    )
    stripe_payment_id = models.CharField(max_length=80, blank=True)
    stripe_payout_id = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["kind", "occurred_at"], name="ledger_kind_time"),
            models.Index(fields=["stripe_payout_id"], name="ledger_payout"),
            models.Index(fields=["stripe_payment_id"], name="ledger_payment"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["kind", "stripe_object_id"], name="ledger_once"),
            models.CheckConstraint(
                condition=Q(gross_cents=models.F("net_cents") + models.F("vat_cents")),
                name="ledger_gross_is_net_plus_vat",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.stripe_object_id} {money(self.gross_cents, self.currency)}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Ledger entries are append-only; record a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger entries are append-only; record a correcting entry instead.")


class BillingEvent(models.Model):
    """Every change of an order's or a subscription's state: old, new, why, who, and the Stripe
    event that caused it (billing/transitions.py writes them; lifecycle rules react to them)."""

    class Actor(models.TextChoices):
        SYSTEM = "system"
        CUSTOMER = "customer"
        STAFF = "staff"

    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="billing_events"
    )
    subscription = models.ForeignKey(
        Subscription,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billing_events",
    )
    field = models.CharField(max_length=32, default="status")
    old = models.CharField(max_length=40, blank=True)
    new = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=300)
    actor = models.CharField(max_length=8, choices=Actor.choices, default=Actor.SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stripe_event_id = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(order__isnull=False) | Q(subscription__isnull=False),
                name="billingevent_has_a_subject",
            )
        ]

    def __str__(self) -> str:
        subject = f"order {self.order_id}" if self.order_id else f"sub {self.subscription_id}"
        return f"{subject}: {self.field} {self.old or '—'} → {self.new} ({self.reason})"


class StripeRead(models.Model):
    """When a Stripe object was last read for the mirror: a read that started earlier than the
    one already applied is stale and is not written (events.py fetches outside any lock)."""

    key = models.CharField(max_length=80, unique=True)
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} read {self.started_at:%Y-%m-%d %H:%M:%S.%f}"


class ExportRun(models.Model):
    """One finance export asked for (billing/exports/): run at once or by a worker, kept under
    EXPORT_DIR until staff delete it. A scheduled monthly export has a schedule_key, so beat
    running twice makes and mails it once."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    report = models.CharField(max_length=40)
    format = models.CharField(max_length=10)
    date_from = models.DateField()
    date_to = models.DateField()
    currency = models.CharField(max_length=3)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    rows_done = models.PositiveIntegerField(default=0)
    rows_expected = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    warnings = models.TextField(blank=True)
    error = models.TextField(blank=True)
    schedule_key = models.CharField(max_length=80, null=True, blank=True, unique=True)
    mailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "export"
        permissions = [("export_finance", "Can run and download finance exports")]

    def __str__(self) -> str:
        return f"{self.report} {self.date_from}–{self.date_to} ({self.format})"

    @property
    def report_name(self) -> str:
        from billing.exports import REPORTS

        report = REPORTS.get(self.report)
        return report.name if report else self.report

    @property
    def progress_percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.rows_expected:
            return 0
        return min(99, self.rows_done * 100 // self.rows_expected)
