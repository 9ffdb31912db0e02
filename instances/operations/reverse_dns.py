"""Reverse DNS in PowerDNS: the customer's PTR change, and the defaults a build sets and a
removal restores.

The server's IPv4 address and the first address of its IPv6 /64 (`instance.ipv6`) get the
default PTR (`203-0-113-10.example-hosting.net`) when the server is built; the customer may
point them, and any other address of the /64, at a name of theirs (`REVERSE_DNS` operations,
asked for through instances/reverse_dns.py, which checks the name first); the removal puts the
defaults back and deletes the others. A `ReverseDns` row is written once PowerDNS took the
change, so the rows are what PowerDNS serves.

A build or removal never fails for reverse DNS: when PowerDNS stays down through the engine's
retries (or refuses), the step notes it on the timeline (PowerDNS's words for staff) and the
operation goes on. A row left by a removal that could not restore its PTR is set right by the
next build on that address.
"""

from __future__ import annotations

import ipaddress
import logging
from contextlib import contextmanager

from django.conf import settings

from instances.models import Instance, ReverseDns
from instances.operations.base import Context, Kind, Step, StepFailed, TryAgain
from instances.powerdns import PowerDns, PowerDnsError, absolute
from instances.reverse_names import default_ptr, pointer, zone_of
from instances.state import event_record

logger = logging.getLogger(__name__)
Status = Instance.Status


def enabled() -> bool:
    """Whether the portal manages reverse DNS (a PowerDNS API is configured)."""
    return bool(settings.POWERDNS_API_URL)


def ipv6_network(instance: Instance) -> ipaddress.IPv6Network | None:
    """The server's own /64 (None without IPv6)."""
    if not instance.ipv6:
        return None
    return ipaddress.IPv6Interface(instance.ipv6).network


def defaulted(instance: Instance) -> list[str]:
    """The addresses that carry a default PTR: the IPv4 address and the /64's first one."""
    found = [instance.ipv4.address] if instance.ipv4_id else []
    if instance.ipv6:
        found.append(str(ipaddress.IPv6Interface(instance.ipv6).ip))
    return found


def _pool_network(instance: Instance, address: str) -> str:
    pool = instance.ipv4.pool
    return pool.network if ipaddress.ip_address(address).version == 4 else pool.ipv6_prefix


def ptr_write(dns: PowerDns, instance: Instance, address: str, name: str | None) -> None:
    """Point the address's PTR at `name` in PowerDNS; None deletes it."""
    zone = zone_of(address, _pool_network(instance, address))
    if name:
        dns.records_replace(
            zone, pointer(address), "PTR", [absolute(name)], ttl=settings.REVERSE_DNS_TTL
        )
    else:
        dns.records_delete(zone, pointer(address), "PTR")


def _row_set(instance: Instance, address: str, name: str | None) -> None:
    if name:
        ReverseDns.objects.update_or_create(
            instance=instance, address=address, defaults={"ptr": name}
        )
    else:
        ReverseDns.objects.filter(instance=instance, address=address).delete()


@contextmanager
def _powerdns():
    dns = PowerDns.from_settings()
    try:
        yield dns
    finally:
        dns.close()


# --- The customer's change ---------------------------------------------------------------------


def target(instance: Instance, address: str, name: str) -> str | None:
    """What the address's PTR becomes: the name, or ("" asked) its default, or none at all."""
    if name:
        return name
    return default_ptr(address) if address in defaulted(instance) else None


def apply(ctx: Context) -> None:
    """Set the PTR the customer asked for (`params`: address, ptr; "" is the default/none)."""
    instance, address = ctx.instance, ctx.params["address"]
    name = target(instance, address, ctx.params.get("ptr", ""))
    try:
        with _powerdns() as dns:
            ptr_write(dns, instance, address, name)
    except PowerDnsError as error:
        if error.transient:
            raise TryAgain(error.message) from error
        raise StepFailed(error.message) from error
    _row_set(instance, address, name)
    if name is None:
        message = f"Reverse DNS of {address} removed."
    elif name == default_ptr(address) and not ctx.params.get("ptr"):
        message = f"Reverse DNS of {address} is the default again: {name}."
    else:
        message = f"Reverse DNS of {address} set to {name}."
    event_record(
        instance,
        message=message,
        step=ctx.operation.step,
        actor=ctx.operation.actor,
        actor_user=ctx.operation.actor_user,
        operation=ctx.operation,
    )


REVERSE_DNS = Kind(
    name="reverse_dns",
    noun="a reverse DNS change",
    steps=(Step("apply", "Updating reverse DNS", apply),),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED}),
    requested="",
    done="",
    failed="The reverse DNS change did not go through. Support has been told; try again later.",
)


# --- Build and removal ------------------------------------------------------------------------


def _in_network(address: str, instance: Instance) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return instance.ipv4_id is not None and address == instance.ipv4.address
    network = ipv6_network(instance)
    return network is not None and ip in network


def _leftovers(instance: Instance) -> list[ReverseDns]:
    """Rows of earlier holders of these addresses whose removal could not restore them."""
    candidates = ReverseDns.objects.exclude(instance=instance).select_related(
        "instance__ipv4__pool"
    )
    addresses = defaulted(instance)
    network = ipv6_network(instance)
    if network is not None:
        # Index-friendly: the /64's rows are the ones whose text starts with its prefix.
        prefix = str(network.network_address).rstrip(":")
        candidates = candidates.filter(address__startswith=prefix) | candidates.filter(
            address__in=addresses
        )
    else:
        candidates = candidates.filter(address__in=addresses)
    return [row for row in candidates if _in_network(row.address, instance)]


def _tolerant(ctx: Context, what: str, work) -> None:
    """Run `work(dns)`; PowerDNS trouble is retried by the engine while retries are left, and
    then noted on the timeline instead of stopping the build or removal."""
    try:
        with _powerdns() as dns:
            work(dns)
    except PowerDnsError as error:
        if error.transient and ctx.operation.attempts < settings.OPERATION_MAX_RETRIES:
            raise TryAgain(error.message) from error
        logger.warning("instance %s: reverse DNS not %s: %s", ctx.instance.pk, what, error)
        ctx.event(
            f"The reverse DNS of this server could not be {what}; our support team has been told.",
            detail=f"PowerDNS: {error.message}",
        )


def defaults_set(ctx: Context) -> None:
    """Build step: the default PTRs of the server's addresses (and an earlier holder's PTRs
    of them, left by a removal PowerDNS missed, put right)."""
    if not enabled() or ctx.instance.ipv4_id is None:
        return
    instance = ctx.instance

    def work(dns: PowerDns) -> None:
        for row in _leftovers(instance):
            ptr_write(dns, instance, row.address, target(instance, row.address, ""))
            row.delete()
        for address in defaulted(instance):
            ptr_write(dns, instance, address, default_ptr(address))
            _row_set(instance, address, default_ptr(address))

    _tolerant(ctx, "set up", work)


def defaults_restore(ctx: Context) -> None:
    """Removal step: the defaults back on the server's addresses, its other PTRs deleted."""
    if not enabled() or ctx.instance.ipv4_id is None:
        return
    instance = ctx.instance

    def work(dns: PowerDns) -> None:
        for address in defaulted(instance):
            ptr_write(dns, instance, address, default_ptr(address))
        for row in ReverseDns.objects.filter(instance=instance):
            if row.address not in defaulted(instance):
                ptr_write(dns, instance, row.address, None)
            row.delete()

    _tolerant(ctx, "reset", work)
