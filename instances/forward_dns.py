"""The one place the portal resolves names (dnspython): the forward check of a PTR name.

`addresses(name, "A" | "AAAA")` asks the system's resolver (`/etc/resolv.conf`), or the name
servers in `REVERSE_DNS_RESOLVER` (`ip` or `ip:port`, `[v6]:port`; the tests point it at their
PowerDNS), within `REVERSE_DNS_RESOLVE_TIMEOUT` seconds, and follows CNAMEs. It raises
`LookupFailed` saying why no address came back: the name does not exist, it has no such record,
nobody answered in time (worth trying again), or its name servers failed or refused.
"""

from __future__ import annotations

import dns.exception
import dns.nameserver
import dns.resolver
from django.conf import settings


class LookupFailed(Exception):
    """No address for the name; `reason` is "nxdomain", "no_records", "timeout" (nobody
    answered in time: try again) or "failed" (its name servers failed or refused)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """`192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353`."""
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    return dns.nameserver.Do53Nameserver(host, port)


def _resolver() -> dns.resolver.Resolver:
    servers = settings.REVERSE_DNS_RESOLVER
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [_nameserver(spec) for spec in servers]
    resolver.lifetime = settings.REVERSE_DNS_RESOLVE_TIMEOUT
    resolver.timeout = min(resolver.timeout, settings.REVERSE_DNS_RESOLVE_TIMEOUT)
    return resolver


def addresses(name: str, rtype: str) -> set[str]:
    """The addresses `name` resolves to (A or AAAA records), as `ipaddress` writes them."""
    try:
        answer = _resolver().resolve(name.rstrip(".") + ".", rtype, search=False)
    except dns.resolver.NXDOMAIN as error:
        raise LookupFailed(f"{name} does not exist", reason="nxdomain") from error
    except dns.resolver.NoAnswer as error:
        raise LookupFailed(f"{name} has no {rtype} record", reason="no_records") from error
    except dns.exception.Timeout as error:
        raise LookupFailed(f"no DNS answer for {name} in time", reason="timeout") from error
    except dns.exception.DNSException as error:  # NoNameservers: SERVFAIL, REFUSED, ...
        raise LookupFailed(f"DNS could not resolve {name}: {error}", reason="failed") from error
    return {record.address for record in answer}
