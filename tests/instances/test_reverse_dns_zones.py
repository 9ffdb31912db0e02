"""`manage.py reverse_dns_zones`: the IP pools' reverse zones, made in PowerDNS once."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

ZONES = ["113.0.203.in-addr.arpa.", "0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa."]


def run(*args) -> str:
    out = io.StringIO()
    call_command("reverse_dns_zones", *args, stdout=out)
    return out.getvalue()


def test_it_lists_the_missing_zones_then_creates_them_once(world, powerdns):
    with pytest.raises(CommandError, match="2 reverse zone"):
        run("--check")

    assert run() == "".join(f"created: {zone}\n" for zone in ZONES)
    assert run() == "".join(f"exists: {zone}\n" for zone in ZONES)
    assert run("--check") == ""
    assert all(powerdns.api.zone_exists(zone) for zone in ZONES)


def test_seed_demo_makes_them_when_powerdns_is_configured(world, powerdns, tmp_path):
    call_command("seed_demo", pve_cluster=tmp_path / "cluster.json", allow_production=True,
                 stdout=io.StringIO())  # fmt: skip
    assert all(powerdns.api.zone_exists(zone) for zone in ZONES)


def test_it_says_when_no_powerdns_is_configured(world, settings):
    settings.POWERDNS_API_URL = ""
    with pytest.raises(CommandError, match="POWERDNS_API_URL is not set"):
        run()
