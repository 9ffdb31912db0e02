"""Servers' firewalls for support: what the customer set, whether PVE filters the NIC yet, and
what beat last found different on PVE (it repairs that itself; a repair that fails is a failed
`firewall` operation). Read-only: customers change their firewall on their server's page."""

from __future__ import annotations

from django.contrib import admin

from instances.models import Firewall, FirewallRule


class RuleInline(admin.TabularInline):
    model = FirewallRule
    fields = ("position", "direction", "action", "protocol", "port", "source", "destination")
    fields += ("comment",)
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Firewall)
class FirewallAdmin(admin.ModelAdmin):
    list_display = ("instance", "enabled", "policy_in", "nic_filtered", "checked_at", "drift")
    list_filter = ("enabled", "nic_filtered")
    search_fields = ("instance__hostname", "instance__owner__email", "drift")
    list_select_related = ("instance",)
    inlines = [RuleInline]
    readonly_fields = (
        *("instance", "enabled", "policy_in", "policy_out", "nic_filtered", "applied_at"),
        *("checked_at", "drift", "applied"),
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
