"""Request-wide rules that belong to no single app."""

from __future__ import annotations

import logging

import redis
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control

logger = logging.getLogger(__name__)

# Factors that prove a second factor on their own (recovery codes only back one up).
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


class StaffTwoFactorMiddleware:
    """Staff open admin pages only with a second factor: without one, every admin page sends
    them to set up an authenticator app first. Customers, the setup pages and logging out are
    not affected."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._needs_second_factor(request):
            messages.warning(
                request,
                "Staff need two-factor authentication: set up an authenticator app, then open "
                "the admin again.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)

    def _needs_second_factor(self, request) -> bool:
        user = request.user
        return (
            user.is_authenticated
            and user.is_staff
            and request.path.startswith(reverse("admin:index"))
            and request.path != reverse("admin:logout")
            and not is_mfa_enabled(user, SECOND_FACTORS)
        )


class PrivatePagesMiddleware:
    """What a signed-in user sees (their servers' addresses, invoices, once a root password)
    is kept by no shared cache and not on disk: `Cache-Control: private, no-store`, unless the
    view chose its own Cache-Control."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            patch_cache_control(response, private=True, no_store=True)
        return response


class CacheUnavailableMiddleware:
    """Redis as the cache (rate-limit counters, used two-factor codes) not answering within its
    timeouts: 503 and "try again in a minute", not a 500. Rate limits fail closed: nobody signs
    in unthrottled while the counters cannot be read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, redis.ConnectionError | redis.TimeoutError):
            return None
        logger.error("cache unavailable during %s %s: %s", request.method, request.path, exception)
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "60"
        return response
