"""seed_demo: the demo users, and with --pve-cluster the rows of the demo Proxmox cluster."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import hotp_value
from django.core.management import call_command
from django.core.management.base import CommandError

from instances.models import (
    Cluster,
    IPAddress,
    IPPool,
    Location,
    Node,
    NodeStorage,
    OSImage,
    OSTemplate,
    StoragePool,
)
from sandbox import pve as demo

MODELS = [Location, Cluster, Node, StoragePool, NodeStorage, OSImage, OSTemplate, IPPool, IPAddress]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    settings.DEBUG = True  # seed_demo refuses to run on a production portal


@pytest.fixture
def cluster_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKEPVE_PORT", "18006")
    assert demo.main(["prepare", "--var-dir", str(tmp_path)]) == 0
    return tmp_path / "fakepve" / "cluster.json"


def seed(cluster_file) -> None:
    call_command("seed_demo", "--pve-cluster", str(cluster_file), stdout=io.StringIO())


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def seed_users() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def staff_login(output: str) -> tuple[str, str, str]:
    """(email, password, TOTP setup key) as printed for the demo staff user."""
    match = re.search(r"staff\s+(\S+)\s+(\S+)\s+TOTP setup key ([A-Z2-7]+)", output)
    assert match, output
    return match.groups()


def test_the_staff_user_signs_in_to_the_admin_with_the_printed_password_and_key(client, settings):
    settings.MFA_TOTP_TOLERANCE = 1  # a code from the end of a step still counts in the next
    email, password, key = staff_login(seed_users())
    response = client.post("/accounts/login/", {"login": email, "password": password})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    code = f"{hotp_value(key, int(time.time()) // 30):06d}"  # what the authenticator app shows
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_rerun_keeps_the_staff_users_authenticator():
    _, first_password, first_key = staff_login(seed_users())
    _, second_password, second_key = staff_login(seed_users())
    assert second_password != first_password
    assert second_key == first_key  # the app set up on the first run still works
    assert (
        Authenticator.objects.filter(type="totp", user__email="staff@portal.example.com").count()
        == 1
    )


def test_without_the_option_it_makes_only_the_users():
    call_command("seed_demo", stdout=io.StringIO())
    assert all(count == 0 for count in counts().values())


def test_it_creates_the_demo_cluster(cluster_file):
    seed(cluster_file)
    facts = json.loads(cluster_file.read_text())

    cluster = Cluster.objects.get(name="fra1")
    assert cluster.location.code == "eu-central-1"
    assert str(cluster.location.country) == "DE"
    assert cluster.api_url == "https://127.0.0.1:18006"
    assert cluster.token_id == "root@pam!portal"
    assert cluster.token_secret == facts["token_secret"]
    assert facts["token_secret"] not in cluster.token_secret_encrypted
    assert cluster.ca_bundle.startswith("-----BEGIN CERTIFICATE-----")

    nodes = Node.objects.filter(cluster=cluster)
    assert sorted(n.name for n in nodes) == ["pve-a", "pve-b", "pve-c"]
    assert {
        (n.cores, n.memory_mib, float(n.cpu_overcommit), float(n.ram_overcommit)) for n in nodes
    } == {(32, 131072, 4.0, 1.0)}
    assert dict(StoragePool.objects.values_list("name", "storage_class")) == {
        "nvme": "nvme",
        "bulk": "bulk",
    }
    assert NodeStorage.objects.get(node__name="pve-b", pool__name="bulk").capacity_gib == 14_000

    debian = OSImage.objects.get(slug="debian-12")
    assert (debian.name, debian.family, debian.default_user) == ("Debian 12", "debian", "debian")
    assert OSImage.objects.get(slug="rocky-9").default_user == "rocky"
    assert OSTemplate.objects.get(image=debian, node__name="pve-b").vmid == 9101
    assert OSTemplate.objects.count() == 12

    pool = IPPool.objects.get()
    assert (pool.network, pool.gateway, pool.location) == (
        "203.0.113.0/24",
        "203.0.113.1",
        cluster.location,
    )
    free = pool.addresses.filter(state=IPAddress.State.FREE)
    assert free.count() == 241
    assert {"203.0.113.10", "203.0.113.250"} <= set(free.values_list("address", flat=True))
    assert not pool.addresses.filter(
        address__in=["203.0.113.1", "203.0.113.9", "203.0.113.251"]
    ).exists()


def test_running_it_twice_changes_nothing(cluster_file):
    seed(cluster_file)
    before = counts()
    secret = Cluster.objects.get().token_secret_encrypted
    seed(cluster_file)
    assert counts() == before
    assert Cluster.objects.get().token_secret_encrypted == secret


def test_a_rerun_keeps_what_staff_changed(cluster_file):
    seed(cluster_file)
    Node.objects.filter(name="pve-a").update(cpu_overcommit=2, state=Node.State.DRAINING)
    IPAddress.objects.filter(address="203.0.113.10").update(state=IPAddress.State.ASSIGNED)
    seed(cluster_file)
    node = Node.objects.get(name="pve-a")
    assert (node.cpu_overcommit, node.state) == (2, Node.State.DRAINING)
    assert IPAddress.objects.get(address="203.0.113.10").state == IPAddress.State.ASSIGNED


def test_prepare_keeps_the_token_secret_and_the_certificate(cluster_file, tmp_path):
    first = json.loads(cluster_file.read_text())
    demo.main(["prepare", "--var-dir", str(tmp_path)])
    again = json.loads(cluster_file.read_text())
    assert (again["token_secret"], again["ca_pem"]) == (first["token_secret"], first["ca_pem"])
    assert cluster_file.stat().st_mode & 0o077 == 0


def test_a_missing_cluster_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="sandbox.pve prepare"):
        seed(tmp_path / "nope.json")
