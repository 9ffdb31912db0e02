"""Idempotency keys on POST: a retry with the same `Idempotency-Key` gets the first answer
again instead of doing the work twice (a second order, a second reboot).

Keys belong to the token that sent them and last API_IDEMPOTENCY_HOURS. The same key with a
different request is refused (422); while the first request still runs, a retry gets 409 and
Retry-After. Answers that say nothing about the work (401, 403, 429 and 5xx) are not kept, so
a retry after them runs.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from api.auth import bearer_of, token_of
from api.models import IdempotentRequest

HEADER = "Idempotency-Key"
NOT_KEPT = {401, 403, 429}
# A request still "in progress" after this long died with its worker: a retry takes it over.
ABANDONED_AFTER = timedelta(minutes=5)
OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    "description": "Any unique string (a UUID): a retry with the same key and body gets the "
    "first answer again instead of doing the work twice. Kept for 24 hours.",
}


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "field": None}, status=status)


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path(), request.body):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _claim(token, key: str, fingerprint: str) -> tuple[IdempotentRequest | None, HttpResponse]:
    """The new row for this key, or the answer a repeat gets."""
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(
                token=token, key=key, request_hash=fingerprint
            ), None
    except IntegrityError:
        pass
    row = IdempotentRequest.objects.filter(token=token, key=key).first()
    if row is None:  # purged meanwhile
        return _claim(token, key, fingerprint)
    if row.request_hash != fingerprint:
        return None, _error(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for another request; use a new key for each request.",
        )
    if row.status_code is None:
        if timezone.now() - row.created_at < ABANDONED_AFTER:
            response = _error(
                409,
                "idempotency_key_in_use",
                f"The first request with this {HEADER} is still running; retry in a moment.",
            )
            response["Retry-After"] = "1"
            return None, response
        row.created_at = timezone.now()
        row.save(update_fields=["created_at"])
        return row, None
    response = HttpResponse(bytes(row.body), status=row.status_code, content_type=row.content_type)
    response["Idempotent-Replayed"] = "true"
    return None, response


def idempotent(run):
    """Wraps an API operation's view (ninja's decorate_view)."""

    @wraps(run)
    def view(request: HttpRequest, *args, **kwargs):
        key = request.headers.get(HEADER, "")
        if not key:
            return run(request, *args, **kwargs)
        if len(key) > 255 or not all(33 <= ord(ch) <= 126 for ch in key):
            return _error(422, "invalid", f"{HEADER} is 1-255 printable characters without spaces.")
        token = token_of(request, bearer_of(request))
        if token is None:
            return run(request, *args, **kwargs)  # answered 401 and nothing is kept
        row, answer = _claim(token, key, _fingerprint(request))
        if row is None:
            return answer
        try:
            response = run(request, *args, **kwargs)
        except BaseException:
            row.delete()
            raise
        if response.status_code >= 500 or response.status_code in NOT_KEPT:
            row.delete()
        else:
            row.status_code = response.status_code
            row.body = response.content
            row.content_type = response.get("Content-Type", "application/json")
            row.save(update_fields=["status_code", "body", "content_type"])
        return response

    return view


def purge(now=None) -> int:
    """Forget keys older than API_IDEMPOTENCY_HOURS (beat)."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
