"""Pages for a signed-in user are never stored by a shared cache or on disk
(`Cache-Control: private, no-store`); public pages are left to the usual caching."""

from __future__ import annotations

import pytest

from tests.factories import make_instance, make_location_with_capacity, make_operation

pytestmark = pytest.mark.django_db


def assert_private_and_not_stored(response) -> None:
    directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
    assert {"private", "no-store"} <= directives, response.headers.get("Cache-Control")


@pytest.mark.parametrize(
    "path",
    ["/servers/", "/billing/", "/account/", "/account/profile/", "/account/ssh-keys/", "/plans/"],
)
def test_pages_for_a_signed_in_customer_are_private_and_not_stored(alice_client, path):
    response = alice_client.get(path)
    assert response.status_code == 200
    assert_private_and_not_stored(response)


def test_the_live_server_partial_is_private_and_not_stored(alice_client, alice):
    server = make_instance(alice, make_location_with_capacity(), status="provisioning")
    make_operation(server, step="clone")
    page = alice_client.get(f"/servers/{server.pk}/")
    partial = alice_client.get(f"/servers/{server.pk}/", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()  # the partial, not the page
    assert_private_and_not_stored(page)
    assert_private_and_not_stored(partial)


def test_the_redirect_after_signing_in_is_private_and_not_stored(client, alice, password):
    response = client.post("/accounts/login/", {"login": alice.email, "password": password})
    assert response.status_code == 302
    assert_private_and_not_stored(response)


@pytest.mark.parametrize("path", ["/admin/", "/admin/instances/instance/"])
def test_admin_pages_are_private_and_not_stored(client, staff, path):
    client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 200
    assert_private_and_not_stored(response)


def test_public_pages_for_visitors_are_not_marked_private(client):
    response = client.get("/plans/")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
