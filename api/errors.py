"""Every API error is JSON: `{"code": "...", "message": "...", "field": "..." | null}`.

`code` is stable for programs to act on; `message` is for the person reading it (the same
sentence the pages show); `field` names the input that was refused, when one was.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from billing.stripe_client import StripeError

logger = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(self, status: int, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.errors: list[dict] | None = None  # every refused field, when there are several


def refused(message: str, *, field: str | None = None, code: str = "refused") -> APIError:
    """A request the rules refuse (409 when the server's state is in the way, else 422)."""
    return APIError(422, code, message, field=field)


def conflict(message: str, *, code: str = "conflict") -> APIError:
    return APIError(409, code, message)


def _field_of(error: dict) -> str | None:
    # pydantic's location: ("body", "payload", "hostname") or ("query", "page").
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query")]
    return ".".join(loc) or None


def install(api: NinjaAPI) -> None:
    def reply(request: HttpRequest, status: int, code: str, message: str, field=None, **extra):
        body = {"code": code, "message": message, "field": field, **extra}
        return api.create_response(request, body, status=status)

    @api.exception_handler(APIError)
    def api_error(request, error: APIError):
        extra = {"errors": error.errors} if error.errors else {}
        return reply(request, error.status, error.code, error.message, error.field, **extra)

    @api.exception_handler(StripeError)
    def stripe_unavailable(request, error: StripeError):
        # Stripe unreachable or refusing a call of ours: the message is safe to show, and
        # trying again later is too (every Stripe write carries an idempotency key).
        return reply(request, 503, "stripe_unavailable", str(error))

    @api.exception_handler(ValidationError)
    def invalid(request, error: ValidationError):
        problems = [
            {"field": _field_of(item), "message": item.get("msg", "Invalid value.")}
            for item in error.errors
        ]
        first = problems[0] if problems else {"field": None, "message": "Invalid request."}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return reply(request, 422, "invalid", message, first["field"], errors=problems)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, error):
        response = reply(
            request,
            401,
            "unauthenticated",
            "Send a valid API token: Authorization: Bearer <token>. Tokens are made on your "
            "account page; a revoked or expired token no longer works.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(Throttled)
    def throttled(request, error: Throttled):
        # ninja adds Retry-After from the throttle's wait.
        return reply(request, 429, "rate_limited", "Too many requests with this token; slow down.")

    @api.exception_handler(Http404)
    def not_found(request, error):
        return reply(request, 404, "not_found", "Not found.")

    @api.exception_handler(HttpError)
    def http_error(request, error: HttpError):
        code = "malformed" if error.status_code == 400 else "error"
        return reply(request, error.status_code, code, str(error))
