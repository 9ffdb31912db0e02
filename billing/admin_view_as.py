"""View as customer: support sees a customer's server list and server pages as the customer
sees them, read-only, from the customer page.

Safe by construction rather than by care:
- The pages render in the staff member's own request and session; nobody signs in as the
  customer, so there is no switched session a bug could leave behind.
- They are built by the selectors of the customer's own pages, with no actions: the panel
  offers none, and `view_as` in the context hides what is not an action of the panel (the
  password reveal, the live polling, the graphs, the order button).
- Every URL here answers GET only. The customer's own URLs look the server up by the
  signed-in user, so anything staff might post there finds nothing (404). And the browser
  sends nothing from these pages: their Content-Security-Policy allows no form submission
  and no fetch (form-action and connect-src 'none'), whatever a template adds later.
- Each page opened is in the audit log (common/staff_log.py, "viewed").
"""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from accounts.models import User
from accounts.services import profile_is_complete
from common import staff_log
from instances import backups, reverse_dns, selectors, snapshots

READ_ONLY_CSP = {**settings.SECURE_CSP, "form-action": [CSP.NONE], "connect-src": [CSP.NONE]}


def may_view_as(user: User) -> bool:
    """Staff who may see customers and their servers (support; superusers)."""
    return user.has_perm("accounts.view_user") and user.has_perm("instances.view_instance")


def _customer(request, user_id: int) -> User:
    if not may_view_as(request.user):
        raise PermissionDenied
    return get_object_or_404(User, pk=user_id)


def _page(request, template: str, customer: User, context: dict) -> TemplateResponse:
    response = TemplateResponse(request, template, context | {"view_as": customer})
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@csp_override(READ_ONLY_CSP)
def server_list(request, admin_site, user_id: int):
    customer = _customer(request, user_id)
    staff_log.record(
        request.user,
        customer,
        "Viewed the server list as the customer (read-only)",
        flag=staff_log.VIEW,
    )
    context = {
        "servers": selectors.servers_of(customer),
        "profile_complete": profile_is_complete(customer),
    }
    return _page(request, "admin/billing/customer/view_as_list.html", customer, context)


@require_GET
@csp_override(READ_ONLY_CSP)
def server_detail(request, admin_site, user_id: int, instance_id: int):
    customer = _customer(request, user_id)
    instance = selectors.server_of(customer, instance_id)  # 404 unless it is the customer's
    staff_log.record(
        request.user,
        customer,
        f"Viewed server {instance.hostname} (#{instance.pk}) as the customer (read-only)",
        flag=staff_log.VIEW,
    )
    panel = selectors.panel(instance)
    # The cards of the customer's server page (instances/views.py server_detail), read-only.
    context = {
        "instance": instance,
        "panel": dataclasses.replace(panel, actions=frozenset()),
        "timeline": selectors.timeline(instance),
        "reverse_dns": reverse_dns.reverse_dns_panel(instance, panel.operation),
        "snapshots": snapshots.snapshots_panel(instance, panel.operation),
        "backups": backups.backups_panel(instance, panel.operation),
    }
    return _page(request, "admin/billing/customer/view_as_detail.html", customer, context)
