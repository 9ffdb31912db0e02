"""Security headers, CSP with nonces, and `check --deploy` with production settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home_response(client, db):
    return client.get("/")


def csp_directives(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:])
        for part in (p.strip() for p in header.split(";"))
        if part
    }


def test_csp_locks_down_objects_base_and_framing(home_response):
    directives = csp_directives(home_response)
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-inline'" not in directives["style-src"]


def test_every_script_tag_carries_the_nonce_of_its_response(home_response):
    nonce = re.search(r"'nonce-([^']+)'", csp_directives(home_response)["script-src"]).group(1)
    html = home_response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, "the page should load htmx from our static files"
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag
        assert "//" not in tag.split("src=")[-1].split('"')[1], "scripts come from our origin"


def test_each_response_gets_a_fresh_nonce(client, db):
    first = csp_directives(client.get("/"))["script-src"]
    second = csp_directives(client.get("/"))["script-src"]
    assert first != second


def test_pages_refuse_to_be_framed_and_sniffed(home_response):
    assert home_response.headers["X-Frame-Options"] == "DENY"
    assert home_response.headers["X-Content-Type-Options"] == "nosniff"
    assert home_response.headers["Referrer-Policy"] == "same-origin"


def _production_env(**extra) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_SETTINGS_MODULE",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env |= {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "portal.example.com",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    return env | extra


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_the_development_secret_key():
    env = _production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_settings_turn_on_hsts_and_secure_cookies():
    code = (
        "from django.conf import settings as s;"
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    hsts, subdomains, session_secure, csrf_secure, ssl_redirect, xfo = result.stdout.split()
    assert int(hsts) >= 31536000
    assert (subdomains, session_secure, csrf_secure, ssl_redirect) == ("True",) * 4
    assert xfo == "DENY"
