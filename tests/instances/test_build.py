"""Building a server on the demo cluster (fakepve over TLS, the real proxmoxer), driven through
the engine's public entry point; faults are injected in the fake, never in the code under test."""

from __future__ import annotations

import threading
import warnings
from datetime import timedelta

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.utils import timezone
from fakepve import TaskError

from accounts.services import sshkey_add
from instances.models import Instance, InstanceEvent, InstanceOperation, OSTemplate
from instances.operations import engine
from instances.operations.build import BUILD
from instances.services import InstanceSpec, instance_create, operation_retry, password_reveal
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.instances.world import (
    assert_no_leaked_ip,
    build,
    decoded_keys,
    image,
    last_operation,
    live_operation,
    portal_vms,
)

NVME_SMALL = InstanceSpec(
    family="nvme_vps",
    plan_name="NVMe S",
    vcpus=2,
    dedicated_cores=False,
    memory_mib=4096,
    disk_gib=40,
    storage_class="nvme",
)


def order(owner, location, *, spec=NVME_SMALL, slug="debian-12", hostname="web1", **kwargs):
    key = owner.ssh_keys.first() or sshkey_add(owner=owner, name="laptop", public_key=ED25519_KEY)
    return instance_create(
        owner=owner,
        hostname=hostname,
        location=location,
        os_image=image(slug),
        spec=spec,
        ssh_key_ids=[key.pk],
        reason="Payment received; build queued.",
        **kwargs,
    )


@pytest.mark.parametrize("slug", ["debian-12", "ubuntu-24-04", "almalinux-9", "rocky-9"])
@pytest.mark.parametrize("storage_class", ["nvme", "bulk"])
def test_a_paid_server_is_built_and_running(
    world, demo_location, alice, slug, storage_class, django_capture_on_commit_callbacks
):
    spec = InstanceSpec(**(NVME_SMALL.__dict__ | {"storage_class": storage_class}))
    instance = order(alice, demo_location, spec=spec, slug=slug)
    with django_capture_on_commit_callbacks(execute=True):
        instance = build(instance.pk)

    assert instance.status == Instance.Status.RUNNING
    [vm] = portal_vms(world)
    assert vm.vmid == instance.vmid and vm.node == instance.node.name
    assert vm.status == "running"
    config = vm.config
    assert (int(config["cores"]), int(config["memory"])) == (2, 4096)
    assert "size=40G" in config["scsi0"]
    assert config["scsi0"].startswith(f"{storage_class}:")
    assert config["ipconfig0"] == (
        f"ip={instance.ipv4.address}/24,gw=203.0.113.1,ip6={instance.ipv6},gw6=fe80::1"
    )
    assert decoded_keys(vm).strip() == ED25519_KEY
    assert config["ciuser"] == image(slug).default_user
    assert set(config["tags"].split(";")) == {"portal", "nvme-vps", f"customer-{alice.pk}"}
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert instance.ipv4.address in mail.outbox[0].body
    assert_no_leaked_ip()


def test_the_timeline_names_each_step(world, demo_location, alice):
    instance = build(order(alice, demo_location).pk)
    messages = list(instance.events.values_list("message", flat=True))
    assert messages[:2] == ["Server ordered.", "Payment received; build queued."]
    for label in ["Build started.", "Copying the OS image…", "Configuring…", "Starting…"]:
        assert label in messages
    assert messages[-1] == "Your server is ready."


def test_a_generated_root_password_reaches_cloud_init_and_is_then_forgotten(
    world, demo_location, alice
):
    instance = instance_create(
        owner=alice,
        hostname="pw",
        location=demo_location,
        os_image=image(),
        spec=NVME_SMALL,
        generate_password=True,
        reason="Build queued.",
    )
    carried = live_operation(instance.pk)
    assert carried.secret_encrypted and instance.new_password_encrypted
    instance = build(instance.pk)
    [vm] = portal_vms(world)
    assert vm.config["cipassword"].startswith("$5$"), "PVE keeps only a hash"
    assert last_operation(instance.pk).secret_encrypted == "", "the build forgot it"
    password = password_reveal(instance=instance)
    assert password and len(password) >= 16
    assert crypt.crypt(password, vm.config["cipassword"]) == vm.config["cipassword"]
    assert password_reveal(instance=instance) is None, "shown once"


# --- Faults ------------------------------------------------------------------------------------


def test_a_storage_lock_timeout_during_clone_is_retried(world, demo_location, alice):
    world.fail(
        "POST",
        "/clone",
        500,
        "can't lock file '/var/lock/pve-manager/pve-storage-nvme' - got timeout",
        times=2,
    )
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1
    retries = instance.events.filter(message__contains="is taking longer; trying again")
    assert retries.count() == 2
    assert "can't lock file" in retries.first().detail, "staff see PVE's message"
    assert "can't lock file" not in retries.first().message, "customers do not"


def test_lost_quorum_fails_after_the_retry_budget_with_pves_message(
    world, demo_location, alice, settings
):
    settings.OPERATION_MAX_RETRIES = 3
    instance = order(alice, demo_location)
    world.lose_quorum()
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    failed = last_operation(instance.pk)
    assert failed.state == InstanceOperation.State.FAILED
    assert "no quorum" in failed.error
    assert "Gave up after 3 retries" in failed.error
    assert portal_vms(world) == []
    assert_no_leaked_ip()


def test_lost_quorum_that_returns_in_time_ends_running(world, demo_location, alice):
    instance = order(alice, demo_location)
    world.lose_quorum()
    assert engine.advance(live_operation(instance.pk).pk) is not None  # come back later
    world.regain_quorum()
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def test_a_node_unreachable_while_configuring_is_waited_out(world, demo_location, alice):
    world.fail("POST", "/config", error="no_route_to_host", times=2)
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1
    assert instance.events.filter(message="Configuring is taking longer; trying again in 0 s.")


def fail_clone_tasks(pve, message: str) -> None:
    """Clone tasks start (the API answers with a UPID), then their storage work fails: the fake,
    as PVE, removes the half-made VM and ends the task with `TASK ERROR: clone failed: ...`."""

    async def storage_fails(vm, keys=None):
        raise TaskError(message)

    pve.ceph_io = storage_fails


def test_a_clone_task_that_ends_in_task_error_fails_the_build(world, demo_location, alice):
    fail_clone_tasks(world, "storage 'nvme' is full")
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert last_operation(instance.pk).error == "clone failed: storage 'nvme' is full"
    assert portal_vms(world) == []
    assert_no_leaked_ip()
    event = instance.events.get(new_status=Instance.Status.FAILED)
    assert event.message == ("The build stopped while copying the os image. Support has been told.")
    assert event.detail == "clone failed: storage 'nvme' is full"
    [clone] = [t for t in world.tasklog if t["type"] == "qmclone"]
    assert clone["log"][-1] == "TASK ERROR: clone failed: storage 'nvme' is full"


def test_a_clone_refused_by_the_api_fails_the_build(world, demo_location, alice):
    world.fail("POST", "/clone", error="storage_disabled")
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert "is disabled" in last_operation(instance.pk).error
    assert portal_vms(world) == []


def test_a_locked_vm_is_retried_then_fails(world, demo_location, alice, settings):
    settings.OPERATION_MAX_RETRIES = 2
    world.fail("POST", "/config", error="locked")
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert "locked" in last_operation(instance.pk).error
    assert len(portal_vms(world)) == 1, "the clone stays for staff to inspect or retry"


def test_staff_retry_of_a_failed_build_finishes_it_with_the_same_vm(
    world, demo_location, alice, staff, settings
):
    settings.OPERATION_MAX_RETRIES = 1
    world.fail("POST", "/config", error="locked", times=2)
    instance = order(alice, demo_location)
    assert build(instance.pk).status == Instance.Status.FAILED
    failed = last_operation(instance.pk)
    vmid, address = Instance.objects.get(pk=instance.pk).vmid, instance.ipv4_id
    operation_retry(operation_id=failed.pk, actor=InstanceEvent.Actor.STAFF, actor_user=staff)
    instance = build(instance.pk)
    assert instance.status == Instance.Status.RUNNING
    assert (instance.vmid, instance.ipv4_id) == (vmid, address or instance.ipv4_id)
    assert len(portal_vms(world)) == 1
    assert instance.events.filter(message="Build retried by support.", actor="staff").exists()


def test_a_missing_template_fails_with_a_reason_for_staff(world, demo_location, alice):
    templates = set(OSTemplate.objects.values_list("vmid", flat=True))
    world.vms = [vm for vm in world.vms if vm.vmid not in templates]
    instance = build(order(alice, demo_location).pk)
    assert instance.status == Instance.Status.FAILED
    assert "does not exist" in last_operation(instance.pk).error


# --- Idempotency -------------------------------------------------------------------------------


def crash_back_to(operation: InstanceOperation, step: str) -> None:
    """What a worker that died after doing a step's work, before recording it, leaves behind."""
    InstanceOperation.objects.filter(pk=operation.pk).update(
        state=InstanceOperation.State.RUNNING, step=step, task_upid="", finished_at=None
    )
    Instance.objects.filter(pk=operation.instance_id).update(status=Instance.Status.PROVISIONING)


@pytest.mark.parametrize("step", BUILD.names[1:-1])
def test_every_step_done_again_after_a_crash_still_makes_one_vm(world, demo_location, alice, step):
    instance = build(order(alice, demo_location).pk)
    crash_back_to(last_operation(instance.pk), step)
    assert build(instance.pk).status == Instance.Status.RUNNING
    [vm] = portal_vms(world)
    assert vm.status == "running" and "size=40G" in vm.config["scsi0"]
    assert int(vm.config["cores"]) == 2


def test_a_clone_still_being_copied_after_a_lost_reply_is_waited_for(world, demo_location, alice):
    world.time_scale = 0.05  # the clone now takes a moment
    instance = order(alice, demo_location)
    operation = live_operation(instance.pk)
    assert engine.advance(operation.pk) is not None  # cloning: come back later
    # The reply with the task id was lost; the clone step runs again while PVE still copies.
    crash_back_to(operation, "clone")
    world.time_scale = 0
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def test_a_second_start_ending_in_already_running_is_not_a_failure(world, demo_location, alice):
    instance = build(order(alice, demo_location).pk)
    [vm] = portal_vms(world)
    # A repeated start after a lost reply: its task fails because the VM already runs.
    upid = engine.PveClient.for_cluster(instance.cluster).start(instance.node.name, vm.vmid)
    crash_back_to(last_operation(instance.pk), "wait_running")
    InstanceOperation.objects.filter(instance=instance).update(task_upid=upid)
    assert build(instance.pk).status == Instance.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_two_workers_driving_one_build_at_once_make_one_vm(world, demo_location, alice):
    instance = order(alice, demo_location)
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        close_old_connections()
        try:
            barrier.wait(timeout=30)
            build(instance.pk)
        except Exception as exc:  # surfaced below; a thread's exception would vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1
    assert instance.events.filter(message="Your server is ready.").count() == 1


def test_without_capacity_the_server_waits_in_queued_with_a_reason(
    world, demo_location, alice, settings
):
    huge = InstanceSpec(**(NVME_SMALL.__dict__ | {"vcpus": 200}))  # 50 cores at 4:1; nodes have 32
    instance = order(alice, demo_location, spec=huge)
    operation = live_operation(instance.pk)
    assert engine.advance(operation.pk) == settings.OPERATION_CAPACITY_RETRY
    assert engine.advance(operation.pk) == settings.OPERATION_CAPACITY_RETRY
    instance.refresh_from_db()
    operation.refresh_from_db()
    assert instance.status == Instance.Status.QUEUED
    assert "No node in eu-central-1 has room for 200 vCPU" in operation.waiting_reason
    waiting = instance.events.filter(message__startswith="Waiting for capacity")
    assert waiting.count() == 1
    assert "200 vCPU" in waiting.get().detail
    assert portal_vms(world) == []


def test_an_operation_another_worker_holds_is_left_to_it(world, demo_location, alice):
    instance = order(alice, demo_location)
    operation = live_operation(instance.pk)
    InstanceOperation.objects.filter(pk=operation.pk).update(
        lease_token="someone-else", lease_until=timezone.now() + timedelta(minutes=1)
    )
    assert engine.advance(operation.pk) is None
    assert InstanceOperation.objects.get(pk=operation.pk).step == ""
    assert portal_vms(world) == []


def test_a_task_of_an_older_chain_does_nothing(world, demo_location, alice):
    instance = order(alice, demo_location)
    operation = live_operation(instance.pk)
    # A redelivered message of a chain the reaper replaced: no claim, no step, no re-queue.
    assert engine.advance(operation.pk, chain="older") is None
    assert InstanceOperation.objects.get(pk=operation.pk).step == ""
    assert engine.advance(operation.pk, chain=operation.chain) is None
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.RUNNING
