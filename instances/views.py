from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.services import profile_is_complete


@login_required
@require_GET
def dashboard(request):
    return render(
        request,
        "instances/dashboard.html",
        {"servers": [], "profile_complete": profile_is_complete(request.user)},
    )
