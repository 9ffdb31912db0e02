"""The portal's URLs plus the benchmark's reference view (bench/pages.py).

The reference is the cheapest page a signed-in customer could get: the same middleware and
session as the portal's pages, then one query and a tiny template. Each page's throughput is
reported as a ratio to it, which cancels out how fast the machine happens to be in that run.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path

from instances.models import Instance
from portal.urls import urlpatterns as portal_urlpatterns


@login_required
def reference(request):
    count = Instance.objects.filter(owner=request.user).count()
    return render(request, "bench/reference.html", {"count": count})


urlpatterns = [
    path("bench/reference/", reference, name="bench_reference"),
    *portal_urlpatterns,
]
