"""Fixtures for the instances tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from instances.models import (
    Cluster,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StorageClass,
    StoragePool,
)
from instances.proxmox import PveClient

# --- Proxmox: pve_client and pve_cluster, both on fakepve's `fakepve` fixture -------------------
# (kept at the top of this file; other fixtures go below)

PVE_TOKEN_ID = "root@pam!portal"
PVE_TOKEN_SECRET = "0b5e7f8a-3c1d-4e2f-9a6b-portal-tests"
TEMPLATE_VMID = 9000


@pytest.fixture
def pve_client(fakepve, fakepve_cafile, settings, tmp_path) -> Iterator[PveClient]:
    """A client for the fake PVE over verified TLS (its certificate as the CA) with an API token."""
    settings.VAR_DIR = tmp_path / "var"
    fakepve.apitokens[PVE_TOKEN_ID] = PVE_TOKEN_SECRET
    client = PveClient(
        api_url=fakepve.url,
        token_id=PVE_TOKEN_ID,
        token_secret=PVE_TOKEN_SECRET,
        ca_bundle=Path(fakepve_cafile).read_text(),
        tls_fingerprint="",
    )
    yield client
    client.close()


@pytest.fixture
def pve_cluster(db, fakepve, fakepve_cafile, settings, tmp_path) -> Cluster:
    """A Cluster row for the fake PVE, with node, storage, image and template rows that match it.

    The fake gets the token and a Debian template VM (9000) on pve1's local-lvm.
    """
    settings.VAR_DIR = tmp_path / "var"
    fakepve.apitokens[PVE_TOKEN_ID] = PVE_TOKEN_SECRET
    fakepve.firewall_config("cluster")["options"]["enable"] = 1  # the datacenter firewall
    fakepve.add_vm(
        TEMPLATE_VMID,
        "debian-12-cloud",
        template=True,
        config={
            "template": 1,
            "cores": 1,
            "memory": 1024,
            "scsihw": "virtio-scsi-single",
            "scsi0": f"local-lvm:base-{TEMPLATE_VMID}-disk-0,size=2G",
            "ide2": f"local-lvm:vm-{TEMPLATE_VMID}-cloudinit,media=cdrom",
            "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
            "boot": "order=scsi0",
        },
    )
    location = Location.objects.create(code="eu-fake-1", name="Fake PVE", country="DE")
    cluster = Cluster(location=location, name="fake", api_url=fakepve.url, token_id=PVE_TOKEN_ID)
    cluster.token_secret = PVE_TOKEN_SECRET
    cluster.ca_bundle = Path(fakepve_cafile).read_text()
    cluster.save()
    # fakepve's nodes report 4 CPUs and 8 GiB of RAM.
    node = Node.objects.create(cluster=cluster, name="pve1", cores=4, memory_mib=8192)
    pool = StoragePool.objects.create(
        cluster=cluster, name="local-lvm", storage_class=StorageClass.NVME
    )
    NodeStorage.objects.create(node=node, pool=pool, capacity_gib=100)
    image = OSImage.objects.create(
        slug="debian-12", name="Debian 12", family="debian", default_user="debian"
    )
    OSTemplate.objects.create(image=image, cluster=cluster, vmid=TEMPLATE_VMID)
    return cluster
