"""Admin for subscriptions and invoices: what support and finance see of a customer's money, and
the corrections staff make (a cancellation, a credit note), each through Stripe and recorded."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing import credits, dunning, stripe_client
from billing.models import BillingEvent, Invoice, Subscription, money
from common import staff_log


class BillingEventInline(admin.TabularInline):
    model = BillingEvent
    fields = [
        "created_at",
        "field",
        "old",
        "new",
        "reason",
        "actor",
        "actor_user",
        "stripe_event_id",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "billing events"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MirrorAdmin(staff_log.AuditedAdmin):
    """Rows Stripe's webhooks write: nobody edits them here; corrections go through Stripe."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(MirrorAdmin):
    list_display = [
        *("stripe_subscription_id", "owner", "order", "plan", "status", "current_period_end"),
        "cancel_at_period_end",
        "suspended_at",
    ]
    list_filter = ["status", "cancel_at_period_end"]
    search_fields = ["stripe_subscription_id", "owner__email"]
    list_select_related = ["owner", "order", "plan"]
    inlines = [BillingEventInline]
    actions = ["cancel_now", "cancel_now_with_refund"]
    audit_fields = ("status", "cancel_at_period_end", "canceled_at", "current_period_end")

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_subscription")

    @admin.action(
        description="Cancel now (the server is removed; no refund)", permissions=["cancel"]
    )
    def cancel_now(self, request, queryset):
        self._cancel(request, queryset, refund=False)

    @admin.action(
        description="Cancel now and refund the unused part of the period", permissions=["cancel"]
    )
    def cancel_now_with_refund(self, request, queryset):
        self._cancel(request, queryset, refund=True)

    def _cancel(self, request, queryset, *, refund: bool) -> None:
        for subscription in queryset.select_related("order"):
            try:
                refunded = dunning.cancel_now(
                    subscription=subscription,
                    user=request.user,
                    actor=BillingEvent.Actor.STAFF,
                    refund=refund,
                )
            except (dunning.CancelError, stripe_client.StripeError) as error:
                messages.error(request, f"{subscription.stripe_subscription_id}: {error}")
                continue
            note = f", {money(refunded)} refunded" if refunded else ""
            messages.success(request, f"{subscription.stripe_subscription_id} cancelled{note}.")


class CreditNoteForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount (VAT included)", min_value=Decimal("0.01"), decimal_places=2
    )
    method = forms.ChoiceField(
        choices=[
            (credits.REFUND, "Refund to the card"),
            (credits.BALANCE, "Credit to the customer's balance"),
        ],
        widget=forms.RadioSelect,
        initial=credits.REFUND,
    )
    reason = forms.ChoiceField(choices=list(credits.REASONS.items()))
    memo = forms.CharField(label="Note on the credit note", max_length=500, required=False)


@admin.register(Invoice)
class InvoiceAdmin(MirrorAdmin):
    list_display = ["number", "owner", "status", "total", "issued_at", "corrections"]
    list_filter = ["status"]
    search_fields = ["number", "stripe_invoice_id", "owner__email"]
    list_select_related = ["owner"]

    @admin.display(description="total")
    def total(self, invoice: Invoice) -> str:
        return money(invoice.total_cents, invoice.currency)

    @admin.display(description="")
    def corrections(self, invoice: Invoice) -> str:
        if invoice.status != "paid":
            return ""
        url = reverse("admin:billing_invoice_credit", args=[invoice.pk])
        return format_html('<a href="{}">Credit note…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.credit_view)
        return [
            path("<int:invoice_id>/credit/", view, name="billing_invoice_credit"),
            *super().get_urls(),
        ]

    def credit_view(self, request, invoice_id: int):
        """A credit note (refund or balance) for a paid invoice, issued through Stripe."""
        if not request.user.has_perm("billing.change_invoice"):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice.objects.select_related("owner"), pk=invoice_id)
        initial = {"amount": Decimal(invoice.amount_paid_cents) / 100}
        form = CreditNoteForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                cents = int((data["amount"] * 100).to_integral_value())
                total = credits.credit_note_issue(
                    invoice=invoice,
                    amount_cents=cents,
                    reason=data["reason"],
                    method=data["method"],
                    memo=data["memo"],
                    staff=request.user,
                )
            except (credits.CreditError, stripe_client.StripeError, InvalidOperation) as error:
                form.add_error(None, str(error))
            else:
                staff_log.record(
                    request.user,
                    invoice,
                    f"Credit note of {money(total, invoice.currency)} ({data['method']}, reason "
                    f"{data['reason']}, note “{data['memo']}”) issued through Stripe",
                    before={
                        "status": invoice.status,
                        "paid": money(invoice.amount_paid_cents, invoice.currency),
                    },
                )
                messages.success(
                    request,
                    f"Credit note of {money(total, invoice.currency)} on {invoice.number} issued; "
                    "the ledger books it when Stripe confirms.",
                )
                return redirect("admin:billing_invoice_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Credit note on invoice {invoice.number}",
            "form": form,
            "invoice": invoice,
            "opts": Invoice._meta,
        }
        return TemplateResponse(request, "admin/billing/invoice/credit.html", context)
