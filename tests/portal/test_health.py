"""`/healthz` names the part that is down, so a load balancer and a human both know."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_down():
    """Point the Celery app at a port nothing listens on: the broker is unreachable."""
    conf = celery_app.conf
    saved = conf.broker_url, conf.broker_transport, conf.broker_transport_options
    conf.broker_url, conf.broker_transport = "redis://127.0.0.1:9/0", None
    conf.broker_transport_options = {}
    yield
    conf.broker_url, conf.broker_transport, conf.broker_transport_options = saved


def test_healthy_portal_answers_200_with_each_part_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert "no-cache" in response.headers["Cache-Control"]


def test_broker_down_is_503_and_named(client, db, broker_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}


def test_database_down_is_503_and_named(tmp_path):
    # A portal process configured with a PostgreSQL that nothing answers for.
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz');"
        "print(json.dumps([r.status_code, r.json()]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": "postgres://portal@127.0.0.1:9/portal?connect_timeout=2",
        "VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body == {"database": "down", "broker": "ok"}
