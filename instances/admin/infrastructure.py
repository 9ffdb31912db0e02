"""Admin for the infrastructure: locations, clusters, nodes, images and IP addresses."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from instances.models import (
    Cluster,
    IPAddress,
    IPPool,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StoragePool,
)


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "country", "active"]


class ClusterForm(forms.ModelForm):
    token_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current secret.",
    )

    class Meta:
        model = Cluster
        fields = [
            "location",
            "name",
            "api_url",
            "token_id",
            "token_secret",
            "ca_bundle",
            "tls_fingerprint",
            "vmid_min",
            "vmid_max",
            "bridge",
        ]

    def save(self, commit=True):
        if self.cleaned_data.get("token_secret"):
            self.instance.token_secret = self.cleaned_data["token_secret"]
        return super().save(commit)


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0


class StoragePoolInline(admin.TabularInline):
    model = StoragePool
    extra = 0


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterForm
    list_display = ["name", "location", "api_url", "token_id"]
    inlines = [NodeInline, StoragePoolInline]


class NodeStorageInline(admin.TabularInline):
    model = NodeStorage
    extra = 0


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "state", "cores", "memory_mib", "cpu_overcommit"]
    list_select_related = ["cluster"]
    list_filter = ["state", "cluster"]
    inlines = [NodeStorageInline]
    actions = ["drain"]

    @admin.action(description="Drain: place no new servers on these nodes")
    def drain(self, request, queryset):
        count = queryset.update(state=Node.State.DRAINING)
        messages.success(request, f"{count} node(s) draining.")


class OSTemplateInline(admin.TabularInline):
    model = OSTemplate
    extra = 0


@admin.register(OSImage)
class OSImageAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "family", "default_user", "min_disk_gib", "active"]
    inlines = [OSTemplateInline]


@admin.register(IPPool)
class IPPoolAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "network", "gateway", "ipv6_prefix"]


@admin.register(IPAddress)
class IPAddressAdmin(admin.ModelAdmin):
    list_display = ["address", "pool", "state", "released_at"]
    list_select_related = ["pool"]
    list_filter = ["state", "pool"]
    search_fields = ["address"]
