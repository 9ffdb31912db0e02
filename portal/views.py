from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal import health

PRODUCT_LINES = [
    {
        "name": "Storage VPS",
        "pitch": "Lots of disk on bulk storage for backups, archives and media.",
        "points": ["Shared vCPUs", "HDD-class bulk storage", "Traffic and usage in the panel"],
    },
    {
        "name": "NVMe VPS",
        "pitch": "Fast NVMe storage for web apps, databases and CI runners.",
        "points": ["Shared vCPUs", "NVMe storage", "Reinstall another OS in minutes"],
    },
    {
        "name": "VDS",
        "pitch": "Dedicated physical cores and RAM with no overcommit.",
        "points": ["Dedicated cores", "Guaranteed RAM", "NVMe storage"],
    },
    {
        "name": "Dedicated",
        "pitch": "A whole physical machine, racked and installed for you.",
        "points": ["Entire server", "Staff-installed OS", "Remote hands included"],
    },
]


@require_GET
def home(request):
    if request.user.is_authenticated:
        return redirect("instances:list")
    return render(request, "home.html", {"product_lines": PRODUCT_LINES})


@require_GET
def favicon(request):
    # Resolved per request: the hashed static name exists only after collectstatic.
    return redirect(static("img/favicon.svg"), permanent=True)


@never_cache
@require_GET
def healthz(request):
    parts = {"database": health.database_status(), "broker": health.broker_status()}
    status = 200 if all(value == "ok" for value in parts.values()) else 503
    return JsonResponse(parts, status=status)
