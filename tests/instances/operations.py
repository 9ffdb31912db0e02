"""A running server on the demo cluster, and asking for operations on it as its owner would."""

from __future__ import annotations

from accounts.services import sshkey_add
from instances import services
from instances.models import Instance, InstanceEvent
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.instances.world import build, image

SPEC = services.InstanceSpec("nvme_vps", "NVMe S", 2, False, 4096, 40, "nvme")
CUSTOMER = InstanceEvent.Actor.CUSTOMER


def running_server(owner, location, *, hostname: str = "web1", spec=SPEC) -> Instance:
    key = owner.ssh_keys.first() or sshkey_add(owner=owner, name="laptop", public_key=ED25519_KEY)
    instance = services.instance_create(
        owner=owner,
        hostname=hostname,
        location=location,
        os_image=image(),
        spec=spec,
        ssh_key_ids=[key.pk],
        reason="Build queued.",
    )
    built = build(instance.pk)
    assert built.status == Instance.Status.RUNNING
    return built


def vm_of(pve, instance: Instance):
    return pve.guest(instance.vmid)
