"""Firewall rules as the customer writes them: checked field by field with messages that name
the field, written the way PVE takes them, and the presets.

Pure functions (no database, no PVE): the page's forms, the services and the operation that
writes the rules to PVE all use them, so a rule the portal accepts is one PVE accepts.
PVE's own checks (pve-firewall `verify_rule`) are the model: ports 0-65535 as `N` or `N:M`
for TCP and UDP only, addresses as an IP or a network address with its prefix (no host bits),
one IP version per rule, ICMP for IPv4 and ICMPv6 for IPv6.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass

from instances.models.firewall import FirewallRule, Policy

Direction = FirewallRule.Direction
Protocol = FirewallRule.Protocol
MAX_RULES = 50
COMMENT_MAX = 100
PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP)
# What a policy does to traffic, in words ("other incoming traffic is dropped").
DONE_TO = {Policy.ACCEPT: "accepted", Policy.DROP: "dropped", Policy.REJECT: "rejected"}
# What the customer reads for each field (and PVE's name for it, in PVE's error messages).
LABELS = {
    "direction": "Direction",
    "action": "Action",
    "protocol": "Protocol",
    "port": "Port",
    "source": "Source",
    "destination": "Destination",
    "comment": "Comment",
}
PVE_FIELDS = {"type": "direction", "action": "action", "proto": "protocol", "dport": "port"}
PVE_FIELDS |= {"source": "source", "dest": "destination", "comment": "comment"}


@dataclass(frozen=True)
class Rule:
    """One rule, checked: `port` is "" or "N" or "N:M", addresses "" or canonical."""

    direction: str = Direction.IN
    action: str = Policy.ACCEPT
    protocol: str = Protocol.ANY
    port: str = ""
    source: str = ""
    destination: str = ""
    comment: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def summary(self) -> str:
        """In words: "incoming TCP 22 from any: accept"."""
        what = Protocol(self.protocol).label if self.protocol else "all traffic"
        port = f" port {self.port.replace(':', '–')}" if self.port else ""
        source = f" from {self.source}" if self.source else ""
        dest = f" to {self.destination}" if self.destination else ""
        return (
            f"{Direction(self.direction).label} {what}{port}{source}{dest}: {self.action.lower()}"
        )


class RuleInvalid(ValueError):
    """A rule that cannot be taken: `errors` maps its fields to what is wrong with them."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{LABELS[f]}: {m}" for f, m in errors.items()))
        self.errors = errors


PORT = re.compile(r"^(\d{1,6})(?:\s*[-:]\s*(\d{1,6}))?$")


def clean_port(value: str) -> str:
    """ "22" or "8000-8080" / "8000:8080" → PVE's "22" or "8000:8080"; ValueError says why not."""
    text = (value or "").strip()
    if not text:
        return ""
    found = PORT.match(text)
    if not found:
        raise ValueError(f"{text} is not a port; give one port (22) or a range (8000-8080).")
    first = int(found[1])
    last = int(found[2]) if found[2] else first
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise ValueError(f"{port} is not a port; ports are 1 to 65535.")
    if first > last:
        raise ValueError(f"The range {first}-{last} runs backwards; write {last}-{first}.")
    return str(first) if first == last else f"{first}:{last}"


def clean_address(value: str) -> str:
    """An IP address or a network (CIDR), canonical; "" for any; ValueError says why not."""
    text = (value or "").strip()
    if not text or text.lower() in ("any", "*"):
        return ""
    try:
        if "/" not in text:
            return str(ipaddress.ip_address(text))
        network = ipaddress.ip_network(text, strict=False)
        address = ipaddress.ip_address(text.partition("/")[0])
    except ValueError:
        raise ValueError(
            f"{text} is not an IP address or a network (e.g. 203.0.113.7 or 203.0.113.0/24)."
        ) from None
    if address != network.network_address:
        raise ValueError(f"{text} has host bits set; the network is {network}.")
    if network.prefixlen == 0:
        raise ValueError(f"{text} is every address; leave the field empty for any.")
    if network.prefixlen == network.max_prefixlen:
        return str(address)
    return str(network)


def _version(address: str) -> int | None:
    return ipaddress.ip_network(address, strict=False).version if address else None


def check_rule(
    *,
    direction: str,
    action: str,
    protocol: str = "",
    port: str = "",
    source: str = "",
    destination: str = "",
    comment: str = "",
) -> Rule:
    """The rule, checked and canonical; raises RuleInvalid naming every field that is wrong."""
    errors: dict[str, str] = {}
    if direction not in Direction.values:
        errors["direction"] = "Choose incoming or outgoing."
    if action not in Policy.values:
        errors["action"] = "Choose accept, drop or reject."
    protocol = (protocol or "").lower()
    if protocol not in Protocol.values:
        errors["protocol"] = "Choose any, TCP, UDP, ICMP or ICMPv6."
    cleaned = {}
    for field, value in (("port", port), ("source", source), ("destination", destination)):
        try:
            cleaned[field] = (clean_port if field == "port" else clean_address)(value)
        except ValueError as exc:
            errors[field] = str(exc)
    if cleaned.get("port") and protocol not in PORT_PROTOCOLS and "protocol" not in errors:
        errors["port"] = "Only TCP and UDP rules have ports; choose TCP or UDP, or clear the port."
    versions = {_version(cleaned[f]) for f in ("source", "destination") if cleaned.get(f)}
    if len(versions) > 1:
        errors["destination"] = "Source and destination must both be IPv4 or both IPv6."
    elif protocol == Protocol.ICMP and versions == {6}:
        errors["protocol"] = "ICMP is IPv4's; for IPv6 addresses choose ICMPv6."
    elif protocol == Protocol.ICMPV6 and versions == {4}:
        errors["protocol"] = "ICMPv6 is IPv6's; for IPv4 addresses choose ICMP."
    comment = " ".join((comment or "").split())  # one line, as PVE keeps it
    if len(comment) > COMMENT_MAX:
        errors["comment"] = f"At most {COMMENT_MAX} characters."
    if errors:
        raise RuleInvalid(errors)
    return Rule(direction, action, protocol, comment=comment, **cleaned)


# --- Presets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    rules: tuple[Rule, ...]


def _accept(protocol: str, port: str = "", comment: str = "") -> Rule:
    return Rule(Direction.IN, Policy.ACCEPT, protocol, port, comment=comment)


BASICS = (
    _accept(Protocol.TCP, "22", "SSH"),
    _accept(Protocol.ICMP, comment="Ping and path MTU (IPv4)"),
    _accept(Protocol.ICMPV6, comment="Ping and path MTU (IPv6)"),
)
PRESETS = {
    "ssh": Preset("SSH only", "SSH and ping in; everything else in is dropped.", BASICS),
    "web": Preset(
        "Web server",
        "SSH, ping, HTTP and HTTPS (also HTTP/3) in.",
        BASICS
        + (
            _accept(Protocol.TCP, "80", "HTTP"),
            _accept(Protocol.TCP, "443", "HTTPS"),
            _accept(Protocol.UDP, "443", "HTTP/3"),
        ),
    ),
    "mail": Preset(
        "Mail server",
        "SSH, ping, SMTP, submission, IMAP and POP3 (with and without TLS) in.",
        BASICS
        + tuple(
            _accept(Protocol.TCP, port, name)
            for port, name in (
                ("25", "SMTP"),
                ("465", "Submission (TLS)"),
                ("587", "Submission"),
                ("143", "IMAP"),
                ("993", "IMAPS"),
                ("110", "POP3"),
                ("995", "POP3S"),
            )
        ),
    ),
}
