"""Admin for the infrastructure: locations, clusters, nodes, images and IP addresses."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from common import staff_log
from instances import drain, placement
from instances.models import (
    Cluster,
    Instance,
    InstanceOperation,
    IPAddress,
    IPPool,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StorageClass,
    StoragePool,
)
from instances.operations.migrate import MOVABLE


@admin.register(Location)
class LocationAdmin(staff_log.AuditedAdmin):
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
            "backup_storage",
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
class ClusterAdmin(staff_log.AuditedAdmin):
    form = ClusterForm
    list_display = ["name", "location", "api_url", "token_id"]
    inlines = [NodeInline, StoragePoolInline]


class NodeStorageInline(admin.TabularInline):
    model = NodeStorage
    extra = 0


def _meter(used: Decimal | int, total: Decimal | int) -> str:
    """A <meter> of used against total; the browser colours it past 75 % and 90 %."""
    share = Decimal(used) / Decimal(total) if total else Decimal(0)
    return format_html(
        '<meter class="bo-meter" min="0" max="1" low="0.75" high="0.9" optimum="0" '
        'value="{}" title="{} %">{} %</meter>',
        f"{min(share, Decimal(1)):.3f}",
        f"{share * 100:.0f}",
        f"{share * 100:.0f}",
    )


def _ratio(value: Decimal) -> str:
    return f"{value.normalize():f}:1"


@admin.register(Node)
class NodeAdmin(staff_log.AuditedAdmin):
    """Nodes with what their servers take (placement.nodes_usage, the arithmetic placement
    decides with): CPU in physical cores, shared vCPUs divided by the overcommit; RAM likewise;
    each storage class's disk against the node's pools of it."""

    list_display = ["node_name", "state_and_drain", "servers", "cpu", "ram", "storage"]
    list_select_related = ["cluster"]
    list_filter = ["state", "cluster"]
    inlines = [NodeStorageInline]
    readonly_fields = ["drain_status", "cpu", "ram", "storage"]
    actions = ["drain", "pause_drain", "resume_drain", "return_to_service"]
    audit_fields = ("state", "drain_paused")

    class Media:
        css = {"all": ["css/backoffice.css"]}

    def changelist_view(self, request, extra_context=None):
        # The columns want the whole width of a 1280 px screen: no navigation sidebar here.
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_queryset(self, request):
        live = Q(instances__status__in=Instance.LIVE)
        movable = Q(instances__status__in=MOVABLE)
        here = Q(instance__node=OuterRef("pk")) | Q(instance__moving_from=OuterRef("pk"))
        moving = InstanceOperation.objects.filter(
            here, kind=InstanceOperation.Kind.MIGRATE, state__in=InstanceOperation.LIVE
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                server_count=Count("instances", filter=live),
                movable_count=Count("instances", filter=movable),
                moving_hostname=Subquery(moving.values("instance__hostname")[:1]),
            )
            .prefetch_related(
                Prefetch("storages", queryset=NodeStorage.objects.select_related("pool"))
            )
        )

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._attach_usage(changelist.result_list)  # one batch for the page, not per node
        return changelist

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not request.user.has_perm("instances.change_cluster"):
            # Nothing to save for those who only drain: the actions are on the list.
            no_save = {"show_save": False, "show_save_and_continue": False}
            extra_context = no_save | (extra_context or {})
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        # Support drains nodes (the change permission runs the actions) but the hardware and
        # its overcommit are for those who also manage clusters.
        if obj is None:
            return []
        if not request.user.has_perm("instances.change_cluster"):
            hardware = [f.name for f in Node._meta.fields if f.editable and not f.primary_key]
            return hardware + self.readonly_fields
        return self.readonly_fields

    @staticmethod
    def _attach_usage(nodes) -> None:
        usages = placement.nodes_usage(nodes)
        for node in nodes:
            node.usage = {kind: usages[node.pk, kind] for kind in StorageClass.values}

    def _usage(self, node):
        if not hasattr(node, "usage"):
            self._attach_usage([node])
        return node.usage

    @admin.display(description="node", ordering="name")
    def node_name(self, obj):
        return format_html('{}<br><span class="quiet">{}</span>', obj.name, obj.cluster.name)

    @admin.display(description="state", ordering="state")
    def state_and_drain(self, obj):
        state = format_html(
            '<span class="bo-status bo-status-{}">{}</span>', obj.state, obj.get_state_display()
        )
        if obj.state != Node.State.DRAINING:
            return state
        text = f"{obj.movable_count} server(s) left"  # as on the node's own page
        if obj.moving_hostname:
            text += f", moving {obj.moving_hostname}"
        if obj.drain_paused:
            text += " (paused)"
        if obj.drain_problems:
            text += f"; {len(obj.drain_problems)} could not move"
        return format_html('{}<br><span class="quiet">{}</span>', state, text)

    @admin.display(description="servers", ordering="server_count")
    def servers(self, obj):
        return obj.server_count

    @admin.display(description="CPU")
    def cpu(self, obj):
        usage = self._usage(obj)[StorageClass.NVME]
        used = usage.cpu_load()
        # What shared servers may still get: the cores VDS do not hold, times the overcommit.
        sellable = (obj.cores - usage.dedicated_vcpus) * obj.cpu_overcommit
        return format_html(
            '<span class="bo-nowrap">{} {} of {} cores</span><br>'
            '<span class="quiet">{} of {} vCPU shared ({}), {} dedicated</span>',
            _meter(used, obj.cores),
            f"{used:.1f}",
            obj.cores,
            usage.shared_vcpus,
            f"{sellable:.0f}",
            _ratio(obj.cpu_overcommit),
            usage.dedicated_vcpus,
        )

    @admin.display(description="RAM")
    def ram(self, obj):
        usage = self._usage(obj)[StorageClass.NVME]
        used = usage.memory_load()
        sellable = (obj.memory_mib - usage.dedicated_memory_mib) * obj.ram_overcommit
        return format_html(
            '<span class="bo-nowrap">{} {} of {} GiB</span><br>'
            '<span class="quiet">{} of {} GiB shared ({}), {} dedicated</span>',
            _meter(used, obj.memory_mib),
            f"{used / 1024:.1f}",
            f"{obj.memory_mib / 1024:.0f}",
            f"{usage.shared_memory_mib / 1024:.0f}",
            f"{sellable / 1024:.0f}",
            _ratio(obj.ram_overcommit),
            f"{usage.dedicated_memory_mib / 1024:.0f}",
        )

    @admin.display(description="storage")
    def storage(self, obj):
        pools: dict[str, list[str]] = {}
        for storage in obj.storages.all():
            pools.setdefault(storage.pool.storage_class, []).append(storage.pool.name)
        rows = []
        for kind, usage in self._usage(obj).items():
            if not usage.disk_capacity_gib and not usage.disk_gib:
                continue
            rows.append(
                (
                    _meter(usage.disk_gib, usage.disk_capacity_gib),
                    ", ".join(pools.get(kind, [])) or kind,
                    f"{usage.disk_gib:,}",
                    f"{usage.disk_capacity_gib:,}",
                )
            )
        if not rows:
            return "—"
        return format_html_join(
            mark_safe("<br>"), '<span class="bo-nowrap">{} {} {} of {} GiB</span>', rows
        )

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
class OSImageAdmin(staff_log.AuditedAdmin):
    list_display = ["name", "slug", "family", "default_user", "min_disk_gib", "active"]
    inlines = [OSTemplateInline]


@admin.register(IPPool)
class IPPoolAdmin(staff_log.AuditedAdmin):
    list_display = ["name", "location", "network", "gateway", "ipv6_prefix"]


@admin.register(IPAddress)
class IPAddressAdmin(staff_log.AuditedAdmin):
    list_display = ["address", "pool", "state", "released_at"]
    list_select_related = ["pool"]
    list_filter = ["state", "pool"]
    search_fields = ["address"]
