"""`manage.py reverse_dns_zones`: the reverse zones of every IP pool, made in PowerDNS.

Each pool's IPv4 network and IPv6 prefix need their reverse zones (a /24 is one
`113.0.203.in-addr.arpa.`, a /48 one `0.0.1.0.8.b.d.0.1.0.0.2.ip6.arpa.`; instances/
reverse_names.py) before the portal can set PTRs in them. Zones that exist are left as they
are; new ones are native zones with `REVERSE_DNS_NAMESERVERS` as their NS. `--check` only
lists what is missing (exit 1 if anything is). `make run` runs it through seed_demo.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from instances.models import IPPool
from instances.powerdns import PowerDns, PowerDnsError
from instances.reverse_names import pool_zones


def zones_needed() -> list[str]:
    """Every pool's reverse zones, each once, in pool order."""
    zones: list[str] = []
    for pool in IPPool.objects.order_by("id"):
        for network in (pool.network, pool.ipv6_prefix):
            zones += [zone for zone in pool_zones(network) if zone not in zones] if network else []
    return zones


class Command(BaseCommand):
    help = "Create the reverse DNS zones of every IP pool in PowerDNS (existing ones are kept)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help="only list missing zones")

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        if not settings.POWERDNS_API_URL:
            raise CommandError("POWERDNS_API_URL is not set: the portal manages no reverse DNS.")
        dns = PowerDns.from_settings()
        missing = []
        try:
            for zone in zones_needed():
                if check:
                    if not dns.zone_exists(zone):
                        missing.append(zone)
                        self.stdout.write(f"missing: {zone}")
                    continue
                made = dns.zone_create(zone, nameservers=settings.REVERSE_DNS_NAMESERVERS)
                self.stdout.write(f"{'created' if made else 'exists'}: {zone}")
        except PowerDnsError as error:
            raise CommandError(str(error)) from error
        finally:
            dns.close()
        if missing:
            raise CommandError(f"{len(missing)} reverse zone(s) missing in PowerDNS.")
