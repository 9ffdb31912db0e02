"""Snapshots and backups through the API: the same services and limits as the server page,
as operations on the demo cluster."""

from __future__ import annotations

import dataclasses

import pytest

from instances.models import InstanceBackup, InstanceSnapshot
from sandbox import pve_disks
from tests.instances.operations import SPEC, running_server, vm_of
from tests.instances.world import drive

WITH_BOTH = dataclasses.replace(SPEC, snapshots_max=1, backups_kept=2)


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location, spec=WITH_BOTH)


def done(response) -> dict:
    assert response.status_code == 202, response.content
    operation = drive(response.json()["id"])
    assert operation.state == "succeeded", operation.error
    return response.json()


def test_a_snapshot_is_taken_listed_rolled_back_to_and_deleted(server, world, api_as, alice):
    api = api_as(alice)
    pve_disks.write(world, server.vmid, "as it was")
    done(api.post(f"/servers/{server.pk}/snapshots", {"label": "before-upgrade"}))
    listed = api.get(f"/servers/{server.pk}/snapshots").json()
    assert listed["allowed"] == 1
    [snapshot] = listed["items"]
    assert (snapshot["label"], snapshot["state"]) == ("before-upgrade", "ready")
    full = api.post(f"/servers/{server.pk}/snapshots", {"label": "another"})
    assert full.status_code == 422 and "as many as its plan includes" in full.json()["message"]
    pve_disks.write(world, server.vmid, "broken")
    done(api.post(f"/servers/{server.pk}/snapshots/{snapshot['id']}/rollback"))
    assert pve_disks.contents(world, server.vmid) == "as it was"
    done(api.delete(f"/servers/{server.pk}/snapshots/{snapshot['id']}"))
    assert api.get(f"/servers/{server.pk}/snapshots").json()["items"] == []
    assert not vm_of(world, server).snapshots
    assert InstanceSnapshot.objects.get().state == "deleted"


def test_a_backup_is_made_listed_and_restored(server, world, api_as, alice):
    api = api_as(alice)
    pve_disks.write(world, server.vmid, "saved")
    done(api.post(f"/servers/{server.pk}/backups"))
    listed = api.get(f"/servers/{server.pk}/backups").json()
    assert listed["kept"] == 2 and listed["offered"] and listed["window"]
    [backup] = listed["items"]
    assert backup["state"] == "ready" and backup["size_bytes"] > 0
    assert backup["trigger"] == "manual"
    pve_disks.write(world, server.vmid, "lost")
    done(api.post(f"/servers/{server.pk}/backups/{backup['id']}/restore"))
    assert pve_disks.contents(world, server.vmid) == "saved"
    assert InstanceBackup.objects.count() == 1


def test_a_plan_without_snapshots_refuses_them_clearly(world, demo_location, alice, api_as):
    server = running_server(alice, demo_location)  # SPEC: no snapshots, no backups
    api = api_as(alice)
    response = api.post(f"/servers/{server.pk}/snapshots", {"label": "x"})
    assert response.status_code == 422 and "not included" in response.json()["message"]
    assert api.post(f"/servers/{server.pk}/backups").status_code == 422
