from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts import vat
from accounts.models import CustomerProfile, SSHKey, User, VatIdCheck

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
class UserAdmin(BaseUserAdmin):
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
class SSHKeyAdmin(admin.ModelAdmin):
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
class AuthenticatorAdmin(admin.ModelAdmin):
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
