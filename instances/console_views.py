"""The browser console's pages: the console page of a server and the POST that opens a console
session for it, for its owner (another customer's server is a 404) and for support staff
(under /admin/, with their second factor and the right to change servers).

The page's script (static/js/console.js) asks for a session, then connects its websocket to
the console proxy in the ASGI server (CONSOLE_WEBSOCKET_ORIGIN); nothing here talks to PVE.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from instances import consoles, selectors
from instances.models import Instance, InstanceEvent
from instances.state import InstanceError

Actor = InstanceEvent.Actor


@login_required
@require_GET
def server_console(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _page(
        request,
        instance,
        session_url=reverse("instances:console_session", args=[instance.pk]),
        back_url=reverse("instances:detail", args=[instance.pk]),
    )


@login_required
@require_POST
@never_cache
def server_console_session(request, instance_id: int):
    instance = selectors.server_of(request.user, instance_id)
    return _session(request, instance, Actor.CUSTOMER)


def staff_console(request, instance_id: int):
    """Support's console of any server (portal/urls.py wraps it in the admin's login)."""
    instance = _staff_server(request, instance_id)
    return _page(
        request,
        instance,
        session_url=reverse("staff_console_session", args=[instance.pk]),
        back_url=reverse("admin:instances_instance_change", args=[instance.pk]),
    )


@require_POST
@never_cache
def staff_console_session(request, instance_id: int):
    return _session(request, _staff_server(request, instance_id), Actor.STAFF)


def _staff_server(request, instance_id: int) -> Instance:
    if not request.user.has_perm("instances.change_instance"):
        raise PermissionDenied
    return get_object_or_404(
        Instance.objects.select_related("location", "os_image", "ipv4"), pk=instance_id
    )


def _page(request, instance: Instance, *, session_url: str, back_url: str):
    kinds = consoles.console_kinds(instance)
    response = render(
        request,
        "instances/console.html",
        {
            "instance": instance,
            "kinds": [consoles.Kind(kind) for kind in kinds],
            "session_url": session_url,
            "back_url": back_url,
            "idle_time": consoles.idle_time(),
        },
    )
    # xterm.js writes its own <style> elements, which the page's script gives the nonce.
    policy = dict(settings.SECURE_CSP)
    policy["style-src"] = [*policy.get("style-src", [CSP.SELF]), CSP.NONCE]
    response._csp_config = policy  # what django.views.decorators.csp.csp_override sets
    return response


def _session(request, instance: Instance, actor: str):
    """A console session for the page: the websocket URL, and the single-use token its
    script offers as a subprotocol (so that it is in no URL and no server's log)."""
    try:
        _session, token = consoles.console_open(
            instance=instance,
            user=request.user,
            kind=request.POST.get("kind", ""),
            login_session_key=request.session.session_key or "",
            actor=actor,
        )
    except InstanceError as error:
        return JsonResponse({"error": str(error)}, status=409)
    origin = settings.CONSOLE_WEBSOCKET_ORIGIN or (
        f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
    )
    return JsonResponse({"url": f"{origin}/console/ws/", "protocol": f"portal-console.{token}"})
