"""Reverse DNS names: where an address's PTR record lives, and what a PTR name may be.

Pure functions, no I/O. An address's PTR is at its reverse name (`10.113.0.203.in-addr.arpa.`)
in the reverse zone cut from its IP pool: IPv4 zones on octet boundaries (a /24 pool is one
zone, a /22 four, a /16 one), IPv6 zones on nibble boundaries (the demo's /48 prefix is one
zone); zones are never cut finer than /24 or /64. The default PTR of an address is its address
written as one label under `REVERSE_DNS_DEFAULT_DOMAIN` (`203-0-113-10.example-hosting.net`).
"""

from __future__ import annotations

import ipaddress
import math
import re

from django.conf import settings

# One LDH label (RFC 1123), as a PTR target name is written.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


def pointer(address: str) -> str:
    """`203.0.113.10` → `10.113.0.203.in-addr.arpa.` (the PTR record's owner name)."""
    return ipaddress.ip_address(address).reverse_pointer + "."


def _zone_bits(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    if network.version == 4:
        return min(24, max(8, math.ceil(network.prefixlen / 8) * 8))
    return min(64, max(4, math.ceil(network.prefixlen / 4) * 4))


def _zone_name(network: ipaddress.IPv4Network | ipaddress.IPv6Network, bits: int) -> str:
    step = 8 if network.version == 4 else 4
    labels = ipaddress.ip_address(network.network_address).reverse_pointer.split(".")
    keep = bits // step + 2  # the address's labels of the zone, and in-addr.arpa / ip6.arpa
    return ".".join(labels[-keep:]) + "."


def zone_of(address: str, network: str) -> str:
    """The reverse zone of `address` in a pool of `network` (IPv4 network or IPv6 prefix)."""
    pool = ipaddress.ip_network(network, strict=False)
    bits = _zone_bits(pool)
    return _zone_name(ipaddress.ip_network(f"{address}/{bits}", strict=False), bits)


def pool_zones(network: str) -> list[str]:
    """Every reverse zone a pool's network needs (one for a /24 or a /48)."""
    pool = ipaddress.ip_network(network, strict=False)
    bits = _zone_bits(pool)  # at most 128 zones (a /17 pool) or 8 (a /61 prefix)
    if bits <= pool.prefixlen:  # a /25 lies in one /24 zone
        return [zone_of(str(pool.network_address), network)]
    return [_zone_name(subnet, bits) for subnet in pool.subnets(new_prefix=bits)]


def default_ptr(address: str) -> str:
    """`203.0.113.10` → `203-0-113-10.example-hosting.net`; `2001:db8::1` →
    `2001-db8--1.example-hosting.net` (global IPv6 addresses begin with four hex digits, so
    the label never has `--` at its third and fourth place, which IDNA reserves)."""
    label = str(ipaddress.ip_address(address)).replace(".", "-").replace(":", "-")
    return f"{label}.{settings.REVERSE_DNS_DEFAULT_DOMAIN.strip('.').lower()}"


NAME_RULE = (
    "A reverse DNS name is a full host name such as mail.example.com: labels of letters, "
    "digits and hyphens, separated by dots."
)


def ptr_clean(name: str) -> str:
    """The name as the PTR points to it (lower case, no trailing dot, IDNA for non-ASCII), or
    ValueError saying what is wrong with it. "" stays "" (the default, or no PTR)."""
    name = (name or "").strip().rstrip(".").lower()
    if not name:
        return ""
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ValueError(f"{name} is not a valid host name. {NAME_RULE}") from error
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{name} is not a full host name (e.g. mail.example.com).")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{name} is not a valid host name. {NAME_RULE}")
    if labels[-1].isdigit():
        raise ValueError(f"{name} is an address, not a host name. {NAME_RULE}")
    if labels[-1] == "arpa":
        raise ValueError(f"{name} is a reverse DNS name itself; type the host name it names.")
    return ascii_name
