"""The public API, version 1: `/api/v1/`, its OpenAPI document at `/api/v1/openapi.json` and
interactive documentation at `/api/v1/docs`.

django-ninja makes the OpenAPI document from the type hints the routes already need, so the
document cannot drift from what the code accepts.
"""

from __future__ import annotations

from django.views.decorators.csp import csp_override
from ninja import NinjaAPI
from ninja.decorators import _apply_decorators

from api import errors
from api.auth import TokenRateThrottle
from api.idempotency import OPENAPI_PARAMETER, idempotent
from api.routes import account, catalog, network, orders, recovery, servers

DESCRIPTION = """
Everything the customer portal does for your servers, for scripts and tools.

**Authentication**: `Authorization: Bearer <token>`. Make tokens on your account page
(*API tokens*): read-only tokens may only read; read-and-write tokens may also change things.

**Errors** are JSON: `{"code": "...", "message": "...", "field": "..."}`. `code` is stable,
`message` is for people, `field` names the refused input.

**Rate limits**: each token may make a limited number of requests a minute; beyond it the
answer is `429` with `Retry-After` (seconds).

**Idempotency**: send `Idempotency-Key: <unique string>` with a POST; a retry with the same key
and body gets the first answer again (header `Idempotent-Replayed: true`) instead of doing the
work twice.

**Long work** (power, reinstall, upgrades) answers `202` with an operation: poll
`GET /operations/{id}` until its `state` is `succeeded` or `failed`.

**Lists** are paged: `?page=1&per_page=50` (at most 100), with `count` of all items.
"""

# Swagger UI styles its widgets inline: its page (and only it) allows inline styles.
DOCS_CSP = csp_override(
    {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
)

# Answers every route may give besides its own.
COMMON_RESPONSES = {
    401: "No valid token: missing, unknown, revoked or expired.",
    422: "The input was refused: `field` names it.",
    429: "Too many requests with this token: wait Retry-After seconds.",
}
WRITE_RESPONSES = {
    400: "The body is not JSON.",
    403: "The token may only read.",
}
NAMED_RESPONSES = {404: "Not yours, or no such thing (another customer's things do not exist)."}


class PortalAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                extra = COMMON_RESPONSES | (WRITE_RESPONSES if method != "get" else {})
                if "{" in path:
                    extra |= NAMED_RESPONSES
                responses = operation.setdefault("responses", {})
                documented = {str(status) for status in responses}  # ninja's keys are ints
                for status, description in extra.items():
                    if str(status) not in documented:
                        responses[status] = {"description": description, "content": error}
        return schema

    def get_openapi_operation_id(self, operation) -> str:
        return operation.view_func.__name__


api = PortalAPI(
    title="VPS portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    docs_decorator=DOCS_CSP,
    throttle=[TokenRateThrottle()],
)
errors.install(api)
MODULES = (servers, network, recovery, orders, catalog, account)
for module in MODULES:
    api.add_router("/", module.router)


def _post_operations():
    for module in MODULES:
        for path_view in module.router.path_operations.values():
            for operation in path_view.operations:
                if "POST" in operation.methods:
                    yield operation


for _operation in _post_operations():
    _apply_decorators((idempotent,), _operation)
    extra = _operation.openapi_extra or {}
    _operation.openapi_extra = extra | {
        "parameters": [*extra.get("parameters", []), OPENAPI_PARAMETER]
    }
