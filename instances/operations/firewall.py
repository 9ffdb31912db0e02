"""The firewall on PVE: what it should be for a server, what it is, and the step that makes it so.

Every server's VM firewall is on (`enable`) with PVE's anti-spoofing (`ipfilter` with the
server's own IPv4 address and IPv6 /64 in its `ipfilter-net0` IP set, `macfilter`, and no
router advertisements, `radv` 0), whatever the customer chose. The customer's firewall
(instances.models.Firewall) adds the default policies and the rules; switched off, its rules
stay on PVE disabled and both policies accept.

PVE has no transaction across its firewall calls, so the step orders them: the IP set first,
then the new rules in front of the old ones, then the options, then the old rules go; a retry
starts from whatever PVE has and ends in the same place. A change PVE refuses is taken back:
PVE and the portal both return to what PVE took last, and the customer reads which rule and
field PVE refused. Used by the build, the reinstall and the `firewall` kind (customer changes,
and beat's repairs: instances/firewall_check.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from instances.firewall_rules import LABELS, PVE_FIELDS, Rule
from instances.models import Firewall, FirewallRule, Instance
from instances.models.firewall import Policy
from instances.operations.base import Context, Kind, Step, StepFailed, TryAgain, Wait
from instances.operations.limits import NIC, nic_filtered, with_properties
from instances.state import event_record

Status = Instance.Status
IPSET = "ipfilter-net0"
IPSET_COMMENT = "The server's own addresses (anti-spoofing, set by the portal)"
# Rule fields the portal never sets: a rule on PVE with any of them is not one of ours.
FOREIGN = ("macro", "iface", "sport", "icmp-type", "log")


def snapshot(firewall: Firewall | None) -> dict:
    """The customer's firewall as plain data (what `Firewall.applied` keeps)."""
    if firewall is None:
        firewall = Firewall()
        rules = []
    else:
        rules = list(firewall.rules.all()) if firewall.pk else []
    return {
        "enabled": firewall.enabled,
        "policy_in": firewall.policy_in,
        "policy_out": firewall.policy_out,
        "rules": [rule_of(rule).as_dict() for rule in rules],
    }


def rule_of(row: FirewallRule) -> Rule:
    return Rule(
        row.direction, row.action, row.protocol, row.port, row.source, row.destination, row.comment
    )


@dataclass(frozen=True)
class PveFirewall:
    """A VM's firewall as PVE holds it, in the portal's terms (comparable)."""

    options: dict
    addresses: frozenset
    rules: tuple  # (Rule, enabled) in order, or a str for a rule the portal would not write

    def differences(self, other: PveFirewall) -> list[str]:
        """What differs from `other` (the wanted state), in words for staff."""
        found = []
        for key, value in self.options.items():
            if other.options.get(key) != value:
                found.append(f"option {key} is {other.options.get(key)!r}, not {value!r}")
        if self.addresses != other.addresses:
            found.append(
                f"{IPSET} holds {sorted(map(str, other.addresses))}, "
                f"not {sorted(map(str, self.addresses))}"
            )
        if self.rules != other.rules:
            found.append(f"{len(other.rules)} rules differ from the {len(self.rules)} wanted")
        return found


def addresses_of(instance: Instance) -> frozenset:
    """The server's own networks: its IPv4 address and its IPv6 /64."""
    found = set()
    if instance.ipv4_id:
        found.add(ipaddress.ip_network(instance.ipv4.address))
    if instance.ipv6:
        found.add(ipaddress.ip_network(instance.ipv6, strict=False))
    return frozenset(found)


def wanted(instance: Instance, state: dict) -> PveFirewall:
    """What PVE should hold for the server with the customer's firewall `state`."""
    on = state["enabled"]
    return PveFirewall(
        options={
            "enable": 1,
            "ipfilter": 1,
            "macfilter": 1,
            "radv": 0,  # no router advertisements: a VM cannot route its neighbours' IPv6
            "policy_in": state["policy_in"] if on else Policy.ACCEPT,
            "policy_out": state["policy_out"] if on else Policy.ACCEPT,
        },
        addresses=addresses_of(instance),
        rules=tuple((Rule(**rule), on) for rule in state["rules"]),
    )


def _address(text: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    return str(network.network_address if network.prefixlen == network.max_prefixlen else network)


def rule_from_pve(item: dict) -> tuple[Rule, bool] | str:
    """A rule PVE holds, as the portal's (Rule, enabled); a str describes one it would not write."""
    if any(item.get(key) for key in FOREIGN) or item.get("type") not in ("in", "out"):
        return f"rule {item.get('pos')}: {item.get('type')} {item.get('action')} (not the portal's)"
    proto = str(item.get("proto") or "").lower()
    proto = {"ipv6-icmp": "icmpv6", "58": "icmpv6", "6": "tcp", "17": "udp", "1": "icmp"}.get(
        proto, proto
    )
    rule = Rule(
        direction=item["type"],
        action=str(item.get("action", "")).upper(),
        protocol=proto,
        port=str(item.get("dport") or ""),
        source=_address(str(item.get("source") or "")),
        destination=_address(str(item.get("dest") or "")),
        comment=str(item.get("comment") or "").strip(),
    )
    return rule, bool(int(item.get("enable") or 0))


def read(pve, node: str, vmid: int) -> tuple[PveFirewall, list[dict]]:
    """What PVE holds for the VM (and its raw rules, for their positions)."""
    options = pve.firewall_options(node, vmid)
    flags = {"enable": 0, "ipfilter": 0, "macfilter": 1, "radv": 0}  # PVE's defaults if unset
    values = {key: int(options.get(key, default) or 0) for key, default in flags.items()}
    for key in ("policy_in", "policy_out"):
        values[key] = str(options.get(key) or ("DROP" if key == "policy_in" else "ACCEPT"))
    entries = pve.firewall_ipset(node, vmid, IPSET)
    addresses = frozenset(
        ipaddress.ip_network(entry["cidr"], strict=False)
        for entry in entries or []
        if not entry.get("nomatch")
    )
    raw = pve.firewall_rules(node, vmid)
    state = PveFirewall(values, addresses, tuple(rule_from_pve(item) for item in raw))
    return state, raw


def pve_params(rule: Rule, enabled: bool) -> dict:
    """A rule as PVE's `POST firewall/rules` takes it."""
    params = {"type": rule.direction, "action": rule.action, "enable": int(enabled)}
    for key, value in (("proto", rule.protocol), ("dport", rule.port), ("source", rule.source)):
        if value:
            params[key] = value
    if rule.destination:
        params["dest"] = rule.destination
    if rule.comment:
        params["comment"] = rule.comment
    return params


class Refused(Exception):
    """PVE refused rule `index` (1-based; 0: the options), with its per-field `errors`."""

    def __init__(self, index: int, exc: Exception) -> None:
        super().__init__(str(exc))
        self.index, self.errors, self.pve_error = index, getattr(exc, "errors", {}) or {}, exc


def _refusal(exc: Exception) -> bool:
    """Whether PVE refused for good (the client's ProxmoxPermanent: kinds do not import the
    client); a passing problem (ProxmoxTransient) is retried by the engine instead."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "ProxmoxError" in names and "ProxmoxTransient" not in names


def converge(ctx: Context, target: PveFirewall) -> None:
    """Make the VM's firewall on PVE equal `target`, from whatever it holds now."""
    pve, node, vmid = ctx.pve, ctx.node, ctx.vmid
    current, raw = read(pve, node, vmid)
    entries = pve.firewall_ipset(node, vmid, IPSET)
    if entries is None:
        pve.firewall_ipset_create(node, vmid, IPSET, comment=IPSET_COMMENT)
        entries = []
    have = {ipaddress.ip_network(e["cidr"], strict=False): e for e in entries}
    for network in target.addresses - set(have):
        pve.firewall_ipset_add(node, vmid, IPSET, str(network))
    for network, entry in have.items():
        if network not in target.addresses or entry.get("nomatch"):
            pve.firewall_ipset_remove(node, vmid, IPSET, entry["cidr"])
    count = len(target.rules)
    if current.rules[:count] != target.rules:
        # The new rules go in front of the old ones (each one added lands at position 0).
        for index in range(count, 0, -1):
            rule, enabled = target.rules[index - 1]
            try:
                pve.firewall_rule_add(node, vmid, **pve_params(rule, enabled))
            except Exception as exc:
                if _refusal(exc):
                    raise Refused(index, exc) from exc
                raise
        raw = pve.firewall_rules(node, vmid)
    if current.options != target.options:
        try:
            pve.firewall_options_set(node, vmid, **target.options)
        except Exception as exc:
            if _refusal(exc):
                raise Refused(0, exc) from exc
            raise
    for pos in range(len(raw) - 1, count - 1, -1):  # the old rules, from the last one up
        pve.firewall_rule_delete(node, vmid, pos)
    after, _raw = read(pve, node, vmid)
    if after != target:
        raise TryAgain("; ".join(target.differences(after)) or "PVE's firewall changed meanwhile")


def _restore(firewall: Firewall, state: dict) -> None:
    """The portal's copy goes back to `state` (what PVE took last)."""
    with transaction.atomic():
        Firewall.objects.filter(pk=firewall.pk).update(
            enabled=state["enabled"], policy_in=state["policy_in"], policy_out=state["policy_out"]
        )
        firewall.rules.all().delete()
        FirewallRule.objects.bulk_create(
            FirewallRule(firewall=firewall, position=n, **rule)
            for n, rule in enumerate(state["rules"], 1)
        )


def _refused_message(refused: Refused) -> str:
    if getattr(refused.pve_error, "status", None) != 400:  # not the rule's fault (permissions)
        return (
            "The firewall could not be applied; your previous firewall settings are in force "
            "again. Support has been told."
        )
    fields = "; ".join(
        f"{LABELS.get(PVE_FIELDS.get(key, ''), key)}: {text.strip()}"
        for key, text in sorted(refused.errors.items())
    ) or str(refused.pve_error)
    where = f"rule {refused.index}" if refused.index else "the default policies"
    return (
        f"Proxmox refused {where} ({fields}). Nothing was changed: your previous firewall "
        "settings are in force again."
    )


def nic_ready(ctx: Context) -> bool:
    """Whether PVE filters the server's NIC (`firewall=1` in its running config). A server
    built before the firewall gets it at its next start or reboot (nic_at_boot)."""
    return nic_filtered(ctx.pve.vm_config(ctx.node, ctx.vmid, current=True))


def apply(ctx: Context) -> None:
    """A step: PVE's firewall for the server becomes the customer's (plus anti-spoofing)."""
    firewall, _ = Firewall.objects.get_or_create(instance=ctx.instance)
    state = snapshot(firewall)
    try:
        converge(ctx, wanted(ctx.instance, state))
    except Refused as refused:
        previous = firewall.applied or snapshot(None)
        _restore(firewall, previous)
        converge(ctx, wanted(ctx.instance, previous))
        raise StepFailed(
            f"PVE refused the firewall change: {refused.pve_error}",
            customer=_refused_message(refused),
        ) from refused
    Firewall.objects.filter(pk=firewall.pk).update(
        applied=state, applied_at=timezone.now(), nic_filtered=nic_ready(ctx), drift=""
    )


def nic_at_boot(ctx: Context) -> Wait | None:
    """A step before a start or a reboot: a server built before the firewall gets its NIC on
    it now, so the firewall filters from this boot on (a running VM takes it at once)."""
    if ctx.operation.task_upid:
        return ctx.task_outcome("config", "Putting the network card on the firewall")
    config = ctx.pve.vm_config(ctx.node, ctx.vmid)
    if not config.get(NIC) or nic_filtered(config):
        return None
    upid = ctx.pve.set_config(
        ctx.node, ctx.vmid, **{NIC: with_properties(config[NIC], firewall="1")}
    )
    Firewall.objects.update_or_create(instance=ctx.instance, defaults={"nic_filtered": True})
    return ctx.task_started(upid, "config", "Putting the network card on the firewall")


def applied(ctx: Context) -> None:
    """The last step: the timeline says what is in force now, as the requester's."""
    message = ctx.params.get("done")
    if message:
        event_record(
            ctx.instance,
            message=message,
            detail=ctx.params.get("detail", ""),
            step=ctx.operation.step,
            actor=ctx.operation.actor,
            actor_user=ctx.operation.actor_user,
            operation=ctx.operation,
        )


FIREWALL = Kind(
    name="firewall",
    noun="a firewall change",
    steps=(
        Step("apply", "Applying the firewall rules", apply),
        Step("applied", "Done", applied),
    ),
    allowed_from=frozenset({Status.RUNNING, Status.STOPPED, Status.SUSPENDED}),
    requested="",
    done="",
    failed="The firewall rules could not be applied; your previous rules stay. Support has been "
    "told.",
)
