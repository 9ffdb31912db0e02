"""The build pipeline against the demo cluster on fakepve, over TLS with the real proxmoxer."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from fakepve import TaskError

from accounts.services import sshkey_add
from instances import provisioning
from instances.models import Instance, InstanceEvent
from instances.services import InstanceSpec, instance_create, instance_queue
from tests.accounts.test_ssh_keys import ED25519_KEY
from tests.instances.world import assert_no_leaked_ip, build, decoded_keys, image, portal_vms

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
    instance, password = instance_create(
        owner=owner,
        hostname=hostname,
        location=location,
        os_image=image(slug),
        spec=spec,
        ssh_key_ids=[key.pk],
        **kwargs,
    )
    return instance


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
    instance, password = instance_create(
        owner=alice,
        hostname="pw",
        location=demo_location,
        os_image=image(),
        spec=NVME_SMALL,
        generate_password=True,
    )
    assert password and len(password) >= 16
    assert password not in instance.root_password_encrypted
    instance = build(instance.pk)
    [vm] = portal_vms(world)
    assert vm.config["cipassword"].startswith("$5$"), "PVE keeps only a hash"
    assert instance.root_password_encrypted == ""


# --- Faults ------------------------------------------------------------------------------------


def clone_path(instance) -> str:
    template = provisioning._template_for(Instance.objects.get(pk=instance.pk))
    return f"/nodes/{instance.node.name}/qemu/{template.vmid}/clone"


def reserve(instance):
    """Run the build's first step, so the test knows node and VMID before injecting a fault."""
    provisioning.STEP_FUNCTIONS["reserve"](instance, provisioning.PveClient.for_cluster)
    provisioning._next_step(instance, "reserve")
    return Instance.objects.get(pk=instance.pk)


def test_a_storage_lock_timeout_during_clone_is_retried(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    world.fail(
        "POST",
        clone_path(instance),
        500,
        "can't lock file '/var/lock/pve-manager/pve-storage-nvme' - got timeout",
        times=2,
    )
    instance = build(instance.pk)
    assert instance.status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1
    retries = instance.events.filter(message__contains="is taking longer; trying again")
    assert retries.count() == 2
    assert "can't lock file" in retries.first().detail, "staff see PVE's message"
    assert "can't lock file" not in retries.first().message, "customers do not"


def test_lost_quorum_fails_after_the_retry_budget_with_pves_message(
    world, demo_location, alice, settings
):
    settings.PROVISIONING_MAX_RETRIES = 3
    instance = order(alice, demo_location)
    world.lose_quorum()
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    assert "no quorum" in instance.last_error
    assert "Gave up after 3 retries" in instance.last_error
    assert portal_vms(world) == []
    assert_no_leaked_ip()


def test_lost_quorum_that_returns_in_time_ends_running(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    world.lose_quorum()
    assert provisioning.advance(instance.pk) is not None  # transient: come back later
    world.regain_quorum()
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def advance_until(instance, step: str) -> None:
    """Build up to (not into) `step`: the clone exists, the fault comes next."""
    for _ in range(50):
        if Instance.objects.get(pk=instance.pk).build_step == step:
            return
        provisioning.STEP_FUNCTIONS[Instance.objects.get(pk=instance.pk).build_step](
            Instance.objects.get(pk=instance.pk), provisioning.PveClient.for_cluster
        )
        provisioning._next_step(instance, Instance.objects.get(pk=instance.pk).build_step)
    raise AssertionError(f"never reached {step}")


def test_a_node_going_offline_mid_build_is_waited_out(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    node = instance.node.name
    advance_until(instance, "configure")
    world.set_node_offline(node)
    assert provisioning.advance(instance.pk) is not None
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.PROVISIONING
    world.set_node_offline(node, offline=False)
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def fail_clone_tasks(pve, message: str) -> None:
    """Clone tasks start (the API answers with a UPID), then their storage work fails: the fake,
    as PVE, removes the half-made VM and ends the task with `TASK ERROR: clone failed: ...`."""

    async def storage_fails(vm, keys=None):
        raise TaskError(message)

    pve.ceph_io = storage_fails


def test_a_clone_task_that_ends_in_task_error_fails_the_build(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    fail_clone_tasks(world, "storage 'nvme' is full")
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    assert instance.last_error == "clone failed: storage 'nvme' is full"
    assert portal_vms(world) == []
    assert_no_leaked_ip()
    event = instance.events.get(new_status=Instance.Status.FAILED)
    assert event.message == ("The build stopped while copying the os image. Support has been told.")
    assert event.detail == instance.last_error
    [clone] = [t for t in world.tasklog if t["type"] == "qmclone"]
    assert clone["log"][-1] == "TASK ERROR: clone failed: storage 'nvme' is full"


def test_a_clone_refused_by_the_api_fails_the_build(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    world.fail("POST", clone_path(instance), error="storage_disabled")
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    assert "is disabled" in instance.last_error
    assert portal_vms(world) == []


def test_a_vm_locked_by_a_snapshot_is_retried_then_fails(world, demo_location, alice, settings):
    settings.PROVISIONING_MAX_RETRIES = 2
    instance = reserve(order(alice, demo_location))
    advance_until(instance, "configure")
    world.snapshot_lock(instance.vmid)
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    assert "locked" in instance.last_error
    assert len(portal_vms(world)) == 1, "the clone stays for staff to inspect or retry"


def test_staff_retry_of_a_failed_build_finishes_it_with_the_same_vm(
    world, demo_location, alice, staff, settings
):
    settings.PROVISIONING_MAX_RETRIES = 1
    instance = reserve(order(alice, demo_location))
    advance_until(instance, "configure")
    world.snapshot_lock(instance.vmid)
    assert build(instance.pk).status == Instance.Status.FAILED
    world.unlock(instance.vmid)
    instance_queue(
        instance_id=instance.pk,
        reason="Build retried by support.",
        actor=InstanceEvent.Actor.STAFF,
        actor_user=staff,
    )
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def test_a_missing_template_fails_with_a_reason_for_staff(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    world.vms = [vm for vm in world.vms if vm.vmid != provisioning._template_for(instance).vmid]
    instance = build(instance.pk)
    assert instance.status == Instance.Status.FAILED
    assert "does not exist" in instance.last_error


# --- Idempotency -------------------------------------------------------------------------------


def test_every_step_run_twice_still_makes_one_vm(world, demo_location, alice):
    instance = order(alice, demo_location)
    for step in provisioning.STEPS:
        current = Instance.objects.get(pk=instance.pk)
        if step == "ready":
            break
        for _ in range(2):
            while True:  # a waiting step is asked again until its work is done
                outcome = provisioning.STEP_FUNCTIONS[step](
                    Instance.objects.get(pk=instance.pk), provisioning.PveClient.for_cluster
                )
                if not isinstance(outcome, provisioning.Wait):
                    break
        Instance.objects.filter(pk=current.pk).update(
            build_step=provisioning.STEPS[provisioning.STEPS.index(step) + 1]
        )
    assert len(portal_vms(world)) == 1
    [vm] = portal_vms(world)
    assert vm.status == "running" and "size=40G" in vm.config["scsi0"]


def test_a_build_driven_after_a_lost_clone_task_id_finds_its_clone(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    provisioning.advance(instance.pk)  # clones, and (time scale 0) the clone has finished
    Instance.objects.filter(pk=instance.pk).update(build_step="clone", task_upid="")
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


@pytest.mark.postgres
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
    assert provisioning.advance(instance.pk) == settings.PROVISIONING_CAPACITY_RETRY
    assert provisioning.advance(instance.pk) == settings.PROVISIONING_CAPACITY_RETRY
    instance.refresh_from_db()
    assert instance.status == Instance.Status.QUEUED
    assert "No node in eu-central-1 has room for 200 vCPU" in instance.waiting_reason
    waiting = instance.events.filter(message__startswith="Waiting for capacity")
    assert waiting.count() == 1
    assert "200 vCPU" in waiting.get().detail
    assert portal_vms(world) == []


def test_a_worker_whose_lease_was_taken_stops_before_its_next_step(world, demo_location, alice):
    instance = order(alice, demo_location)
    token = provisioning._claim(instance.pk)
    # The lease runs out while this worker is slow; another claims the build.
    Instance.objects.filter(pk=instance.pk).update(lease_token="someone-else")
    assert provisioning._run_steps(instance.pk, token, provisioning.PveClient.for_cluster) is None
    assert Instance.objects.get(pk=instance.pk).build_step == ""
    assert portal_vms(world) == []


def test_a_clone_still_being_copied_after_a_lost_reply_is_waited_for(world, demo_location, alice):
    world.time_scale = 0.05  # the clone now takes a moment
    instance = reserve(order(alice, demo_location))
    provisioning.STEP_FUNCTIONS["clone"](instance, provisioning.PveClient.for_cluster)
    # The reply with the task id was lost; the step runs again while PVE still copies.
    Instance.objects.filter(pk=instance.pk).update(task_upid="")
    again = provisioning.STEP_FUNCTIONS["clone"](
        Instance.objects.get(pk=instance.pk), provisioning.PveClient.for_cluster
    )
    assert again is None
    world.time_scale = 0
    provisioning._next_step(instance, "clone")
    assert build(instance.pk).status == Instance.Status.RUNNING
    assert len(portal_vms(world)) == 1


def test_a_second_start_ending_in_already_running_is_not_a_failure(world, demo_location, alice):
    instance = reserve(order(alice, demo_location))
    advance_until(instance, "wait_running")
    vm = next(vm for vm in portal_vms(world))
    assert vm.status == "running"
    # A repeated start after a lost reply: its task fails because the VM already runs.
    upid = provisioning.PveClient.for_cluster(instance.cluster).start(instance.node.name, vm.vmid)
    Instance.objects.filter(pk=instance.pk).update(task_upid=upid)
    assert build(instance.pk).status == Instance.Status.RUNNING
