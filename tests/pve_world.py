"""The demo Proxmox cluster (sandbox/pve.py) on the per-test fakepve, with the rows seed_demo
makes for it. Shared by the instances, billing and browser tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from instances.models import Location
from sandbox import pve as demo

# --- The demo cluster of sandbox/pve.py on the per-test fake, with matching rows ----------------

DEMO_TOKEN_SECRET = "tests-demo-cluster-token"


@pytest.fixture
def world(db, fakepve, fakepve_cafile, tmp_path, settings):
    """The demo cluster served over TLS, and its Location/Cluster/Node/.../IPPool rows."""
    settings.VAR_DIR = tmp_path / "var"
    settings.OPERATION_RETRY_BASE = 0.01
    demo.install_extensions(fakepve)
    demo.populate(fakepve, token_secret=DEMO_TOKEN_SECRET)
    facts = demo.cluster_facts(
        api_url=fakepve.url, token_secret=DEMO_TOKEN_SECRET, ca_pem=Path(fakepve_cafile).read_text()
    )
    cluster_file = tmp_path / "cluster.json"
    cluster_file.write_text(json.dumps(facts))
    call_command("seed_demo", pve_cluster=cluster_file, allow_production=True, stdout=io.StringIO())
    return fakepve


@pytest.fixture
def demo_location(world) -> Location:
    return Location.objects.get(code=demo.LOCATION["code"])
