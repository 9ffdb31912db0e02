"""allauth's hooks: its mail names the portal (SITE_NAME), not the host of the request."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context_data: dict) -> None:
        # Without django.contrib.sites allauth's "current site" is the request's host, so its
        # mail said "Hello from 127.0.0.1:8000!". The name is ours; the domain (in "register an
        # account on ...") stays the host the customer used.
        site = get_current_site(context.request)
        site.name = settings.SITE_NAME
        super().send_mail(template_prefix, email, {"current_site": site, **context_data})
