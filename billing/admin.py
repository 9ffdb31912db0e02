from __future__ import annotations

from django.contrib import admin, messages
from django.urls import path

from billing import (
    admin_customers,  # noqa: F401 - registers the customer page (the user admin)
    admin_subscriptions,  # noqa: F401 - registers subscriptions and invoices
    catalog,
    stripe_client,
)
from billing.models import (
    BillingAccount,
    ExportRun,
    LedgerEntry,
    Order,
    Plan,
    StripeEvent,
    TaxRate,
    money,
)
from billing.tasks import process_stripe_event
from common import staff_log


class ReadOnlyAdmin(staff_log.AuditedAdmin):
    """Mirrors of Stripe and the ledger: support reads them; Stripe's webhooks write them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(staff_log.AuditedAdmin):
    list_display = [
        "name",
        "family",
        "vcpus",
        "memory_mib",
        "disk_gib",
        "storage_class",
        "monthly",
        "active",
        "stripe_in_sync",
    ]
    list_filter = ["family", "active"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["stripe_product_id", "stripe_price_id", "stripe_price_cents"]
    actions = ["push_to_stripe"]
    audit_fields = ("price_cents", "stripe_price_id", "stripe_price_cents")

    @admin.display(description="per month")
    def monthly(self, plan: Plan) -> str:
        return plan.price

    @admin.display(boolean=True, description="in Stripe")
    def stripe_in_sync(self, plan: Plan) -> bool:
        return plan.stripe_in_sync

    @admin.action(
        description="Push to Stripe (new price when the amount changed)", permissions=["change"]
    )
    def push_to_stripe(self, request, queryset):
        for plan in queryset:
            try:
                result = catalog.plan_sync(plan)
            except stripe_client.StripeError as error:
                self.message_user(request, f"{plan}: {error}", messages.ERROR)
                continue
            note = "new price" if result.price_created else "already in sync"
            self.message_user(request, f"{plan}: {note}.", messages.SUCCESS)


@admin.register(Order)
class OrderAdmin(staff_log.AuditedAdmin):
    list_display = ["pk", "owner", "plan", "hostname", "status", "first_total", "created_at"]
    list_filter = ["status", "plan__family", "vat_treatment"]
    search_fields = ["owner__email", "hostname", "stripe_subscription_id", "=pk"]
    readonly_fields = [f.name for f in Order._meta.fields if f.name != "id"]

    @admin.display(description="first payment")
    def first_total(self, order: Order) -> str:
        return money(order.first_total_cents, order.currency)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "kind",
        "customer",
        "net",
        "vat",
        "gross",
        "country",
        "vat_treatment",
        "stripe_object_id",
    ]
    list_filter = ["kind", "vat_treatment", "country", "currency"]
    search_fields = ["stripe_object_id", "stripe_invoice_id", "customer__email"]
    date_hierarchy = "occurred_at"

    @admin.display(description="net")
    def net(self, entry: LedgerEntry) -> str:
        return money(entry.net_cents, entry.currency)

    @admin.display(description="VAT")
    def vat(self, entry: LedgerEntry) -> str:
        return money(entry.vat_cents, entry.currency)

    @admin.display(description="gross")
    def gross(self, entry: LedgerEntry) -> str:
        return money(entry.gross_cents, entry.currency)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "received_at", "processed_at", "attempts", "last_error"]
    # Events still unprocessed after STRIPE_EVENT_MAX_ATTEMPTS wait here for staff.
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter)]
    search_fields = ["event_id"]
    actions = ["process_again"]
    audit_fields = ("processed_at", "attempts", "last_error")

    @admin.action(
        description="Queue unprocessed events for processing again", permissions=["change"]
    )
    def process_again(self, request, queryset):
        pending = list(queryset.filter(processed_at__isnull=True).values_list("pk", flat=True))
        for pk in pending:
            process_stripe_event.delay(pk)
        self.message_user(request, f"{len(pending)} event(s) queued.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # Actions need the change permission; the fields stay read-only (no editable fields).
        return request.user.has_perm("billing.change_stripeevent")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in StripeEvent._meta.fields]


@admin.register(TaxRate)
class TaxRateAdmin(ReadOnlyAdmin):
    list_display = ["country", "percentage", "stripe_tax_rate_id"]


@admin.register(BillingAccount)
class BillingAccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "stripe_customer_id", "created_at"]
    search_fields = ["user__email", "stripe_customer_id"]


@admin.register(ExportRun)
class ExportRunAdmin(ReadOnlyAdmin):
    """Billing → Exports: the finance exports page (billing/exports/views.py) instead of a list."""

    def has_module_permission(self, request):
        return request.user.has_perm("billing.export_finance")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("billing.export_finance")

    def get_urls(self):
        from billing.exports import views

        wrap = self.admin_site.admin_view
        return [
            path(
                "",
                wrap(lambda request: views.exports_page(request, self.admin_site)),
                name="billing_exportrun_changelist",
            ),
            path(
                "<int:pk>/progress/",
                wrap(views.export_progress),
                name="billing_exportrun_progress",
            ),
            path(
                "<int:pk>/download/",
                wrap(views.export_download),
                name="billing_exportrun_download",
            ),
        ]
