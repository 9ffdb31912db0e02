"""Behind the TLS proxy every request comes from the proxy's address; the failed-login limit
still counts per client, so one client cannot lock everybody else out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
PROXY = "10.0.0.2"
ATTACKER, CUSTOMER, STAFF = "198.51.100.7", "203.0.113.20", "192.0.2.30"


def configured_behind_the_proxy(**env: str) -> dict:
    """The client-address settings of a production portal started behind the TLS proxy."""
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([getattr(s, 'ALLAUTH_TRUSTED_PROXY_COUNT', 0),"
        " getattr(s, 'ALLAUTH_TRUSTED_CLIENT_IP_HEADER', None)]))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTED_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean
        | {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "0",
            "SECRET_KEY": "a production key for this test only, long enough to pass checks",
            "ALLOWED_HOSTS": "portal.example.com",
            "BEHIND_TLS_PROXY": "1",
        }
        | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    count, header = json.loads(result.stdout.strip().splitlines()[-1])
    return {"ALLAUTH_TRUSTED_PROXY_COUNT": count, "ALLAUTH_TRUSTED_CLIENT_IP_HEADER": header}


def appended_to_forwarded_for(ip: str, forged: str = "") -> dict:
    """nginx's `$proxy_add_x_forwarded_for`: whatever the client sent, then its address."""
    return {"HTTP_X_FORWARDED_FOR": f"{forged}, {ip}" if forged else ip}


def set_as_real_ip(ip: str, forged: str = "") -> dict:
    """A proxy that always sets X-Real-IP itself (the client's X-Forwarded-For passes through)."""
    return {"HTTP_X_REAL_IP": ip} | ({"HTTP_X_FORWARDED_FOR": forged} if forged else {})


# How the proxy passes the client's address on, and the environment that says so.
PROXIES = {
    "x-forwarded-for": ({}, appended_to_forwarded_for),
    "x-real-ip": ({"TRUSTED_CLIENT_IP_HEADER": "X-Real-IP"}, set_as_real_ip),
}


@pytest.fixture(params=sorted(PROXIES))
def from_client(request, settings):
    """Request headers as the proxy sends them for a client at `ip`, with the portal configured
    as in production behind that proxy."""
    env, headers = PROXIES[request.param]
    for name, value in configured_behind_the_proxy(**env).items():
        setattr(settings, name, value)
    return lambda ip, **forged: {"REMOTE_ADDR": PROXY, **headers(ip, **forged)}


def login(client, email, password, headers):
    response = client.post("/accounts/login/", {"login": email, "password": password}, **headers)
    return response, response.content.decode()


def fail_ten_logins(client, headers) -> None:
    for n in range(10):  # allauth allows 10 failed logins a minute per address
        _, html = login(client, f"guess{n}@example.com", "wrong password", headers)
        assert "not correct" in html


def test_one_clients_failed_logins_do_not_lock_out_another(client, alice, staff, from_client):
    fail_ten_logins(client, from_client(ATTACKER))

    response, _ = login(client, "alice@example.com", PASSWORD, from_client(CUSTOMER))
    assert response.status_code == 302
    assert response["Location"] == "/servers/"
    client.logout()
    response, _ = login(client, "staff@example.com", PASSWORD, from_client(STAFF))
    assert response["Location"] == "/accounts/2fa/authenticate/"  # on to the second factor


def test_the_same_client_is_still_limited(client, alice, from_client):
    fail_ten_logins(client, from_client(ATTACKER))
    response, html = login(client, "alice@example.com", PASSWORD, from_client(ATTACKER))
    assert response.status_code == 200
    assert "Too many failed login attempts" in html


def test_a_forged_client_address_does_not_get_around_the_limit(client, alice, from_client):
    fail_ten_logins(client, from_client(ATTACKER))
    forged = from_client(ATTACKER, forged="192.0.2.99")
    _, html = login(client, "alice@example.com", PASSWORD, forged)
    assert "Too many failed login attempts" in html
