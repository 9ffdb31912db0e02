from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from accounts.services import profile_is_complete
from instances import selectors


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
    operation = selectors.operation_shown(instance)
    progress = selectors.progress(operation) if operation else []
    context = {
        "instance": instance,
        "operation": operation,
        "progress": progress,
        "percent": selectors.percent_done(progress),
        "events": instance.events.order_by("-created_at", "-id")[:50],
    }
    if request.htmx:
        response = render(request, "instances/detail.html#live", context)
        if not (operation and operation.is_live):
            # 286 tells htmx to stop polling; the settled partial is still swapped in.
            response.status_code = HttpResponseStopPolling.status_code
    else:
        response = render(request, "instances/detail.html", context)
    # One URL, two bodies: caches and the back button must not mix the page and the partial.
    patch_vary_headers(response, ["HX-Request"])
    return response
