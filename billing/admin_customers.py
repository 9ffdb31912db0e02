"""The customer page: who the customer is, their servers (status, node, address, what runs on
them), subscriptions, invoices, ledger, billing events and the servers' timeline, on the
user's admin page, each with links to the rows' own pages; and a customer list that finds a
customer by email, name, hostname, IP address, VMID, Stripe customer id or invoice number.

It takes over accounts' user admin (billing may read servers and money; accounts may not), and
runs a fixed number of queries whatever the customer has: one per section, the newest rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.db.models import Count, OuterRef, Q, Subquery
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from accounts.admin import UserAdmin
from accounts.models import User
from billing import admin_view_as
from billing.models import BillingEvent, Invoice, LedgerEntry, Subscription, money
from instances.models import Instance, InstanceEvent

SECTION_ROWS = 50  # the newest rows of each section; a link leads to all of them
NOWRAP = "bo-nowrap"


@dataclass
class Section:
    """One table of the customer page."""

    title: str
    columns: list[tuple[str, str]]  # (heading, css class)
    rows: list[list] = field(default_factory=list)
    all_url: str = ""
    all_label: str = ""
    more: bool = False  # there are more rows than shown
    empty: str = "None."

    @property
    def table(self) -> list[list[tuple[object, str]]]:
        """The rows as (cell, css class) pairs."""
        classes = [css for _, css in self.columns]
        return [list(zip(row, classes, strict=True)) for row in self.rows]


def _link(url_name: str, pk, text) -> str:
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[pk]), text)


def _dot(value: str, label: str | None = None) -> str:
    return format_html('<span class="bo-status bo-status-{}">{}</span>', value, label or value)


def _when(moment) -> str:
    if moment is None:
        return "—"
    return format_html(
        '<span title="{}">{}</span>', f"{moment:%Y-%m-%d %H:%M:%S %Z}", f"{moment:%Y-%m-%d %H:%M}"
    )


def _newest(queryset, section: Section, limit: int = SECTION_ROWS) -> list:
    rows = list(queryset[: limit + 1])
    section.more = len(rows) > limit
    return rows[:limit]


def _changelist(url_name: str, **lookups) -> str:
    query = "&".join(f"{key}={value}" for key, value in lookups.items())
    return f"{reverse(url_name)}?{query}"


def server_section(request, customer: User) -> Section:
    servers_admin = admin.site.get_model_admin(Instance)
    section = Section(
        "Servers",
        [("server", NOWRAP), ("status", ""), ("node", NOWRAP), ("VMID", ""), ("IPv4", "")]
        + [("operation", ""), ("last error", ""), ("plan", NOWRAP), ("since", NOWRAP)],
        all_url=_changelist("admin:instances_instance_changelist", owner__id__exact=customer.pk),
        all_label="All servers of this customer",
        empty="No servers.",
    )
    servers = servers_admin.get_queryset(request).filter(owner=customer)
    servers = servers.select_related("node", "moving_from", "ipv4").order_by("-created_at")
    for server in _newest(servers, section):
        section.rows.append(
            [
                _link("admin:instances_instance_change", server.pk, server.hostname),
                _dot(server.status, server.get_status_display()),
                servers_admin.node_name(server),
                server.vmid or "—",
                server.ipv4 or "—",
                servers_admin.current_operation(server),
                servers_admin.last_error(server),
                server.plan_name or server.get_family_display(),
                _when(server.created_at),
            ]
        )
    return section


def subscription_section(customer: User) -> Section:
    section = Section(
        "Subscriptions",
        [("subscription", ""), ("plan", ""), ("server", ""), ("status", "")]
        + [("paid until", ""), ("cancels at period end", ""), ("suspended since", "")],
        all_url=_changelist("admin:billing_subscription_changelist", owner__id__exact=customer.pk),
        empty="No subscriptions.",
    )
    subscriptions = Subscription.objects.filter(owner=customer).select_related(
        "plan", "order__instance"
    )
    for sub in _newest(subscriptions.order_by("-order__created_at", "-pk"), section):
        instance = sub.order.instance
        section.rows.append(
            [
                _link("admin:billing_subscription_change", sub.pk, sub.stripe_subscription_id),
                sub.plan or "—",
                _link("admin:instances_instance_change", instance.pk, instance.hostname)
                if instance
                else "—",
                _dot(sub.status),
                _when(sub.current_period_end),
                "yes" if sub.cancel_at_period_end else "no",
                _when(sub.suspended_at),
            ]
        )
    return section


def invoice_section(request, customer: User) -> Section:
    section = Section(
        "Invoices",
        [("number", ""), ("status", ""), ("total", "bo-amount"), ("paid", "bo-amount")]
        + [("issued", ""), ("period", ""), ("", "")],
        all_url=_changelist("admin:billing_invoice_changelist", owner__id__exact=customer.pk),
        all_label="All invoices of this customer",
        empty="No invoices.",
    )
    may_credit = request.user.has_perm("billing.change_invoice")
    for invoice in _newest(Invoice.objects.filter(owner=customer).order_by("-issued_at"), section):
        links = []
        if invoice.hosted_invoice_url:
            links.append(format_html('<a href="{}">Stripe</a>', invoice.hosted_invoice_url))
        if may_credit and invoice.status == "paid":
            links.append(_link("admin:billing_invoice_credit", invoice.pk, "Credit note…"))
        period = "—"
        if invoice.period_start and invoice.period_end:
            period = f"{invoice.period_start:%Y-%m-%d} – {invoice.period_end:%Y-%m-%d}"
        section.rows.append(
            [
                _link("admin:billing_invoice_change", invoice.pk, invoice),
                _dot(invoice.status),
                money(invoice.total_cents, invoice.currency),
                money(invoice.amount_paid_cents, invoice.currency),
                _when(invoice.issued_at),
                period,
                format_html(" · ".join(["{}"] * len(links)), *links) if links else "",
            ]
        )
    return section


def ledger_section(customer: User) -> Section:
    section = Section(
        "Ledger",
        [("when", ""), ("kind", ""), ("document", ""), ("description", "")]
        + [("net", "bo-amount"), ("VAT", "bo-amount"), ("gross", "bo-amount")]
        + [("VAT treatment", ""), ("Stripe object", "")],
        all_url=_changelist(
            "admin:billing_ledgerentry_changelist", customer__id__exact=customer.pk
        ),
        empty="Nothing in the ledger.",
    )
    entries = LedgerEntry.objects.filter(customer=customer).order_by("-occurred_at", "-pk")
    for entry in _newest(entries, section):
        section.rows.append(
            [
                _when(entry.occurred_at),
                entry.get_kind_display(),
                entry.document_number or "—",
                entry.description or "—",
                money(entry.net_cents, entry.currency),
                money(entry.vat_cents, entry.currency),
                money(entry.gross_cents, entry.currency),
                entry.get_vat_treatment_display() or "—",
                _link("admin:billing_ledgerentry_change", entry.pk, entry.stripe_object_id),
            ]
        )
    return section


def billing_event_section(customer: User) -> Section:
    section = Section(
        "Billing events",
        [("when", ""), ("of", ""), ("change", ""), ("reason", ""), ("by", "")]
        + [("Stripe event", "")],
        empty="No billing events.",
    )
    events = (
        BillingEvent.objects.filter(Q(order__owner=customer) | Q(subscription__owner=customer))
        .select_related("actor_user", "subscription")
        .order_by("-created_at", "-id")
    )
    for event in _newest(events, section):
        if event.subscription_id:
            subject = _link(
                "admin:billing_subscription_change",
                event.subscription_id,
                event.subscription.stripe_subscription_id,
            )
        else:
            subject = _link("admin:billing_order_change", event.order_id, f"order {event.order_id}")
        section.rows.append(
            [
                _when(event.created_at),
                subject,
                f"{event.field}: {event.old or '—'} → {event.new or '—'}",
                event.reason,
                _actor(event.actor, event.actor_user),
                event.stripe_event_id or "—",
            ]
        )
    return section


def timeline_section(customer: User) -> Section:
    section = Section(
        "Timeline (all servers)",
        [("when", ""), ("server", ""), ("status", ""), ("what the customer reads", "")]
        + [("for staff", ""), ("by", "")],
        all_url=_changelist(
            "admin:instances_instanceevent_changelist", instance__owner__id__exact=customer.pk
        ),
        all_label="The whole timeline of the customer's servers",
        empty="Nothing happened to a server yet.",
    )
    events = (
        InstanceEvent.objects.filter(instance__owner=customer)
        .select_related("instance", "actor_user")
        .order_by("-created_at", "-id")
    )
    for event in _newest(events, section):
        status = "—"
        if event.new_status:
            status = f"{event.old_status or '—'} → {event.new_status}"
        section.rows.append(
            [
                _when(event.created_at),
                _link(
                    "admin:instances_instance_change", event.instance_id, event.instance.hostname
                ),
                status,
                event.message or "—",
                event.detail or "—",
                _actor(event.actor, event.actor_user),
            ]
        )
    return section


def _actor(actor: str, user: User | None) -> str:
    return f"{actor} ({user.email})" if user is not None else actor


def customer_sections(request, customer: User) -> list[Section]:
    """The sections of the customer page the staff member may see."""
    may = request.user.has_perm
    sections = []
    if may("instances.view_instance"):
        sections.append(server_section(request, customer))
    if may("billing.view_subscription"):
        sections.append(subscription_section(customer))
    if may("billing.view_invoice"):
        sections.append(invoice_section(request, customer))
    if may("billing.view_ledgerentry"):
        sections.append(ledger_section(customer))
    if may("billing.view_subscription") or may("billing.view_order"):
        sections.append(billing_event_section(customer))
    if may("instances.view_instance"):
        sections.append(timeline_section(customer))
    return sections


admin.site.unregister(User)


@admin.register(User)
class CustomerAdmin(UserAdmin):
    list_display = [
        *("email", "full_name", "company", "country", "servers", "stripe_customer"),
        *("is_staff", "joined"),
    ]
    list_select_related = ["profile", "billing_account"]
    search_fields = [
        *UserAdmin.search_fields,
        "instances__hostname",
        "instances__ipv4__address",
        "instances__ipv6",
        "instances__vmid__exact",
        "billing_account__stripe_customer_id",
        "invoices__number",
        "invoices__stripe_invoice_id",
        "subscriptions__stripe_subscription_id",
    ]
    search_help_text = (
        "Email, name, company, VAT ID, server hostname, IP address, VMID, Stripe customer, "
        "subscription or invoice id, invoice number."
    )
    change_form_template = "admin/billing/customer/change_form.html"

    class Media:
        css = {"all": ["css/backoffice.css"]}

    # The sections' tables want the whole width of a 1280 px screen: no navigation sidebar.
    def changelist_view(self, request, extra_context=None):
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_queryset(self, request):
        live = Instance.objects.filter(owner=OuterRef("pk")).exclude(
            status=Instance.Status.TERMINATED
        )
        count = live.order_by().values("owner").annotate(n=Count("pk")).values("n")
        return (
            super()
            .get_queryset(request)
            .select_related("profile", "billing_account")
            .annotate(server_count=Subquery(count))
        )

    @admin.display(description="servers", ordering="server_count")
    def servers(self, user: User) -> int:
        return user.server_count or 0

    @admin.display(description="joined", ordering="date_joined")
    def joined(self, user: User) -> str:
        return f"{user.date_joined:%Y-%m-%d}"

    @admin.display(description="company", ordering="profile__company")
    def company(self, user: User) -> str:
        return getattr(getattr(user, "profile", None), "company", "")

    @admin.display(description="Stripe customer", ordering="billing_account__stripe_customer_id")
    def stripe_customer(self, user: User) -> str:
        account = getattr(user, "billing_account", None)
        return account.stripe_customer_id if account else "—"

    def get_urls(self):
        site = self.admin_site

        def staff_page(view):
            return site.admin_view(lambda request, **kwargs: view(request, site, **kwargs))

        return [
            path(
                "<int:user_id>/view-as/",
                staff_page(admin_view_as.server_list),
                name="accounts_user_view_as",
            ),
            path(
                "<int:user_id>/view-as/servers/<int:instance_id>/",
                staff_page(admin_view_as.server_detail),
                name="accounts_user_view_as_server",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            account = getattr(obj, "billing_account", None)
            context |= {
                "customer": obj,
                "profile": getattr(obj, "profile", None),
                "billing_account": account,
                "sections": customer_sections(request, obj),
                "may_view_as": admin_view_as.may_view_as(request.user),
                "history_url": reverse("admin:accounts_user_history", args=[obj.pk]),
                "member_for": timesince(obj.date_joined),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)
