"""Reverse DNS on the server page: the customer's PTR names, checked, then set in PowerDNS.

`reverse_dns_request` checks a change while the customer waits (the address is the server's,
the name is a host name, and it resolves forward to the address, through instances/forward_dns
.py) and asks for a `REVERSE_DNS` operation, which sets it in PowerDNS
(instances/operations/reverse_dns.py). `reverse_dns_cards` is what the page shows, from the
database alone.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from accounts.models import User
from instances import forward_dns
from instances.models import Family, Instance, InstanceOperation, ReverseDns
from instances.operations.reverse_dns import REVERSE_DNS, defaulted, enabled, ipv6_network
from instances.reverse_names import default_ptr, ptr_clean
from instances.services import operation_request
from instances.state import InstanceError

Kind = InstanceOperation.Kind


class ReverseDnsError(InstanceError):
    """A change that cannot be made as typed; `field` is the form field it is about."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PtrCard:
    """One address on the page: its PTR (as PowerDNS has it) and what may be done."""

    address: str
    version: int
    ptr: str  # "" when none is set (yet)
    is_default: bool
    has_default: bool  # the IPv4 address and the /64's first: "reset" instead of "remove"
    changing_to: str | None = None  # a change under way ("" = back to the default / removed)


def managed(instance: Instance) -> bool:
    """Whether the page shows reverse DNS for this server."""
    return (
        enabled()
        and instance.family != Family.DEDICATED
        and instance.ipv4_id is not None
        and instance.status not in (Instance.Status.TERMINATED, Instance.Status.TERMINATING)
    )


@dataclass(frozen=True)
class ReverseDnsPanel:
    cards: list[PtrCard]
    editable: bool  # the server's status allows a change (running or stopped)
    ipv6_network: str  # "" without IPv6: then no other address can be added


def reverse_dns_panel(
    instance: Instance, operation: InstanceOperation | None
) -> ReverseDnsPanel | None:
    """The server page's reverse DNS section (None when the portal does not manage it)."""
    if not managed(instance):
        return None
    network = ipv6_network(instance)
    return ReverseDnsPanel(
        cards=reverse_dns_cards(instance, operation),
        editable=instance.status in REVERSE_DNS.allowed_from,
        ipv6_network=str(network) if network else "",
    )


def reverse_dns_cards(instance: Instance, operation: InstanceOperation | None) -> list[PtrCard]:
    """A card per address: the defaulted ones first, then the /64's others (one query)."""
    rows = {row.address: row.ptr for row in ReverseDns.objects.filter(instance=instance)}
    changing = {}
    if operation is not None and operation.is_live and operation.kind == Kind.REVERSE_DNS:
        changing[operation.params.get("address")] = operation.params.get("ptr", "")
    firsts = defaulted(instance)
    others = sorted(
        {*rows, *changing} - set(firsts) - {None}, key=ipaddress.ip_address
    )  # an address being added shows while it is
    return [
        PtrCard(
            address=address,
            version=ipaddress.ip_address(address).version,
            ptr=rows.get(address, ""),
            is_default=address in rows and rows[address] == default_ptr(address),
            has_default=address in firsts,
            changing_to=changing.get(address),
        )
        for address in [*firsts, *others]
    ]


def _address(instance: Instance, text: str) -> str:
    """The address as typed, if it is one of the server's: its IPv4 or one of its /64."""
    try:
        ip = ipaddress.ip_address((text or "").strip())
    except ValueError:
        raise ReverseDnsError(
            f"{text or 'Nothing'} is not an IP address; type one such as {instance.ipv4.address}.",
            field="address",
        ) from None
    if ip.version == 4:
        if str(ip) != instance.ipv4.address:
            raise ReverseDnsError(
                f"{ip} is not this server's address; its IPv4 address is {instance.ipv4.address}.",
                field="address",
            )
        return str(ip)
    network = ipv6_network(instance)
    if network is None:
        raise ReverseDnsError("This server has no IPv6 network.", field="address")
    if ip not in network:
        raise ReverseDnsError(
            f"{ip} is not in this server's IPv6 network {network}.", field="address"
        )
    return str(ip)


def forward_check(name: str, address: str) -> None:
    """The name must resolve (A for IPv4, AAAA for IPv6) to the address, or the PTR would
    claim a name its owner never pointed here (mail servers check both ways)."""
    version = ipaddress.ip_address(address).version
    rtype = "A" if version == 4 else "AAAA"
    try:
        found = forward_dns.addresses(name, rtype)
    except forward_dns.LookupFailed as failure:
        if failure.reason == "timeout":
            raise ReverseDnsError(
                f"We could not look up {name} just now (DNS did not answer in time). "
                "Try again in a minute.",
                field="ptr",
            ) from failure
        if failure.reason == "failed":
            raise ReverseDnsError(
                f"{name} could not be resolved: its name servers failed or refused to answer. "
                "Check the name's DNS, then save again.",
                field="ptr",
            ) from failure
        what = "does not exist in DNS" if failure.reason == "nxdomain" else f"has no {rtype} record"
        raise ReverseDnsError(
            f"{name} {what}. Create an {rtype} record for {name} pointing to {address} first, "
            "then save again.",
            field="ptr",
        ) from failure
    if not any(ipaddress.ip_address(found_address) == ipaddress.ip_address(address)
               for found_address in found):  # fmt: skip
        listed = ", ".join(sorted(found, key=ipaddress.ip_address))
        raise ReverseDnsError(
            f"{name} resolves to {listed}, not to {address}. Point its {rtype} record to "
            f"{address} first, then save again.",
            field="ptr",
        )


def reverse_dns_request(
    *, instance: Instance, address: str, ptr: str, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Point one of the server's addresses at `ptr` ("" puts the default back, or removes the
    PTR of an address without one). Raises ReverseDnsError naming the field at fault, and
    InstanceError (OperationInProgress) when the server is busy."""
    if not managed(instance):
        raise InstanceError("Reverse DNS of this server is set by our support team; ask them.")
    if instance.status not in REVERSE_DNS.allowed_from:
        raise InstanceError(
            f"{instance.hostname} is {instance.get_status_display()}; "
            "its reverse DNS cannot be changed now."
        )
    address = _address(instance, address)
    try:
        name = ptr_clean(ptr)
    except ValueError as error:
        raise ReverseDnsError(str(error), field="ptr") from None
    current = ReverseDns.objects.filter(instance=instance, address=address).first()
    has_default = address in defaulted(instance)
    wanted = name or (default_ptr(address) if has_default else "")
    if current is not None and current.ptr == wanted:
        raise ReverseDnsError(f"The reverse DNS of {address} is {wanted} already.", field="ptr")
    if current is None and not wanted:
        raise ReverseDnsError(f"{address} has no reverse DNS to remove.", field="ptr")
    if name and not (has_default and name == default_ptr(address)):
        forward_check(name, address)
    return operation_request(
        instance_id=instance.pk,
        kind=Kind.REVERSE_DNS,
        actor=actor,
        actor_user=actor_user,
        params={"address": address, "ptr": name},
    )
