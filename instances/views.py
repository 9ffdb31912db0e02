"""The customer's servers: the list, the server page (control panel) and its actions.

Views parse input, call one service, and redirect back to the server page, which shows the
operation's steps live. Another customer's server is a 404 for every URL here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from accounts.services import profile_is_complete
from instances import backups, reverse_dns, selectors, services, snapshots, usage
from instances.forms import PasswordResetForm, RebootPlanForm, ReinstallForm, RenameForm
from instances.models import InstanceEvent

CUSTOMER = InstanceEvent.Actor.CUSTOMER


@login_required
@require_GET
def server_list(request):
    return render(
        request,
        "instances/dashboard.html",
        {
            "servers": selectors.servers_of(request.user),
            "profile_complete": profile_is_complete(request.user),
        },
    )


@login_required
@require_GET
def server_detail(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    # The partial shows no traffic: it does not read it.
    panel = selectors.panel(instance, with_traffic=not request.htmx)
    live = panel.operation is not None and panel.operation.is_live
    if request.htmx and not live and request.GET.get("seen") == panel.version:
        # Nothing happened since the page was drawn (the slow look while nothing runs).
        response = HttpResponse(status=204)
        patch_vary_headers(response, ["HX-Request"])
        return response
    context = {"instance": instance, "panel": panel, "timeline": selectors.timeline(instance)}
    if request.htmx:
        # The timeline further down the page comes along out of band.
        response = render(request, "instances/detail.html#live", context | {"oob": True})
        if not live:
            # Something changed (an operation ended, or one started or a payment came in
            # while the page was open): reload the page once, so every card shows it.
            response.status_code = HttpResponseStopPolling.status_code
            response["HX-Refresh"] = "true"
    else:
        context["rename_form"] = RenameForm(initial={"hostname": instance.hostname})
        context["reverse_dns"] = reverse_dns.reverse_dns_panel(instance, panel.operation)
        context["snapshots"] = snapshots.snapshots_panel(instance, panel.operation)
        context["backups"] = backups.backups_panel(instance, panel.operation)
        response = render(request, "instances/detail.html", context)
    # One URL, two bodies: caches and the back button must not mix the page and the partial.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def server_graphs(request, instance_id: int):
    """The usage graphs (a partial): from the cache, or "loading" while a worker fetches."""
    instance = selectors.server_of(request.user, instance_id)
    timeframe = request.GET.get("range", "hour")
    if timeframe not in usage.TIMEFRAMES:
        timeframe = "hour"
    samples = usage.cached(instance.pk, timeframe)
    if samples is None and instance.vmid and usage.should_fetch(instance.pk, timeframe):
        services.usage_refresh(instance=instance, timeframe=timeframe)
    response = render(
        request,
        "instances/graphs.html" if request.htmx else "instances/graphs_page.html",
        {
            "instance": instance,
            "timeframe": timeframe,
            "timeframe_label": usage.TIMEFRAMES[timeframe],
            "timeframes": usage.TIMEFRAMES,
            "charts": usage.charts(samples) if samples else None,
            "loading": samples is None and bool(instance.vmid),
        },
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


def _requested(request, instance, call, **kwargs):
    """Ask for an operation; its steps show on the server page (errors say what to do)."""
    try:
        operation = call(instance=instance, actor=CUSTOMER, actor_user=request.user, **kwargs)
    except services.InstanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{operation.get_kind_display().capitalize()} started.")
    return redirect("instances:detail", instance.pk)


@login_required
@require_POST
def server_power(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    action = request.POST.get("action", "")
    return _requested(request, instance, services.instance_power, action=action)


@login_required
@require_POST
def server_rename(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Type the new name.")
        return redirect("instances:detail", instance.pk)
    return _requested(
        request, instance, services.instance_rename, hostname=form.cleaned_data["hostname"]
    )


@login_required
@require_http_methods(["GET", "POST"])
def server_reinstall(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    form = ReinstallForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.instance_reinstall(
                instance=instance,
                image=data["image"],
                ssh_key_ids=[key.pk for key in data["ssh_keys"]],
                generate_password=data["generate_password"],
                confirm_hostname=data["confirm_hostname"],
                actor=CUSTOMER,
                actor_user=request.user,
            )
        except services.InstanceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Reinstall of {instance.hostname} started.")
            return redirect("instances:detail", instance.pk)
    return render(request, "instances/reinstall.html", {"instance": instance, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def server_password(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    form = PasswordResetForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        return _requested(
            request,
            instance,
            services.instance_password_reset,
            allow_reboot=form.cleaned_data["allow_reboot"],
        )
    return render(request, "instances/password.html", {"instance": instance, "form": form})


@login_required
@require_POST
@never_cache
def server_password_reveal(request, instance_id: int):
    """The generated password, once: shown in this response only, then forgotten."""
    instance = selectors.server_of(request.user, instance_id)
    password = services.password_reveal(instance=instance)
    if password is None:
        messages.info(request, "The password was already shown once and is not kept.")
        return redirect("instances:detail", instance.pk)
    return render(
        request, "instances/password_shown.html", {"instance": instance, "password": password}
    )


@login_required
@require_POST
def server_reboot_plan(request, instance_id: int):
    """Plan a reboot (it applies what waits for one) at a time the customer picks, or cancel it."""
    instance = selectors.server_of(request.user, instance_id)
    form = RebootPlanForm(request.POST)
    if request.POST.get("cancel"):
        services.reboot_plan(instance=instance, at=None, actor_user=request.user)
        messages.success(request, "The planned reboot is cancelled.")
    elif not form.is_valid():
        messages.error(request, " ".join(form.errors.get("at", ["Pick a date and time."])))
    else:
        try:
            services.reboot_plan(
                instance=instance, at=form.cleaned_data["at"], actor_user=request.user
            )
        except services.InstanceError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{instance.hostname} reboots at the time you chose.")
    return redirect("instances:detail", instance.pk)
