from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET


@login_required
@require_GET
def overview(request):
    return render(request, "billing/overview.html", {"subscriptions": [], "invoices": []})
