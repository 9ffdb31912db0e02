"""Admin for the infrastructure: locations, clusters, nodes, images and IP addresses."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join

from instances import drain
from instances.models import (
    Cluster,
    Instance,
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
    list_display = [
        *("name", "cluster", "state", "servers", "cores", "memory_mib", "cpu_overcommit"),
        "drain_status",
    ]
    list_select_related = ["cluster"]
    list_filter = ["state", "cluster"]
    inlines = [NodeStorageInline]
    readonly_fields = ["drain_status"]
    actions = ["drain", "pause_drain", "resume_drain", "return_to_service"]

    def get_queryset(self, request):
        live = Q(instances__status__in=Instance.LIVE)
        return super().get_queryset(request).annotate(server_count=Count("instances", filter=live))

    @admin.display(description="servers", ordering="server_count")
    def servers(self, obj):
        return obj.server_count

    @admin.display(description="drain")
    def drain_status(self, obj):
        if obj.state != Node.State.DRAINING:
            return "—"
        progress = drain.drain_progress(obj)
        text = f"{progress.left} server(s) left"
        if progress.moving is not None:
            text += f", moving {progress.moving.hostname}"
        if obj.drain_paused:
            text += " (paused)"
        if not progress.problems:
            return text
        return format_html(
            "{}<br>Could not move:<ul>{}</ul>",
            text,
            format_html_join("", "<li>{}</li>", ((p,) for p in progress.problems.values())),
        )

    @admin.action(
        description="Drain: take no new servers and move every server away", permissions=["change"]
    )
    def drain(self, request, queryset):
        for node in queryset:
            drain.drain_start(node=node, actor_user=request.user)
        messages.success(
            request, f"{queryset.count()} node(s) draining; their servers move one at a time."
        )

    @admin.action(description="Pause the drain", permissions=["change"])
    def pause_drain(self, request, queryset):
        for node in queryset:
            drain.drain_pause(node=node, paused=True)
        messages.info(request, "Paused; a server being moved finishes its move.")

    @admin.action(description="Resume the drain", permissions=["change"])
    def resume_drain(self, request, queryset):
        for node in queryset:
            drain.drain_pause(node=node, paused=False)
        messages.info(request, "Resumed.")

    @admin.action(description="Return to service (ends a drain)", permissions=["change"])
    def return_to_service(self, request, queryset):
        for node in queryset:
            drain.node_return_to_service(node=node)
        messages.success(request, f"{queryset.count()} node(s) take new servers again.")


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
