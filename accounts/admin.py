from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.html import format_html

from accounts import vat
from accounts.models import CustomerProfile, SSHKey, User, VatIdCheck
from common import staff_log

VIES_FIELDS = [
    "vat_id_status",
    "vat_id_checked_at",
    "vat_id_consultation",
    "vat_id_name",
    "vat_id_address",
    "vat_id_next_check_at",
    "vat_id_failures",
]


class CustomerProfileInline(admin.StackedInline):
    model = CustomerProfile
    can_delete = False
    extra = 0
    classes = ["collapse"]  # the customer page's summary shows what support needs of it
    # What VIES said is evidence: only VIES (through accounts/vat.py) writes it.
    readonly_fields = VIES_FIELDS


class SSHKeyInline(admin.TabularInline):
    model = SSHKey
    extra = 0
    fields = ["name", "key_type", "bits", "fingerprint", "created_at"]
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(staff_log.AuditedAdmin, BaseUserAdmin):
    """Users, staff and customers. billing/admin_customers.py registers its subclass, the
    customer page (servers and money on the user's page)."""

    inlines = [CustomerProfileInline, SSHKeyInline]
    list_display = ["email", "full_name", "country", "is_staff", "is_active", "date_joined"]
    list_select_related = ["profile"]
    search_fields = [
        "email",
        "username",
        "profile__full_name",
        "profile__company",
        "profile__vat_id",
    ]
    ordering = ["-date_joined"]
    actions = ["check_vat_ids"]
    # Staff who may only look (support) see who the person is, not the account's machinery.
    view_only_fieldsets = [
        (
            "Account",
            {
                "fields": [
                    "email",
                    "username",
                    "is_active",
                    "is_staff",
                    "date_joined",
                    "last_login",
                ],
                "classes": ["collapse"],
            },
        ),
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self.view_only_fieldsets
        return super().get_fieldsets(request, obj)

    def audit_state(self, user):
        profile = getattr(user, "profile", None)
        if profile is None:
            return {"VAT ID": None}
        return {"VAT ID": profile.vat_id, "VAT ID status": profile.get_vat_id_status_display()}

    @admin.action(description="Ask VIES about their VAT IDs now")
    def check_vat_ids(self, request, queryset):
        profiles = CustomerProfile.objects.filter(user__in=queryset).exclude(vat_id="")
        outcomes = [
            vat.vat_id_check(profile_id=pk, trigger="staff").get_vat_id_status_display()
            for pk in profiles.values_list("pk", flat=True)
        ]
        counts = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes))) or "none"
        plural = "" if len(outcomes) == 1 else "s"
        self.message_user(
            request, f"VIES was asked about {len(outcomes)} VAT ID{plural}: {counts}."
        )

    @admin.display(description="name", ordering="profile__full_name")
    def full_name(self, obj):
        return getattr(getattr(obj, "profile", None), "full_name", "")

    @admin.display(description="country", ordering="profile__country")
    def country(self, obj):
        profile = getattr(obj, "profile", None)
        return profile.country.code if profile else ""


@admin.register(SSHKey)
class SSHKeyAdmin(staff_log.AuditedAdmin):
    list_display = ["name", "owner", "key_type", "bits", "fingerprint", "created_at"]
    search_fields = ["owner__email", "fingerprint", "name"]
    readonly_fields = ["owner", "public_key", "key_type", "bits", "fingerprint", "created_at"]
    list_select_related = ["owner"]


@admin.register(VatIdCheck)
class VatIdCheckAdmin(admin.ModelAdmin):
    """Every answer VIES gave (or did not): the evidence behind each reverse charge."""

    list_display = ["vat_id", "outcome", "asked_at", "consultation_number", "error", "trigger"]
    list_filter = ["outcome", "trigger", "asked_at"]
    search_fields = ["vat_id", "consultation_number", "profile__user__email"]
    list_select_related = ["profile__user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# allauth's own admin for authenticators shows and edits `data`, the (encrypted) seeds.
admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(staff_log.AuditedAdmin):
    """Who has which second factor, never its secret. Staff may delete one (a customer lost
    their phone); adding and changing happen only in the portal, by the user."""

    list_display = ["user", "type", "created_at", "last_used_at"]
    list_filter = ["type", "created_at", "last_used_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["user", "type", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(str(flag), name) for flag, name in staff_log.ACTION_NAMES.items()]

    def queryset(self, request, queryset):
        return queryset.filter(action_flag=self.value()) if self.value() else queryset


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    """The audit log: every staff action in the admin (common/staff_log.py), who did it, when,
    to what, and the state before and after. Nobody adds, changes or deletes an entry."""

    list_display = ["action_time", "user", "action", "object_link", "what"]
    list_filter = [
        ActionFilter,
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        "action_time",
    ]
    search_fields = ["user__email", "object_repr", "=object_id", "change_message"]
    list_select_related = ["user", "content_type"]
    date_hierarchy = "action_time"
    fields = ["action_time", "user", "action", "content_type", "object_link", "what"]
    readonly_fields = fields
    list_per_page = 50

    def changelist_view(self, request, extra_context=None):
        # The messages want the whole width of a 1280 px screen: no navigation sidebar here.
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    @admin.display(description="action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        return staff_log.ACTION_NAMES.get(entry.action_flag, str(entry.action_flag))

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry: LogEntry) -> str:
        kind = entry.content_type.name if entry.content_type else ""
        url = entry.get_admin_url() if entry.action_flag != DELETION else None
        if not url:
            return format_html("{} <span class='quiet'>{}</span>", entry.object_repr, kind)
        return format_html(
            "<a href='{}'>{}</a> <span class='quiet'>{}</span>", url, entry.object_repr, kind
        )

    @admin.display(description="what, before and after")
    def what(self, entry: LogEntry) -> str:
        return entry.get_change_message() or staff_log.ACTION_NAMES.get(entry.action_flag, "")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
