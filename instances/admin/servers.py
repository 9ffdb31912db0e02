"""Admin for customers' servers: what support sees and does (every change is an operation)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from common import crypto, staff_log
from instances import dedicated, lifecycle, services
from instances.admin import operations
from instances.models import (
    DedicatedServer,
    Family,
    Instance,
    InstanceEvent,
    InstanceOperation,
    Location,
    OSImage,
    StorageClass,
)


class InstanceEventInline(admin.TabularInline):
    model = InstanceEvent
    extra = 0
    can_delete = False
    fields = [
        *("created_at", "old_status", "new_status", "step", "message", "detail", "actor"),
        "actor_user",
    ]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False


class InstanceOperationInline(admin.TabularInline):
    model = InstanceOperation
    extra = 0
    can_delete = False
    fields = [
        *("created_at", "kind", "state", "actor", "actor_user", "step", "attempts"),
        *("waiting_reason", "error", "finished_at"),
    ]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    verbose_name_plural = "operations"

    def has_add_permission(self, request, obj=None):
        return False


class BuildServerForm(forms.Form):
    owner = forms.ModelChoiceField(get_user_model().objects.filter(is_staff=False))
    hostname = forms.RegexField(
        regex=services.HOSTNAME,
        error_messages={"invalid": "Lower-case letters, digits and hyphens (RFC 1123 label)."},
    )
    location = forms.ModelChoiceField(Location.objects.filter(active=True))
    os_image = forms.ModelChoiceField(OSImage.objects.filter(active=True))
    family = forms.ChoiceField(choices=[c for c in Family.choices if c[0] != Family.DEDICATED])
    vcpus = forms.IntegerField(min_value=1, max_value=64, initial=2)
    memory_mib = forms.IntegerField(min_value=512, initial=4096, label="RAM (MiB)")
    disk_gib = forms.IntegerField(min_value=10, initial=80, label="Disk (GiB)")
    use_customer_keys = forms.BooleanField(required=False, initial=True)
    generate_password = forms.BooleanField(required=False)


class AttentionFilter(admin.SimpleListFilter):
    """Servers support should look at: failed ones, operations that stopped making progress
    (the reaper resumes or fails them; until then they are stuck), VMs Proxmox no longer has."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [
            ("failed", "failed (server or its last operation)"),
            ("stuck", "stuck operation"),
            ("missing", "missing on Proxmox"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            failed = InstanceOperation.State.FAILED
            return queryset.filter(Q(status=Instance.Status.FAILED) | Q(latest_state=failed))
        if self.value() == "stuck":
            return queryset.filter(Exists(stuck_operations().filter(instance=OuterRef("pk"))))
        if self.value() == "missing":
            return queryset.filter(missing_since__isnull=False)
        return queryset


def stuck_operations():
    """Live operations untouched for OPERATION_STUCK_AFTER, or in one step past the deadline."""
    now = timezone.now()
    return InstanceOperation.objects.filter(state__in=InstanceOperation.LIVE).filter(
        Q(updated_at__lt=now - timedelta(seconds=settings.OPERATION_STUCK_AFTER))
        | Q(step_started_at__lt=now - timedelta(seconds=settings.OPERATION_DEADLINE))
    )


@admin.register(Instance)
class InstanceAdmin(staff_log.AuditedAdmin):
    # "Where is it": who, which node and VMID, which address, what runs on it and what failed.
    list_display = [
        "hostname",
        "customer",
        "status_dot",
        "node_name",
        "vmid",
        "ipv4",
        "current_operation",
        "last_error",
    ]
    list_filter = [AttentionFilter, "status", "family", "location", "node"]
    search_fields = ["hostname", "owner__email", "ipv4__address", "vmid__exact", "ipv6"]
    list_select_related = ["owner", "node", "moving_from", "ipv4"]
    list_per_page = 50
    audit_fields = ("status", "node", "operation")
    # State changes go through services (actions below), never through a form. Encrypted
    # columns (the root password waiting for cloud-init) are never shown, not even as ciphertext.
    readonly_fields = ["fulfilment"] + [
        f.name
        for f in Instance._meta.fields
        if f.name != "id" and not f.name.endswith("_encrypted")
    ]
    inlines = [InstanceOperationInline, InstanceEventInline]
    actions = ["retry_build", "dedicated_installing", "dedicated_ready", "dedicated_task_done"]
    change_list_template = "admin/instances/instance/change_list.html"
    change_form_template = "admin/instances/instance/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry the build of failed servers", permissions=["change"])
    def retry_build(self, request, queryset):
        retried = 0
        failed = InstanceOperation.objects.filter(
            instance__in=queryset.filter(status=Instance.Status.FAILED),
            kind__in=[InstanceOperation.Kind.BUILD, InstanceOperation.Kind.INSTALL],
            state=InstanceOperation.State.FAILED,
        ).order_by("instance", "-created_at")
        for operation in {op.instance_id: op for op in reversed(list(failed))}.values():
            services.operation_retry(
                operation_id=operation.pk,
                actor=InstanceEvent.Actor.STAFF,
                actor_user=request.user,
            )
            retried += 1
        messages.info(request, f"{retried} build(s) queued again; others were not failed.")

    @admin.action(description="Dedicated: installation started", permissions=["change"])
    def dedicated_installing(self, request, queryset):
        self._dedicated(request, queryset, dedicated.mark_installing, "installing")

    @admin.action(
        description="Dedicated: installed and handed to the customer", permissions=["change"]
    )
    def dedicated_ready(self, request, queryset):
        self._dedicated(request, queryset, dedicated.mark_ready, "ready")

    @admin.action(
        description="Dedicated: the machine's part of a suspension, restore or removal is done",
        permissions=["change"],
    )
    def dedicated_task_done(self, request, queryset):
        done = 0
        for instance in queryset.filter(family=Family.DEDICATED):
            try:
                lifecycle.dedicated_task_done(instance=instance, staff=request.user)
                done += 1
            except services.InstanceError as exc:
                messages.error(request, f"{instance.hostname}: {exc}")
        messages.info(request, f"{done} dedicated server(s) moved on.")

    def _dedicated(self, request, queryset, action, label):
        done = 0
        for instance in queryset.filter(family=Family.DEDICATED):
            try:
                action(instance_id=instance.pk, staff=request.user)
                done += 1
            except (services.InstanceError, DedicatedServer.DoesNotExist) as exc:
                messages.error(request, f"{instance.hostname}: {exc or 'no machine assigned'}")
        messages.info(request, f"{done} dedicated server(s) marked {label}.")

    @admin.display(description="fulfilment (dedicated)")
    def fulfilment(self, obj, *, with_password: bool = False):
        """What the technician needs: machine, address, keys and (until ready) the password."""
        server = getattr(obj, "dedicated_server", None)
        if obj.family != Family.DEDICATED or server is None:
            return "—"
        pool = obj.ipv4.pool if obj.ipv4 else None
        if with_password:
            password = crypto.decrypt(obj.new_password_encrypted) or "(shown to the customer)"
        else:
            password = "(hidden: needs the permission to change servers)"
        return format_html(
            "<p>Machine <b>{}</b> ({}), state {}.</p><p>IPv4 {}/{} gateway {}, DNS {}; IPv6 {}."
            "</p><p>Root password: <code>{}</code></p><pre>{}</pre>",
            server.asset_tag,
            server.model,
            server.state,
            obj.ipv4,
            pool.prefix_length if pool else "",
            pool.gateway if pool else "",
            pool.dns_servers if pool else "",
            obj.ipv6 or "—",
            password,
            obj.ssh_keys or "(no SSH keys)",
        )

    @admin.display(description="fulfilment (dedicated)")
    def fulfilment_with_password(self, obj):
        return self.fulfilment(obj, with_password=True)

    def get_readonly_fields(self, request, obj=None):
        # Only staff who may change servers (the technicians) see the password they must set.
        fields = list(super().get_readonly_fields(request, obj))
        if self.has_change_permission(request, obj):
            fields[fields.index("fulfilment")] = "fulfilment_with_password"
        return fields

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(
                lambda request, object_id: function(request, object_id, self.admin_site)
            )

        return [
            path("build/", self.admin_site.admin_view(self.build_view), name="instances_build"),
            path(
                "<path:object_id>/operate/",
                self.admin_site.admin_view(operations.operate),
                name="instances_operate",
            ),
            path(
                "<path:object_id>/reinstall/",
                view(operations.reinstall),
                name="instances_reinstall",
            ),
            path(
                "<path:object_id>/password/", view(operations.password), name="instances_password"
            ),
            path("<path:object_id>/rename/", view(operations.rename), name="instances_rename"),
            path("<path:object_id>/migrate/", view(operations.migrate), name="instances_migrate"),
            *super().get_urls(),
        ]

    class Media:
        css = {"all": ["css/backoffice.css"]}

    def changelist_view(self, request, extra_context=None):
        # The columns want the whole width of a 1280 px screen: no navigation sidebar here.
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_queryset(self, request):
        operations = InstanceOperation.objects.filter(instance=OuterRef("pk"))
        live = operations.filter(state__in=InstanceOperation.LIVE)
        newest = operations.order_by("-created_at", "-id")
        failed = newest.filter(state=InstanceOperation.State.FAILED)
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_kind=Subquery(live.values("kind")[:1]),
                live_step=Subquery(live.values("step")[:1]),
                live_since=Subquery(live.values("created_at")[:1]),
                live_touched=Subquery(live.values("updated_at")[:1]),
                live_step_since=Subquery(live.values("step_started_at")[:1]),
                latest_state=Subquery(newest.values("state")[:1]),
                last_error_text=Subquery(failed.values("error")[:1]),
                last_error_at=Subquery(failed.values("created_at")[:1]),
            )
        )

    def audit_state(self, instance):
        operation = "none"
        if getattr(instance, "live_kind", None):
            operation = f"{instance.live_kind} ({instance.live_step or 'queued'})"
        state = {"status": instance.status, "node": instance.node_id and instance.node.name}
        state["operation"] = operation
        if instance.family == Family.DEDICATED:
            server = getattr(instance, "dedicated_server", None)
            state["machine"] = f"{server.asset_tag} {server.state}" if server else None
        return state

    @admin.display(description="customer", ordering="owner__email")
    def customer(self, obj):
        url = reverse("admin:accounts_user_change", args=[obj.owner_id])
        email = obj.owner.email
        return format_html('<a href="{}" title="{}">{}</a>', url, email, email)

    @admin.display(description="status", ordering="status")
    def status_dot(self, obj):
        return format_html(
            '<span class="bo-status bo-status-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="node", ordering="node__name")
    def node_name(self, obj):
        if obj.moving_from_id:
            return f"{obj.moving_from.name} → {obj.node.name}"
        return obj.node.name if obj.node_id else "—"

    @admin.display(description="operation")
    def current_operation(self, obj):
        if not obj.live_kind:
            return "—"
        now = timezone.now()
        text = f"{obj.live_kind} · {obj.live_step or 'queued'} ({timesince(obj.live_since, now)})"
        stuck_after = timedelta(seconds=settings.OPERATION_STUCK_AFTER)
        if obj.live_touched and obj.live_touched < now - stuck_after:
            idle = timesince(obj.live_touched, now)
            return format_html(
                '{} <span class="bo-stuck">stuck: no progress for {}</span>', text, idle
            )
        return text

    @admin.display(description="last error")
    def last_error(self, obj):
        if obj.missing_since:
            since = timesince(obj.missing_since, timezone.now())
            return format_html('<span class="bo-error">Missing on Proxmox for {}</span>', since)
        if not obj.last_error_text:
            return "—"
        line = obj.last_error_text.strip().splitlines()[0] if obj.last_error_text.strip() else ""
        short = line if len(line) <= 90 else line[:89] + "…"
        return format_html(
            '<span class="bo-error" title="{}">{}</span> <span class="quiet">{} ago</span>',
            obj.last_error_text,
            short,
            timesince(obj.last_error_at, timezone.now()),
        )

    def build_view(self, request):
        """Until checkout exists, staff can build a server for a customer from here."""
        if not request.user.has_perm("instances.add_instance"):
            raise PermissionDenied
        form = BuildServerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            keys = list(data["owner"].ssh_keys.values_list("pk", flat=True))
            try:
                instance = services.instance_create(
                    owner=data["owner"],
                    hostname=data["hostname"],
                    location=data["location"],
                    os_image=data["os_image"],
                    spec=services.InstanceSpec(
                        family=data["family"],
                        plan_name="custom",
                        vcpus=data["vcpus"],
                        dedicated_cores=data["family"] == Family.VDS,
                        memory_mib=data["memory_mib"],
                        disk_gib=data["disk_gib"],
                        # Storage VPS live on bulk storage; NVMe VPS and VDS on NVMe.
                        storage_class=(
                            StorageClass.BULK
                            if data["family"] == Family.STORAGE_VPS
                            else StorageClass.NVME
                        ),
                    ),
                    ssh_key_ids=keys if data["use_customer_keys"] else [],
                    generate_password=data["generate_password"],
                    reason="Build queued by support.",
                    actor=InstanceEvent.Actor.STAFF,
                    actor_user=request.user,
                )
            except services.InstanceError as exc:
                form.add_error(None, str(exc))
            else:
                spec = f"{data['family']} {data['vcpus']} vCPU, {data['memory_mib']} MiB RAM, "
                staff_log.record(
                    request.user,
                    instance,
                    f"Build for {data['owner']}: {spec}{data['disk_gib']} GiB disk in "
                    f"{data['location'].code}, {data['os_image']}",
                    after={"status": instance.status},
                    flag=ADDITION,
                )
                messages.success(request, f"Build of {instance.hostname} queued.")
                password = services.password_reveal(instance=instance)
                if not password:
                    return redirect(reverse("admin:instances_instance_change", args=[instance.pk]))
                # Shown in this response only (never in a message cookie or the session).
                context = {
                    **self.admin_site.each_context(request),
                    "title": f"Root password for {instance.hostname}",
                    "instance": instance,
                    "password": password,
                    "opts": self.model._meta,
                }
                response = TemplateResponse(
                    request, "admin/instances/instance/password.html", context
                )
                response["Cache-Control"] = "no-store"
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Build a server for a customer",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/instances/instance/build.html", context)


@admin.register(InstanceEvent)
class InstanceEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "instance", "new_status", "step", "message", "detail"]
    list_filter = ["actor", "new_status"]
    search_fields = ["instance__hostname", "message"]
    list_select_related = ["instance"]

    def lookup_allowed(self, lookup, value, request):
        # The customer page links to the whole timeline of a customer's servers.
        return lookup == "instance__owner__id__exact" or super().lookup_allowed(
            lookup, value, request
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit trail is append-only


@admin.register(DedicatedServer)
class DedicatedServerAdmin(staff_log.AuditedAdmin):
    list_display = ["asset_tag", "model", "location", "cores", "memory_gib", "state", "instance"]
    list_select_related = ["location", "instance"]
    list_filter = ["state", "location"]
