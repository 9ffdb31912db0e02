from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import CustomerProfile, SSHKey, User


class CustomerProfileInline(admin.StackedInline):
    model = CustomerProfile
    can_delete = False
    extra = 0


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
    search_fields = ["email", "username", "profile__full_name", "profile__company"]
    ordering = ["-date_joined"]

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
