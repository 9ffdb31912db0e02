"""The OpenAPI document is valid, and the API keeps to it: schemathesis generates requests
from the live document (valid ones, and ones that break it) for every operation and checks
each answer: never a server error, only documented status codes, bodies that match their
schemas, bad input refused."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis import checks

from api.main import api
from tests.api.conftest import token_for
from tests.instances.operations import running_server

pytestmark = pytest.mark.django_db


def test_the_openapi_document_is_valid_openapi(client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200

    def no_key_twice(pairs):  # JSON allows it, YAML-reading tools (Swagger UI) refuse it
        keys = [key for key, _value in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(document.content, object_pairs_hook=no_key_twice)
    # Loading validates the document against the OpenAPI specification.
    loaded = schemathesis.openapi.from_dict(document.json())
    assert loaded.specification.version.startswith("3.1")
    operations = {
        (result.ok().method.upper(), result.ok().path) for result in loaded.get_all_operations()
    }
    assert len(operations) == len(
        [m for methods in api.get_openapi_schema()["paths"].values() for m in methods]
    )


def test_the_interactive_documentation_is_served_from_here(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    body = page.content.decode()
    assert "swagger-ui-bundle.js" in body and "cdn." not in body
    assert "'unsafe-inline'" in page["Content-Security-Policy"]  # its styles, this page only
    assert "'unsafe-inline'" not in client.get("/").get("Content-Security-Policy", "")


@pytest.fixture
def alice_token(world, demo_location, demo_sandbox, alice):
    """alice's token, with her things behind it (a running server, a key), for requests made
    in-process: as Django's test client does, they do not close the database connection when
    they end, since the test's transaction (which rolls everything back) lives on it."""
    running_server(alice, demo_location)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield token_for(alice)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# The document as the running application serves it (no database needed to serve it).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@schema.parametrize()
@hypothesis_settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_the_document(case, alice_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {alice_token}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.negative_data_rejection,
            checks.ignored_auth,
        ],
    )
