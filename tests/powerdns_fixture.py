"""PowerDNS Authoritative for the tests: one real pdns_server per session, on free ports.

`powerdns` (function scope) empties it, points the portal at its API and the forward check at
its DNS port, and gives the test ways to add forward records and to resolve names through the
running server with dnspython (as the rest of the world would), not only through its API.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import dns.nameserver
import dns.resolver
import dns.reversename
import pytest

from instances.powerdns import PowerDns
from sandbox.powerdns import PowerDnsServer

# The tests' forward zone: customers' names live under it.
FORWARD_ZONE = "customer.test."


@pytest.fixture(scope="session")
def powerdns_server(tmp_path_factory) -> Iterator[PowerDnsServer]:
    server = PowerDnsServer(tmp_path_factory.mktemp("powerdns")).start()
    yield server
    server.stop()


class PowerDnsWorld:
    """The running server, its API (as the portal's client) and DNS lookups through it."""

    def __init__(self, server: PowerDnsServer) -> None:
        self.server = server
        self.api = PowerDns(server.api_url, server.api_key)

    def forward(self, name: str, *addresses: str, zone: str = FORWARD_ZONE) -> None:
        """A and AAAA records of `name` (in `zone`, made if missing)."""
        self.api.zone_create(zone, nameservers=["ns1.example-hosting.net"])
        for rtype, version in (("A", 4), ("AAAA", 6)):
            found = [a for a in addresses if ipaddress.ip_address(a).version == version]
            if found:
                self.api.records_replace(zone, name, rtype, found, ttl=60)

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", self.server.dns_port)]
        resolver.lifetime = 3
        return resolver

    def ptr(self, address: str) -> str | None:
        """What a DNS query for the address's PTR answers (None: no such record)."""
        try:
            answer = self.resolver().resolve(dns.reversename.from_address(address), "PTR")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return answer[0].target.to_text()


@pytest.fixture
def powerdns(powerdns_server: PowerDnsServer, settings) -> Iterator[PowerDnsWorld]:
    powerdns_server.zones_delete()
    settings.POWERDNS_API_URL = powerdns_server.api_url
    settings.POWERDNS_API_KEY = powerdns_server.api_key
    settings.REVERSE_DNS_RESOLVER = [f"127.0.0.1:{powerdns_server.dns_port}"]
    settings.REVERSE_DNS_DEFAULT_DOMAIN = "example-hosting.net"
    world = PowerDnsWorld(powerdns_server)
    yield world
    world.api.close()
