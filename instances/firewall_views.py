"""The server's firewall page: on/off, default policies, the rules in order, presets.

Another customer's server is a 404 here too (selectors.server_of). A change that cannot be taken
shows the page again with everything as typed and the wrong fields marked.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from instances import firewall, selectors
from instances.firewall_forms import (
    FirewallSettingsForm,
    RuleFormSet,
    first_errors,
    initial_rules,
    rules_in_order,
)
from instances.firewall_rules import PRESETS
from instances.models import InstanceEvent
from instances.services import InstanceError

CUSTOMER = InstanceEvent.Actor.CUSTOMER
PREFIX = "rules"


@login_required
@require_http_methods(["GET", "POST"])
def server_firewall(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    page = firewall.firewall_page(instance)
    if request.htmx and request.method == "GET":
        context = {"instance": instance, "page": page}
        response = render(request, "instances/firewall.html#state", context)
        if not page.applying:
            response.status_code = HttpResponseStopPolling.status_code
        patch_vary_headers(response, ["HX-Request"])
        return response
    if request.method == "POST":
        settings_form = FirewallSettingsForm(request.POST)
        formset = RuleFormSet(request.POST, prefix=PREFIX)
        problem = ""
        if settings_form.is_valid() and formset.is_valid():
            try:
                firewall.firewall_update(
                    instance=instance,
                    **settings_form.cleaned_data,
                    rules=rules_in_order(formset),
                    actor=CUSTOMER,
                    actor_user=request.user,
                )
            except InstanceError as error:
                problem = str(error)
            else:
                messages.success(request, "Firewall saved; it is being applied to the server.")
                return redirect("instances:firewall", instance.pk)
        else:
            problem = first_errors(formset) or "Nothing was changed: check the fields marked."
        messages.error(request, problem)
    else:
        fw = page.firewall
        settings_form = FirewallSettingsForm(
            initial={"enabled": fw.enabled, "policy_in": fw.policy_in, "policy_out": fw.policy_out}
        )
        formset = RuleFormSet(initial=initial_rules(page.rules), prefix=PREFIX)
    context = {
        "instance": instance,
        "page": page,
        "settings_form": settings_form,
        "formset": formset,
        "presets": PRESETS,
    }
    response = render(request, "instances/firewall.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def server_firewall_preset(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    preset = request.POST.get("preset", "")
    try:
        firewall.firewall_preset(
            instance=instance, preset=preset, actor=CUSTOMER, actor_user=request.user
        )
    except InstanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Preset “{PRESETS[preset].name}” saved; it is being applied.")
    return redirect("instances:firewall", instance.pk)
