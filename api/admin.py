"""API tokens for support: whose, what they may do, when last used; revoke one at once (a
leaked token). Tokens are made only by their owners; the secret and its hash are never shown."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from api.models import APIToken


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "prefix", "scope", "state", "last_used_at", "created_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["name", "prefix", "owner__email"]
    fields = [
        *("owner", "name", "prefix", "scope", "created_at", "expires_at"),
        *("last_used_at", "last_used_ip", "revoked_at"),
    ]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="state")
    def state(self, token: APIToken) -> str:
        return token.state()

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("api.change_apitoken")

    @admin.action(
        description="Revoke the selected tokens (they stop working at once)",
        permissions=["revoke"],
    )
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
