"""Support staff in the admin: build a server for a customer, retry a failed build."""

from __future__ import annotations

import pytest

from accounts.services import sshkey_add
from instances.models import Instance
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.factories import (
    make_instance,
    make_location_with_capacity,
    make_operation,
    make_os_image,
)


@pytest.fixture
def location(db):
    return make_location_with_capacity()


def test_staff_build_a_server_for_a_customer(client, staff, alice, location):
    sshkey_add(owner=alice, name="laptop", public_key=ED25519_KEY)
    client.force_login(staff)
    response = client.post(
        "/admin/instances/instance/build/",
        {
            "owner": alice.pk,
            "hostname": "db1",
            "location": location.pk,
            "os_image": make_os_image().pk,
            "family": "nvme_vps",
            "vcpus": 2,
            "memory_mib": 4096,
            "disk_gib": 80,
            "use_customer_keys": "on",
        },
    )
    server = Instance.objects.get(hostname="db1")
    assert response.status_code == 302
    assert server.owner == alice and server.status == Instance.Status.QUEUED
    assert server.ssh_keys == ED25519_KEY
    assert server.events.filter(actor="staff", actor_user=staff).exists()


def test_a_bad_hostname_is_refused_in_the_admin(client, staff, alice, location):
    client.force_login(staff)
    response = client.post(
        "/admin/instances/instance/build/",
        {"owner": alice.pk, "hostname": "-bad_name-", "location": location.pk},
    )
    assert response.status_code == 200
    assert "RFC 1123" in response.content.decode()
    assert not Instance.objects.exists()


def test_staff_retry_a_failed_build(client, staff, alice, location):
    failed = make_instance(alice, location, status=Instance.Status.FAILED)
    make_operation(failed, state="failed", step="reserve", error="no quorum")
    running = make_instance(alice, location, hostname="ok", status=Instance.Status.RUNNING)
    client.force_login(staff)
    client.post(
        "/admin/instances/instance/",
        {"action": "retry_build", "_selected_action": [failed.pk, running.pk]},
    )
    failed.refresh_from_db()
    running.refresh_from_db()
    assert failed.status == Instance.Status.QUEUED
    assert running.status == Instance.Status.RUNNING
    assert failed.events.filter(message="Build retried by support.", actor="staff").exists()


def test_customers_cannot_reach_the_build_page(client, alice):
    client.force_login(alice)
    assert client.get("/admin/instances/instance/build/").status_code in {302, 403}


def build_form(owner, location, **extra):
    return {
        "owner": owner.pk,
        "hostname": "pw1",
        "location": location.pk,
        "os_image": make_os_image().pk,
        "family": "nvme_vps",
        "vcpus": 1,
        "memory_mib": 1024,
        "disk_gib": 20,
    } | extra


def test_a_generated_password_is_shown_once_on_the_page_not_in_a_message(
    client, staff, alice, location
):
    client.force_login(staff)
    response = client.post(
        "/admin/instances/instance/build/", build_form(alice, location, generate_password="on")
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = response.context["password"]
    assert password in response.content.decode()
    server = Instance.objects.get(hostname="pw1")
    assert server.new_password_encrypted == "", "staff saw it: it is not kept for the customer"
    follow_up = client.get(f"/admin/instances/instance/{server.pk}/change/")
    assert password not in follow_up.content.decode()


def test_staff_without_the_add_permission_cannot_build(client, alice, location):
    from tests.factories import UserFactory

    clerk = UserFactory(email="finance@example.com", is_staff=True, totp=True)
    client.force_login(clerk)
    response = client.post("/admin/instances/instance/build/", build_form(alice, location))
    assert response.status_code == 403
    assert not Instance.objects.exists()


@pytest.mark.parametrize("hostname", ["-web", "web-", "Web1", "web_1", "a" * 64, "web.example"])
def test_the_service_refuses_hostnames_that_are_not_one_dns_label(alice, location, hostname):
    from instances.services import InstanceError, InstanceSpec, instance_create

    with pytest.raises(InstanceError, match="hostname"):
        instance_create(
            owner=alice,
            hostname=hostname,
            location=location,
            os_image=make_os_image(),
            spec=InstanceSpec("nvme_vps", "S", 1, False, 1024, 20, "nvme"),
            generate_password=True,
            reason="Build queued.",
        )
    assert not Instance.objects.exists()


# --- Staff act on a server: each action is an operation in their name --------------------


def test_staff_reboot_a_server_from_its_admin_page(client, staff, world, demo_location, alice):
    from tests.instances.operations import running_server
    from tests.instances.world import drive

    server = running_server(alice, demo_location)
    client.force_login(staff)
    page = client.get(f"/admin/instances/instance/{server.pk}/change/").content.decode()
    assert 'value="reboot"' in page and "Sync status now" in page
    response = client.post(f"/admin/instances/instance/{server.pk}/operate/", {"action": "reboot"})
    assert response.status_code == 302
    operation = server.operations.get(kind="reboot")
    assert (operation.actor, operation.actor_user) == ("staff", staff)
    listing = client.get("/admin/instances/instance/").content.decode()
    assert "reboot · queued" in listing
    assert drive(operation.pk).state == "succeeded"
    assert [t["type"] for t in world.tasklog][-1] == "qmreboot"
    event = server.events.get(message="Reboot requested.")
    assert (event.actor, event.actor_user) == ("staff", staff)


def test_staff_rename_and_reset_the_password_for_the_customer(
    client, staff, world, demo_location, alice
):
    from instances import services
    from tests.instances.operations import running_server
    from tests.instances.world import drive

    server = running_server(alice, demo_location)
    client.force_login(staff)
    client.post(f"/admin/instances/instance/{server.pk}/rename/", {"hostname": "db-2"})
    drive(server.operations.get(kind="rename").pk)
    assert Instance.objects.get(pk=server.pk).hostname == "db-2"
    client.post(f"/admin/instances/instance/{server.pk}/password/", {})
    assert drive(server.operations.get(kind="password").pk).state == "succeeded"
    # The customer reveals it from their page; staff never see it.
    assert services.password_reveal(instance=server)


def test_a_second_staff_action_while_one_runs_names_it(client, staff, alice, location):
    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    make_operation(server, kind="reinstall", step="clone")
    client.force_login(staff)
    response = client.post(
        f"/admin/instances/instance/{server.pk}/operate/", {"action": "reboot"}, follow=True
    )
    assert "A reinstall is in progress" in response.content.decode()
    assert not server.operations.filter(kind="reboot").exists()


def test_staff_without_the_change_permission_cannot_act(client, alice, location):
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from tests.factories import UserFactory

    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    TOTP.activate(clerk, generate_totp_secret())
    client.force_login(clerk)
    response = client.post(f"/admin/instances/instance/{server.pk}/operate/", {"action": "stop"})
    assert response.status_code == 403
    assert not server.operations.exists()


def test_customers_cannot_reach_the_staff_actions(client, alice, location):
    server = make_instance(alice, location, status=Instance.Status.RUNNING)
    client.force_login(alice)
    response = client.post(f"/admin/instances/instance/{server.pk}/operate/", {"action": "stop"})
    assert response.status_code in {302, 403}
    assert not server.operations.exists()
