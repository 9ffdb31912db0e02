"""The guest firewall of the demo cluster, where fakepve differs from PVE, and what pve-firewall
would do with a packet (for tests: fakepve keeps the firewall config but filters nothing).

Installed on a FakePve by sandbox.pve.install_extensions (see the table in sandbox/README.md).
fakepve's firewall API (fakepve/firewall.py) follows pve-firewall's API2/Firewall/*.pm; what it
leaves out:

- A clone takes its source's firewall config (`/etc/pve/firewall/<vmid>.fw`): qemu-server's
  clone_vm ends with PVE::Firewall::clone_vmfw_conf, which drops any config the new VMID had
  and copies the source's, so a template's firewall goes to every clone.
- A rule's `enable` reads back as 0 or 1: PVE keeps a disabled rule as a `|`-prefixed line of
  the .fw file and parses every rule back to enable 0/1 (fakepve kept the number sent).

`verdict()` evaluates a VM's firewall as pve-firewall compiles it (PVE::Firewall.pm): nothing
is filtered unless the datacenter firewall, the VM's firewall (`enable`) and the NIC's
`firewall=1` are all on; outgoing packets then pass the MAC filter and the IP filter (the
`ipfilter-net<n>` IP set, or only the MAC-derived link-local address when `ipfilter` is on and
the set is missing) before the rules; the rules are read in order, first match wins, then the
direction's policy (in: DROP, out: ACCEPT unless set).
"""

from __future__ import annotations

import copy
import ipaddress
import re

from fakepve import FakePve
from fakepve.firewall import PROTOCOLS, SERVICES

NET_KEY = re.compile(r"^net(\d+)$")
NIC_OPTIONS = {"bridge", "firewall", "link_down", "macaddr", "model", "mtu", "queues", "rate"}
NIC_OPTIONS |= {"tag", "trunks"}


def install(pve: FakePve) -> None:
    _clones_take_the_firewall(pve)
    _rules_enable_as_read_back(pve)


def datacenter_firewall_on(pve: FakePve) -> None:
    """What an operator does once (Datacenter → Firewall → Options → enable): without it no
    guest firewall filters anything."""
    pve.firewall_config("cluster")["options"]["enable"] = 1


def _clones_take_the_firewall(pve: FakePve) -> None:
    task = pve.task

    async def cloning_task(node, ttype, tid, user, body, vm=None, lock=True, log=()):
        if ttype != "qmclone" or vm is None:
            return await task(node, ttype, tid, user, body, vm=vm, lock=lock, log=log)

        async def body_then_firewall():
            note = await body()
            clone_firewall(pve, int(tid), vm.vmid)
            return note

        return await task(node, ttype, tid, user, body_then_firewall, vm=vm, lock=lock, log=log)

    pve.task = cloning_task


def clone_firewall(pve: FakePve, source: int, target: int) -> None:
    """PVE::Firewall::clone_vmfw_conf: the target's config goes, the source's (if any) is copied."""
    guests = pve._fw()["guests"]
    guests.pop(target, None)
    if source in guests:
        guests[target] = copy.deepcopy(guests[source])


def _rules_enable_as_read_back(pve: FakePve) -> None:
    check_rule = pve._check_rule

    def checking(scope, rule, conf):
        checked = check_rule(scope, rule, conf)
        if rule.get("enable") is not None:
            rule["enable"] = 1 if int(rule["enable"]) else 0
        return checked

    pve._check_rule = checking


# --- What pve-firewall does with a packet -----------------------------------------------------


def _flag(value: object, default: bool = False) -> bool:
    if value is None:
        return default
    return str(value) in ("1", "true", "True")


def nic(value: str) -> dict[str, str]:
    """A `net<n>` value as a dict; `model` and `macaddr` from its leading `<model>=<mac>`."""
    parts: dict[str, str] = {}
    for item in str(value or "").split(","):
        key, _, val = item.partition("=")
        if key in NIC_OPTIONS:
            parts[key] = val
        elif key:
            parts["model"], parts["macaddr"] = key, val
    return parts


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 link-local address of a MAC (what NDP needs, in every ipfilter set)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    return ipaddress.IPv6Address(bytes([0xFE, 0x80] + [0] * 6 + eui))


def _ipset(pve: FakePve, conf: dict, name: str) -> list[dict] | None:
    found = conf["ipset"].get(name)
    if found is None:
        found = pve.firewall_config("cluster")["ipset"].get(name)
    return found


def _in_entries(pve, conf, address, entries: list[dict]) -> bool:
    matched = False
    for entry in entries:
        if _in_spec(pve, conf, address, entry["cidr"]):
            if entry.get("nomatch"):
                return False
            matched = True
    return matched


def _in_spec(pve: FakePve, conf: dict, address, spec: str) -> bool:
    """Whether `address` is in a rule's address spec: +ipset, alias, range or list of CIDRs."""
    if spec.startswith("+"):
        entries = _ipset(pve, conf, spec[1:].removeprefix("guest/").removeprefix("dc/"))
        return _in_entries(pve, conf, address, entries or [])
    alias = conf["aliases"].get(spec.lower()) or pve.firewall_config("cluster")["aliases"].get(
        spec.lower()
    )
    if alias is not None:
        spec = alias["cidr"]
    for element in spec.split(","):
        first, dash, last = element.partition("-")
        try:
            if dash:
                low, high = ipaddress.ip_address(first), ipaddress.ip_address(last)
                if low.version == address.version and low <= address <= high:
                    return True
            elif address in ipaddress.ip_network(element, strict=False):
                return True
        except (TypeError, ValueError):
            continue
    return False


def _ports(spec: str) -> list[tuple[int, int]]:
    ranges = []
    for item in spec.split(","):
        first, colon, last = item.partition(":")
        low = int(first) if first.isdigit() else SERVICES.get(first, -1)
        high = (int(last) if last.isdigit() else SERVICES.get(last, -1)) if colon else low
        ranges.append((low, high))
    return ranges


def _protocol(name: str | None) -> int | None:
    if not name:
        return None
    if name.isdigit():
        return int(name)
    return {"icmpv6": 58}.get(name, PROTOCOLS.get(name))


def _matches(pve, conf, rule, direction, packet) -> bool:
    if not _flag(rule.get("enable"), default=True) or rule.get("type") != direction:
        return False
    if rule.get("iface") and rule["iface"] != packet["iface"]:
        return False
    if rule.get("macro"):
        raise NotImplementedError("verdict() does not expand macros")
    proto = _protocol(rule.get("proto"))
    if proto is not None and proto != _protocol(packet["proto"]):
        return False
    for field in ("dport", "sport"):
        if rule.get(field):
            port = packet.get(field)
            if port is None or not any(low <= port <= high for low, high in _ports(rule[field])):
                return False
    for field in ("source", "dest"):
        if rule.get(field):
            address = packet.get(field)
            if address is None or not _in_spec(pve, conf, address, rule[field]):
                return False
    return True


def _rules(pve: FakePve, conf: dict) -> list[dict]:
    """The rules in order, security groups expanded in place."""
    rules = []
    for rule in conf["rules"]:
        if rule.get("type") == "group":
            if _flag(rule.get("enable"), default=True):
                group = pve.firewall_config("cluster")["groups"].get(rule["action"], [])
                rules.extend(group)
        else:
            rules.append(rule)
    return rules


def verdict(
    pve: FakePve,
    vmid: int,
    direction: str,
    *,
    proto: str = "tcp",
    dport: int | None = None,
    sport: int | None = None,
    source: str | None = None,
    dest: str | None = None,
    mac: str | None = None,
    iface: str = "net0",
) -> str:
    """ACCEPT, DROP or REJECT: what PVE's firewall does with the first packet of a connection
    of the VM's NIC `iface`, coming in to it (`in`) or going out from it (`out`)."""
    vm = pve.vm(vmid)
    cluster = pve.firewall_config("cluster")
    card = nic(vm.config.get(iface, "")) if vm is not None else {}
    conf = pve.firewall_config("vm", vmid=vmid)
    options = conf["options"]
    if not _flag(cluster["options"].get("enable")) or not _flag(card.get("firewall")):
        return "ACCEPT"
    if not _flag(options.get("enable")):
        return "ACCEPT"
    packet = {
        "proto": proto,
        "dport": dport,
        "sport": sport,
        "source": ipaddress.ip_address(source) if source else None,
        "dest": ipaddress.ip_address(dest) if dest else None,
        "iface": iface,
    }
    if direction == "out":
        own_mac = card.get("macaddr", "")
        if _flag(options.get("macfilter"), default=True) and mac and mac.upper() != own_mac.upper():
            return "DROP"
        ipset_name = f"ipfilter-{iface}"
        ipset = conf["ipset"].get(ipset_name)
        if (ipset is not None or _flag(options.get("ipfilter"))) and packet["source"] is not None:
            allowed = packet["source"] == link_local(own_mac) if own_mac else False
            if not allowed and not _in_entries(pve, conf, packet["source"], ipset or []):
                return "DROP"
    for rule in _rules(pve, conf):
        if _matches(pve, conf, rule, direction, packet):
            return rule["action"]
    default = "DROP" if direction == "in" else "ACCEPT"
    return options.get(f"policy_{direction}") or default
