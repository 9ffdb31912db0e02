"""Reinstall, password reset and rename, each through the service the pages call and the engine,
with its effect checked in the fake PVE."""

from __future__ import annotations

import warnings

import pytest

from instances import services
from instances.models import Instance, InstanceOperation, OSImage
from tests.instances.operations import CUSTOMER, running_server, vm_of
from tests.instances.world import decoded_keys, drive, portal_vms

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

State = InstanceOperation.State


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location)


def reinstall(server, user, *, slug="ubuntu-24-04", keys=(), password=True, confirm=None):
    return services.instance_reinstall(
        instance=server,
        image=OSImage.objects.get(slug=slug),
        ssh_key_ids=list(keys),
        generate_password=password,
        confirm_hostname=server.hostname if confirm is None else confirm,
        actor=CUSTOMER,
        actor_user=user,
    )


def test_reinstall_wipes_the_disk_and_keeps_vmid_addresses_and_size(world, server, alice):
    vmid, ipv4, ipv6 = server.vmid, server.ipv4_id, server.ipv6
    old_disk = vm_of(world, server).config["scsi0"]
    operation = drive(reinstall(server, alice).pk)
    assert operation.state == State.SUCCEEDED, operation.error
    server.refresh_from_db()
    assert (server.vmid, server.ipv4_id, server.ipv6) == (vmid, ipv4, ipv6)
    assert server.status == Instance.Status.RUNNING
    assert server.os_image.slug == "ubuntu-24-04"
    [vm] = portal_vms(world)
    assert vm.vmid == vmid and vm.status == "running"
    assert "size=40G" in vm.config["scsi0"], "the plan's full disk"
    assert vm.config["scsi0"] != old_disk or "qmdestroy" in [t["type"] for t in world.tasklog]
    assert vm.config["ciuser"] == "ubuntu"
    assert "sshkeys" not in vm.config, "no keys were chosen this time"
    password = services.password_reveal(instance=server)
    assert crypt.crypt(password, vm.config["cipassword"]) == vm.config["cipassword"]
    assert services.password_reveal(instance=server) is None
    assert server.events.filter(message="Reinstalled with Ubuntu 24.04.").exists()


def test_reinstall_with_ssh_keys_puts_only_those_keys(world, server, alice):
    key = alice.ssh_keys.get()
    operation = drive(reinstall(server, alice, keys=[key.pk], password=False).pk)
    assert operation.state == State.SUCCEEDED
    [vm] = portal_vms(world)
    assert decoded_keys(vm).strip() == key.public_key
    assert "cipassword" not in vm.config


def test_reinstall_needs_the_hostname_typed_to_confirm(world, server, alice):
    with pytest.raises(services.InstanceError, match="Type the server's name, web1"):
        reinstall(server, alice, confirm="web")
    assert not server.operations.filter(kind="reinstall").exists()


def test_reinstall_refuses_another_customers_key(world, server, alice, mallory):
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from accounts.services import sshkey_add
    from tests.accounts.test_ssh_keys import openssh_public

    key = openssh_public(ed25519.Ed25519PrivateKey.generate(), "mallory")
    theirs = sshkey_add(owner=mallory, name="m", public_key=key)
    with pytest.raises(services.InstanceError, match="does not exist"):
        reinstall(server, alice, keys=[theirs.pk], password=False)


def test_password_reset_through_the_guest_agent_needs_no_restart(world, server, alice):
    vm = vm_of(world, server)
    booted = vm.started_at
    operation = services.instance_password_reset(
        instance=server, allow_reboot=False, actor=CUSTOMER, actor_user=alice
    )
    assert drive(operation.pk).state == State.SUCCEEDED
    assert vm.started_at == booted
    assert ("set-user-password", {"username": "debian", "password": "***"}) in vm.agent_requests
    assert services.password_reveal(instance=server)
    assert server.events.filter(message__contains="through the guest agent").exists()


def test_without_the_agent_the_password_is_set_by_cloud_init_at_a_reboot_if_allowed(
    world, server, alice
):
    vm = vm_of(world, server)
    vm.agent = None
    refused = drive(
        services.instance_password_reset(
            instance=server, allow_reboot=False, actor=CUSTOMER, actor_user=alice
        ).pk
    )
    assert refused.state == State.FAILED
    assert "did not answer" in refused.error_message and "allow a reboot" in refused.error_message
    assert services.password_reveal(instance=server) is None

    allowed = drive(
        services.instance_password_reset(
            instance=server, allow_reboot=True, actor=CUSTOMER, actor_user=alice
        ).pk
    )
    assert allowed.state == State.SUCCEEDED
    password = services.password_reveal(instance=server)
    assert crypt.crypt(password, vm.config["cipassword"]) == vm.config["cipassword"]
    assert [t["type"] for t in world.tasklog][-1] == "qmreboot"


def test_rename_changes_the_portal_and_the_vm_name(world, server, alice):
    operation = services.instance_rename(
        instance=server, hostname="api-1", actor=CUSTOMER, actor_user=alice
    )
    assert drive(operation.pk).state == State.SUCCEEDED
    assert Instance.objects.get(pk=server.pk).hostname == "api-1"
    assert vm_of(world, server).config["name"] == "api-1"
    assert server.events.filter(message="Renamed from web1 to api-1.").exists()


@pytest.mark.parametrize("bad", ["Api_1", "-x", "a" * 64, ""])
def test_rename_refuses_names_that_are_not_one_dns_label(world, server, alice, bad):
    with pytest.raises(services.InstanceError, match="hostname is 1-63"):
        services.instance_rename(instance=server, hostname=bad, actor=CUSTOMER, actor_user=alice)
