"""Support acts on a server from its admin page: every customer action, as an operation with
the staff member as its actor, plus "sync status now"."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from common import staff_log
from instances import services
from instances.forms import PasswordResetForm, ReinstallForm, RenameForm
from instances.models import Instance, InstanceEvent, InstanceOperation, Node

STAFF = InstanceEvent.Actor.STAFF


def _server(request, object_id) -> Instance:
    if not request.user.has_perm("instances.change_instance"):
        raise PermissionDenied
    return get_object_or_404(Instance.objects.select_related("location", "owner"), pk=object_id)


def _back(instance: Instance):
    return redirect(reverse("admin:instances_instance_change", args=[instance.pk]))


def _state(instance_id: int) -> dict:
    """The server as the audit log shows it before and after a staff action."""
    instance = Instance.objects.select_related("node").get(pk=instance_id)
    live = instance.operations.filter(state__in=InstanceOperation.LIVE).first()
    return {
        "status": instance.status,
        "node": instance.node.name if instance.node else None,
        "operation": f"{live.kind} ({live.state})" if live else None,
    }


def _log(request, instance: Instance, what: str, before: dict) -> None:
    staff_log.record(request.user, instance, what, before=before, after=_state(instance.pk))


@require_POST
def operate(request, object_id):
    """Power actions and the status sync, from the buttons on the server's admin page."""
    instance = _server(request, object_id)
    action = request.POST.get("action", "")
    before = _state(instance.pk)
    if action == "sync":
        if instance.cluster_id is None:
            messages.error(request, "The server has no cluster yet.")
        else:
            services.status_sync_request(cluster_id=instance.cluster_id)
            _log(request, instance, "Sync status now", before)
            messages.info(request, "A worker reads the status from Proxmox; reload in a moment.")
        return _back(instance)
    try:
        services.instance_power(
            instance=instance, action=action, actor=STAFF, actor_user=request.user
        )
    except services.InstanceError as error:
        messages.error(request, str(error))
    else:
        _log(request, instance, action.capitalize(), before)
        messages.success(request, f"{action.capitalize()} of {instance.hostname} started.")
    return _back(instance)


def _form_page(request, admin_site, instance, title, form, run):
    if request.method == "POST" and form.is_valid():
        before = _state(instance.pk)
        try:
            run(form.cleaned_data)
        except services.InstanceError as error:
            form.add_error(None, str(error))
        else:
            asked = {k: v for k, v in form.cleaned_data.items() if k != "confirm_hostname"}
            _log(request, instance, f"{title}: {staff_log.describe_values(asked)}", before)
            messages.success(request, f"{title} of {instance.hostname} started.")
            return _back(instance)
    context = {
        **admin_site.each_context(request),
        "title": f"{title}: {instance.hostname}",
        "form": form,
        "instance": instance,
        "opts": Instance._meta,
    }
    return TemplateResponse(request, "admin/instances/instance/operation_form.html", context)


def reinstall(request, object_id, admin_site):
    instance = _server(request, object_id)
    form = ReinstallForm(request.POST or None, instance=instance)

    def run(data):
        services.instance_reinstall(
            instance=instance,
            image=data["image"],
            ssh_key_ids=[key.pk for key in data["ssh_keys"]],
            generate_password=data["generate_password"],
            confirm_hostname=data["confirm_hostname"],
            actor=STAFF,
            actor_user=request.user,
        )

    return _form_page(request, admin_site, instance, "Reinstall", form, run)


def password(request, object_id, admin_site):
    """A new password for the customer: they reveal it once from their server page."""
    instance = _server(request, object_id)
    form = PasswordResetForm(request.POST if request.method == "POST" else None)

    def run(data):
        services.instance_password_reset(
            instance=instance,
            allow_reboot=data["allow_reboot"],
            actor=STAFF,
            actor_user=request.user,
        )

    return _form_page(request, admin_site, instance, "Password reset", form, run)


def rename(request, object_id, admin_site):
    instance = _server(request, object_id)
    form = RenameForm(request.POST or None, initial={"hostname": instance.hostname})

    def run(data):
        services.instance_rename(
            instance=instance, hostname=data["hostname"], actor=STAFF, actor_user=request.user
        )

    return _form_page(request, admin_site, instance, "Rename", form, run)


class MigrateForm(forms.Form):
    target = forms.ModelChoiceField(
        label="Move to",
        queryset=Node.objects.none(),
        required=False,
        empty_label="the least loaded node with room",
        help_text="A live migration: the server keeps running, its addresses and VMID stay.",
    )

    def __init__(self, *args, instance: Instance, **kwargs):
        super().__init__(*args, **kwargs)
        others = Node.objects.filter(cluster=instance.cluster_id, state=Node.State.ACTIVE)
        self.fields["target"].queryset = others.exclude(pk=instance.node_id)


def migrate(request, object_id, admin_site):
    """Staff move the server to another node without stopping it."""
    instance = _server(request, object_id)
    form = MigrateForm(request.POST or None, instance=instance)

    def run(data):
        services.instance_migrate(
            instance=instance, target=data["target"], actor=STAFF, actor_user=request.user
        )

    return _form_page(request, admin_site, instance, "Move to another host", form, run)
