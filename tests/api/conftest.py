"""API fixtures: tokens, and a client that calls /api/v1/ with one."""

from __future__ import annotations

import json

import pytest

from api import tokens
from api.models import APIToken
from tests.billing.conftest import demo_sandbox, german, paid_server, settle, shop  # noqa: F401

BASE = "/api/v1"


class Api:
    """Calls the API with a bearer token, as a script would (JSON in, JSON out)."""

    def __init__(self, client, secret: str | None):
        self.client, self.secret = client, secret

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"} if self.secret else {}
        for name, value in (extra or {}).items():
            headers["HTTP_" + name.upper().replace("-", "_")] = value
        return headers

    def call(self, method: str, path: str, body=None, *, headers: dict | None = None, **query):
        url = BASE + path
        send = getattr(self.client, method.lower())
        if method.upper() in ("GET", "DELETE"):
            return send(url, query or None, **self.headers(headers))
        return send(
            url,
            json.dumps(body if body is not None else {}),
            content_type="application/json",
            **self.headers(headers),
        )

    def get(self, path: str, **query):
        return self.call("GET", path, **query)

    def post(self, path: str, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def delete(self, path: str):
        return self.call("DELETE", path)


def token_for(user, scope: str = APIToken.Scope.WRITE, **kwargs) -> str:
    _token, secret = tokens.token_create(owner=user, name="tests", scope=scope, **kwargs)
    return secret


@pytest.fixture
def api_as(client):
    """api_as(user, scope="read_write") -> Api with a fresh token of that user."""

    def make(user, scope: str = APIToken.Scope.WRITE) -> Api:
        return Api(client, token_for(user, scope))

    return make


@pytest.fixture
def anonymous_api(client):
    return Api(client, None)
