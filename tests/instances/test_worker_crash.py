"""A real Celery worker killed with SIGKILL mid-build: a restarted worker finishes the build.

The workers are other processes: they get the test's database (PostgreSQL, or the SQLite test
file) and its broker (Redis, or the filesystem broker's folder under VAR_DIR).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from instances.models import Instance
from instances.services import InstanceSpec, instance_create
from portal.celery import app as celery_app
from tests.instances.world import image, portal_vms

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).absolute()}"
    auth = quote(db["USER"] or "")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(tmp_path: Path, name: str, *, beat: bool) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": database_url(),
        # The filesystem broker's folder is VAR_DIR/broker (settings.VAR_DIR itself is the
        # test's own folder here: the `world` fixture moved it).
        "VAR_DIR": str(settings.BROKER_DIR.parent),
        "OPERATION_POLL": "0.3",
        "OPERATION_LEASE": "3",
        "OPERATION_STUCK_AFTER": "2",
        "OPERATION_REAPER_INTERVAL": "1",
        "OPERATION_RETRY_BASE": "0.2",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=prefork",
        "--concurrency=1", f"--hostname={name}@%h", "--loglevel=INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    if beat:
        command += ["--beat", "--schedule", str(tmp_path / f"{name}-beat")]
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)  # polling a condition, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def workers(tmp_path):
    started: list[subprocess.Popen] = []

    def start(name: str, *, beat: bool = False) -> subprocess.Popen:
        process = start_worker(tmp_path, name, beat=beat)
        started.append(process)
        return process

    yield start
    for process in started:
        kill(process)


def test_a_build_survives_its_worker_being_killed(world, demo_location, alice, workers, tmp_path):
    world.time_scale = 0.5  # the demo's durations at half speed: booting takes ~6 s
    celery_app.control.purge()  # nothing left over from other tests' transactions
    first = workers("first")
    instance = instance_create(
        owner=alice,
        hostname="survivor",
        location=demo_location,
        os_image=image(),
        spec=InstanceSpec("nvme_vps", "NVMe S", 2, False, 2048, 20, "nvme"),
        generate_password=True,
        reason="Build queued.",
    )
    wait_for(
        lambda: instance.operations.get().step == "wait_running",
        timeout=90,
        what=f"the first worker to start the VM (log: {tmp_path / 'first.log'})",
    )
    kill(first)
    assert Instance.objects.get(pk=instance.pk).status == Instance.Status.PROVISIONING

    workers("second", beat=True)
    done = wait_for(
        lambda: (
            Instance.objects.get(pk=instance.pk).status != Instance.Status.PROVISIONING
            and Instance.objects.get(pk=instance.pk)
        ),
        timeout=120,
        what=f"the second worker to finish (log: {tmp_path / 'second.log'})",
    )
    assert done.status == Instance.Status.RUNNING, instance.operations.get().error
    assert len(portal_vms(world)) == 1
    assert done.events.filter(message="Your server is ready.").count() == 1
