"""Who is calling: a bearer token, read-only or read-write, limited in requests per minute."""

from __future__ import annotations

import math
import time

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from api import tokens
from api.errors import APIError


def token_of(request: HttpRequest, secret: str):
    """The token this request carries (looked up once per request)."""
    if not hasattr(request, "_api_token"):
        request._api_token = tokens.token_check(secret, ip=client_ip(request))
    return request._api_token


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address as allauth's rate limits see it (TRUSTED_PROXY_COUNT honoured);
    None when the request carries none."""
    try:
        return get_adapter().get_client_ip(request)
    except PermissionDenied:
        return None


def bearer_of(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


class TokenAuth(HttpBearer):
    """`Authorization: Bearer vpsp_…`; `write`: the token must be read-write (403 otherwise)."""

    def __init__(self, *, write: bool):
        self.write = write
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str):
        found = token_of(request, token)
        if found is None:
            return None
        if self.write and not found.may_write:
            raise APIError(
                403,
                "read_only_token",
                "This token may only read. Make a read-and-write token on your account page "
                "to change things.",
            )
        request.user = found.owner
        return found


read = TokenAuth(write=False)
write = TokenAuth(write=True)


class TokenRateThrottle(BaseThrottle):
    """API_RATE_LIMIT requests per API_RATE_WINDOW seconds per token, counted in the shared
    cache (one counter per window, incremented atomically in Redis)."""

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if token is None:
            return True  # authentication answers 401 first
        window = settings.API_RATE_WINDOW
        now = time.time()
        start = math.floor(now / window) * window
        self.retry_after = max(1, math.ceil(start + window - now))
        key = f"api-rate:{token.pk}:{start}"
        if cache.add(key, 1, timeout=window + 5):
            return True
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window + 5)
            return True
        return count <= settings.API_RATE_LIMIT

    def wait(self) -> float:
        return self.retry_after
