"""The PVE role the README documents is enough, and needed: a token holding exactly its
privileges builds a server and runs every action; one privilege less and PVE refuses."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from instances import firewall, firewall_check, services
from instances.models import Cluster, Instance, InstanceOperation, Node, OSImage
from instances.proxmox import PRIVILEGES
from tests.instances.operations import CUSTOMER, SPEC, running_server
from tests.instances.world import drive, last_operation

TOKEN = "portal@pve!portal"
SECRET = "a-token-that-is-not-root"


def use_token_with(world, privileges) -> None:
    """The cluster row uses portal@pve's token, which holds `privileges` on / and nothing else."""
    world.apitokens[TOKEN] = SECRET
    world.acl = {}
    world.grant("portal@pve", "/", *privileges)
    cluster = Cluster.objects.get()
    cluster.token_id = TOKEN
    cluster.token_secret = SECRET
    cluster.save()


def test_exactly_the_documented_role_builds_and_runs_every_action(world, demo_location, alice):
    use_token_with(world, PRIVILEGES)
    server = running_server(alice, demo_location)

    def run(call, **kwargs):
        operation = call(instance=server, actor=CUSTOMER, actor_user=alice, **kwargs)
        done = drive(operation.pk)
        assert done.state == InstanceOperation.State.SUCCEEDED, (done.kind, done.error)
        server.refresh_from_db()

    for action in ("reboot", "reset", "shutdown", "start", "stop", "start"):
        run(services.instance_power, action=action)
    run(services.instance_password_reset, allow_reboot=False)
    world.guest(server.vmid).agent = None
    run(services.instance_password_reset, allow_reboot=True)
    run(services.instance_rename, hostname="web-2")
    rules = [{"direction": "in", "action": "ACCEPT", "protocol": "tcp", "port": "22"}]
    run(firewall.firewall_update, enabled=True, policy_in="DROP", policy_out="ACCEPT", rules=rules)
    run(firewall.firewall_preset, preset="web")
    bigger = dataclasses.replace(SPEC, vcpus=4, memory_mib=8192, disk_gib=80, storage_class="bulk")
    run(services.instance_resize, spec=bigger, label="Upgraded.")  # hotplug, move_disk, resize
    run(services.instance_migrate, target=Node.objects.exclude(pk=server.node_id).first())
    run(
        services.instance_reinstall,
        image=OSImage.objects.get(slug="rocky-9"),
        ssh_key_ids=[],
        generate_password=True,
        confirm_hostname="web-2",
    )
    from instances import sync

    assert sync.cluster_sync(server.cluster).seen == 1
    assert firewall_check.cluster_check(server.cluster).repaired == []
    assert Instance.objects.get(pk=server.pk).status == Instance.Status.RUNNING


@pytest.mark.parametrize(
    "dropped",
    [
        {"VM.Audit"},
        {"Datastore.AllocateSpace"},
        {"VM.Config.HWType"},  # hotplug, for live upgrades
        # PVE takes either for cloud-init settings: without both, configuring is refused.
        {"VM.Config.Cloudinit", "VM.Config.Network"},
    ],
    ids=lambda dropped: "+".join(sorted(dropped)),
)
def test_one_privilege_less_and_the_build_fails_with_pves_refusal(
    world, demo_location, alice, dropped
):
    use_token_with(world, [priv for priv in PRIVILEGES if priv not in dropped])
    from tests.instances.test_build import order
    from tests.instances.world import build

    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert "Permission check failed" in last_operation(instance.pk).error


def test_without_vm_migrate_a_move_fails_with_pves_refusal(world, demo_location, alice):
    use_token_with(world, [priv for priv in PRIVILEGES if priv != "VM.Migrate"])
    server = running_server(alice, demo_location)
    operation = services.instance_migrate(
        instance=server, target=Node.objects.exclude(pk=server.node_id).first(), actor=CUSTOMER
    )
    done = drive(operation.pk)
    assert done.state == InstanceOperation.State.FAILED
    assert "Permission check failed (/vms/" in done.error and "VM.Migrate" in done.error
    server.refresh_from_db()
    assert world.vm(server.vmid).node == server.node.name


def test_without_vm_config_network_a_firewall_change_fails_and_nothing_changes(
    world, demo_location, alice
):
    use_token_with(world, PRIVILEGES)
    server = running_server(alice, demo_location)
    use_token_with(world, [priv for priv in PRIVILEGES if priv != "VM.Config.Network"])
    operation = firewall.firewall_preset(
        instance=server, preset="ssh", actor=CUSTOMER, actor_user=alice
    )
    done = drive(operation.pk)
    assert done.state == InstanceOperation.State.FAILED
    assert "Permission check failed (/vms/" in done.error and "VM.Config.Network" in done.error
    assert "your previous firewall settings are in force again" in done.error_message
    assert world.firewall_config("vm", vmid=server.vmid)["rules"] == []
    assert not server.firewall.rules.exists()


def test_pve_check_names_the_privileges_the_token_lacks(world):
    use_token_with(world, [priv for priv in PRIVILEGES if priv != "VM.GuestAgent.Unrestricted"])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("pve_check", Cluster.objects.get().name, stdout=out)
    assert "lacks on /: VM.GuestAgent.Unrestricted" in out.getvalue()


def test_pve_check_passes_with_the_documented_role(world):
    use_token_with(world, PRIVILEGES)
    out = io.StringIO()
    call_command("pve_check", Cluster.objects.get().name, stdout=out)
    assert f"holds the {len(PRIVILEGES)} privileges" in out.getvalue()
