"""The server page's Snapshots and Backups cards: what the customer asks for there.

Each view parses the form, calls one service and goes back to the server page, which shows
the operation's steps live. Another customer's server is a 404; a snapshot or backup of
another server is "not there". A name the customer typed comes back in the form when it is
refused.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from instances import backups, selectors, snapshots
from instances.models import InstanceEvent
from instances.state import InstanceError

CUSTOMER = InstanceEvent.Actor.CUSTOMER


def _back(instance, card: str, **query: str):
    url = reverse("instances:detail", args=[instance.pk])
    return redirect(f"{url}?{urlencode(query)}#{card}" if query else f"{url}#{card}")


def _ask(request, instance, card: str, call, done: str, **kwargs):
    try:
        call(instance=instance, actor=CUSTOMER, actor_user=request.user, **kwargs)
    except InstanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return _back(instance, card)


@login_required
@require_POST
def snapshot_take(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    label = request.POST.get("label", "")
    try:
        snapshots.snapshot_take(
            instance=instance, label=label, actor=CUSTOMER, actor_user=request.user
        )
    except InstanceError as error:
        messages.error(request, str(error))
        return _back(instance, "snapshots", snapshot_label=label[:200])
    messages.success(request, f"Taking a snapshot of {instance.hostname}.")
    return _back(instance, "snapshots")


@login_required
@require_POST
def snapshot_rollback(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _ask(
        request,
        instance,
        "snapshots",
        snapshots.snapshot_rollback,
        f"Rolling {instance.hostname} back.",
        snapshot_id=request.POST.get("snapshot"),
    )


@login_required
@require_POST
def snapshot_delete(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _ask(
        request,
        instance,
        "snapshots",
        snapshots.snapshot_delete,
        "Deleting the snapshot.",
        snapshot_id=request.POST.get("snapshot"),
    )


@login_required
@require_POST
def backup_now(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _ask(
        request, instance, "backups", backups.backup_now, f"Backing up {instance.hostname}."
    )


@login_required
@require_POST
def backup_restore(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _ask(
        request,
        instance,
        "backups",
        backups.backup_restore,
        f"Restoring {instance.hostname}.",
        backup_id=request.POST.get("backup"),
    )
