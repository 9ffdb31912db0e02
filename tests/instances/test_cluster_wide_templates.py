"""One template for the whole cluster: PVE clones it to the server's node only onto shared
storage, and pve_check says so before a build finds out."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from instances.models import (
    Cluster,
    Instance,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StorageClass,
    StoragePool,
)
from sandbox import pve as demo
from tests.instances.test_build import order
from tests.instances.world import build, last_operation, portal_vms

SHARED_VMID = 9500


@pytest.fixture
def one_template_on(world, demo_location):
    """Debian's only template sits on pve-a; servers go to the other nodes."""

    def make(storage: str, shared: bool) -> Cluster:
        cluster = Cluster.objects.get()
        if shared:
            world.add_ceph_storage(name=storage)
            world.storages[storage]["volumes"] = {}
            pool = StoragePool.objects.create(
                cluster=cluster, name=storage, storage_class=StorageClass.NVME
            )
            StoragePool.objects.filter(cluster=cluster, name="nvme").update(storage_class="bulk")
            for node in Node.objects.filter(cluster=cluster):
                NodeStorage.objects.create(node=node, pool=pool, capacity_gib=10_000)
        image = next(spec for spec in demo.IMAGES if spec.slug == "debian-12")
        demo._add_template(
            world, demo.TemplateSpec("debian-12", "pve-a", SHARED_VMID, storage), image
        )
        debian = OSImage.objects.get(slug="debian-12")
        OSTemplate.objects.filter(image=debian).delete()
        OSTemplate.objects.create(image=debian, cluster=cluster, vmid=SHARED_VMID)
        Node.objects.filter(name="pve-a").update(state=Node.State.DRAINING)
        return cluster

    return make


def test_a_template_on_shared_storage_is_cloned_to_another_node(
    world, demo_location, alice, one_template_on
):
    one_template_on("ceph", shared=True)
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.RUNNING, last_operation(instance.pk).error
    [vm] = portal_vms(world)
    assert vm.node == instance.node.name != "pve-a"
    assert vm.config["scsi0"].startswith("ceph:")


def test_a_template_on_local_storage_cannot_serve_other_nodes(
    world, demo_location, alice, one_template_on
):
    cluster = one_template_on("nvme", shared=False)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("pve_check", cluster.name, stdout=out)
    assert "storage pool nvme is node-local" in out.getvalue()
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert "can't clone to non-shared storage 'nvme'" in last_operation(instance.pk).error
