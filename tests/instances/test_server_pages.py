"""The customer's server pages: their own servers only, live build progress that stops polling."""

from __future__ import annotations

import re

import pytest

from instances.models import Instance
from instances.services import event_record
from tests.factories import make_instance, make_location_with_capacity, make_operation


@pytest.fixture
def location(db):
    return make_location_with_capacity()


def test_the_list_shows_only_the_customers_own_servers(client, alice, bob, location):
    make_instance(alice, location, hostname="alice-web")
    make_instance(bob, location, hostname="bob-db")
    client.force_login(alice)
    html = client.get("/servers/").content.decode()
    assert "alice-web" in html
    assert "bob-db" not in html


def test_another_customers_server_is_404(client, alice, mallory, location):
    server = make_instance(alice, location)
    client.force_login(mallory)
    assert client.get(f"/servers/{server.pk}/").status_code == 404
    assert client.get(f"/servers/{server.pk}/", headers={"HX-Request": "true"}).status_code == 404


def test_a_building_server_page_polls_its_live_partial(client, alice, location):
    server = make_instance(alice, location, status=Instance.Status.PROVISIONING)
    make_operation(server, step="wait_clone")
    event_record(server, message="Copying the OS image…")
    client.force_login(alice)
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert 'aria-current="step"' in page and "Copying the OS image" in page

    partial = client.get(f"/servers/{server.pk}/", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    html = partial.content.decode()
    assert html.lstrip().startswith('<div id="live"')
    assert "<html" not in html


def test_polling_stops_with_286_and_a_reload_once_the_operation_ended(client, alice, location):
    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    client.force_login(alice)
    partial = client.get(f"/servers/{server.pk}/", headers={"HX-Request": "true"})
    assert partial.status_code == 286 and partial["HX-Refresh"] == "true"


def test_a_quiet_server_page_looks_now_and_then_and_reloads_only_on_a_change(
    client, alice, location
):
    """Nothing runs: the page asks every 10 s whether anything changed (a payment restoring the
    server, an operation support started) and is told 204 while nothing has."""
    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    client.force_login(alice)
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert 'hx-trigger="every 10s"' in page
    url = re.search(r'hx-get="([^"]+seen=[^"]+)"', page).group(1).replace("&amp;", "&")
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 204
    make_operation(server, kind="reboot", step="reboot")
    changed = client.get(url, headers={"HX-Request": "true"})
    assert changed.status_code == 200 and 'hx-trigger="every 2s"' in changed.content.decode()


def test_a_failed_build_says_so_plainly(client, alice, location):
    server = make_instance(alice, location, status=Instance.Status.FAILED)
    make_operation(server, state="failed", step="clone", error="can't lock file - got timeout")
    client.force_login(alice)
    html = client.get(f"/servers/{server.pk}/").content.decode()
    assert "The build of this server failed" in html
    assert "support team has been told" in html
    assert "can&#x27;t lock file" not in html, "PVE's internals are for staff, not customers"


def test_addresses_come_with_copy_buttons_that_appear_only_with_javascript(client, alice, location):
    from instances import placement

    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    placement.reserve(server.pk, is_vmid_free=lambda cluster, vmid: True)
    client.force_login(alice)
    html = client.get(f"/servers/{server.pk}/").content.decode()
    server.refresh_from_db()
    assert f'data-copy="{server.ipv4.address}"' in html
    assert 'aria-label="Copy IPv4 address" hidden' in html
    assert "/static/js/portal.js" in html
