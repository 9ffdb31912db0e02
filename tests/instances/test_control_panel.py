"""The server page as the customer uses it: buttons that start operations, forms that keep what
was typed, a password shown once, graphs that never make the page wait on PVE."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from instances import usage
from instances.models import Instance, InstanceOperation, OSImage
from tests.instances.operations import running_server
from tests.instances.world import drive


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def url(name, server):
    return reverse(f"instances:{name}", args=[server.pk])


def test_a_running_server_offers_shut_down_reboot_and_a_confirmed_stop(alice_client, server):
    html = alice_client.get(url("detail", server)).content.decode()
    assert 'value="shutdown"' in html and 'value="reboot"' in html
    assert 'value="start"' not in html
    assert "Stop <strong>web1</strong> at once" in html, "stop is behind a confirmation naming it"


def test_reboot_from_the_page_runs_and_the_page_follows_it(alice_client, server, world):
    response = alice_client.post(url("power", server), {"action": "reboot"})
    assert response.status_code == 302
    operation = server.operations.get(kind="reboot")
    live = alice_client.get(url("detail", server), headers={"HX-Request": "true"})
    assert live.status_code == 200 and "Reboot in progress" in live.content.decode()
    assert 'hx-trigger="every 2s"' in live.content.decode()
    assert 'id="timeline"' in live.content.decode() and "hx-swap-oob" in live.content.decode()
    drive(operation.pk)
    done = alice_client.get(url("detail", server), headers={"HX-Request": "true"})
    assert done.status_code == 286 and done["HX-Refresh"] == "true"
    page = alice_client.get(url("detail", server)).content.decode()
    assert "Server rebooted." in page and "(by you)" in page


def test_an_unknown_power_action_is_refused_with_a_message(alice_client, server):
    response = alice_client.post(url("power", server), {"action": "explode"}, follow=True)
    assert "Unknown power action." in response.content.decode()
    assert not server.operations.exclude(kind="build").exists()


def test_a_failed_reboot_is_said_plainly_on_the_page(alice_client, server, world, settings):
    settings.OPERATION_SHUTDOWN_TIMEOUT = 1
    world.guest(server.vmid).acpi = False
    alice_client.post(url("power", server), {"action": "reboot"})
    drive(server.operations.get(kind="reboot").pk)
    html = alice_client.get(url("detail", server)).content.decode()
    assert "Reset restarts it at once" in html
    assert "powerdown failed" not in html, "PVE's words are for staff"


def test_the_reinstall_form_keeps_what_was_typed_and_names_the_mistake(alice_client, server):
    ubuntu = OSImage.objects.get(slug="ubuntu-24-04")
    response = alice_client.post(
        url("reinstall", server),
        {"image": ubuntu.pk, "generate_password": "on", "confirm_hostname": "web"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Type web1 exactly to confirm." in html
    assert 'value="web"' in html and f'value="{ubuntu.pk}" selected' in html
    assert not server.operations.filter(kind="reinstall").exists()


def test_reinstall_then_the_new_password_is_shown_once(alice_client, server, world):
    ubuntu = OSImage.objects.get(slug="ubuntu-24-04")
    response = alice_client.post(
        url("reinstall", server),
        {"image": ubuntu.pk, "generate_password": "on", "confirm_hostname": "web1"},
    )
    assert response.status_code == 302
    assert drive(server.operations.get(kind="reinstall").pk).state == "succeeded"
    assert "A new password is ready" in alice_client.get(url("detail", server)).content.decode()
    shown = alice_client.post(url("password_reveal", server))
    assert shown["Cache-Control"].startswith("private") or "no-store" in shown["Cache-Control"]
    password = shown.context["password"]
    assert password in shown.content.decode()
    again = alice_client.post(url("password_reveal", server), follow=True)
    assert password not in again.content.decode()
    assert "already shown once" in again.content.decode()


def test_a_password_reset_without_allowing_a_reboot(alice_client, server):
    response = alice_client.post(url("password", server), {})
    assert response.status_code == 302
    assert server.operations.get(kind="password").params == {"allow_reboot": False}


def test_renaming_to_a_bad_name_says_why(alice_client, server):
    response = alice_client.post(url("rename", server), {"hostname": "Bad_Name"}, follow=True)
    assert "1-63 lower-case letters" in response.content.decode()
    assert Instance.objects.get(pk=server.pk).hostname == "web1"


def test_graphs_load_from_a_worker_and_never_make_the_page_wait(
    alice_client, server, world, django_capture_on_commit_callbacks
):
    from instances.tasks import refresh_usage

    cache.delete(usage.KEY.format(server.pk, "day"))
    cache.delete(usage.LOCK.format(server.pk, "day"))
    first = alice_client.get(url("graphs", server) + "?range=day", headers={"HX-Request": "true"})
    assert "Loading the usage from the host" in first.content.decode()
    assert 'hx-trigger="load delay:1s"' in first.content.decode()
    refresh_usage(server.pk, "day")  # what the worker does with the task the page sent
    ready = alice_client.get(url("graphs", server) + "?range=day", headers={"HX-Request": "true"})
    html = ready.content.decode()
    for title in ("CPU", "Memory", "Network", "Disk I/O"):
        assert f"<strong>{title}</strong>" in html
    assert "<polyline" in html and "chart-line-dashed" in html
    assert "as a table" in html, "the numbers are there without the picture"
    assert 'aria-current="true">Last day' in html


def test_a_dedicated_server_offers_no_self_service_power(alice_client, alice, demo_location):
    from tests.factories import make_instance

    metal = make_instance(alice, demo_location, family="dedicated", status="running")
    html = alice_client.get(url("detail", metal)).content.decode()
    assert 'value="reboot"' not in html
    response = alice_client.post(url("power", metal), {"action": "reboot"}, follow=True)
    assert "run by our technicians" in response.content.decode()
    assert not InstanceOperation.objects.filter(instance=metal).exists()
