"""The customer's firewall: what the page shows, and saving a change (or a preset) as one whole.

A change is checked rule by rule first (instances/firewall_rules.py): one bad field and nothing
is saved, and the message names the rule and the field. A good change is saved and its
`firewall` operation queued in one transaction, so the portal never keeps rules it is not
applying; the operation makes PVE's firewall equal (instances/operations/firewall.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from instances.firewall_rules import (
    DONE_TO,
    LABELS,
    MAX_RULES,
    PRESETS,
    Rule,
    RuleInvalid,
    check_rule,
)
from instances.models import Family, Firewall, FirewallRule, Instance, InstanceOperation
from instances.models.firewall import Policy
from instances.services import InstanceError, operation_request

Kind = InstanceOperation.Kind
Status = Instance.Status
# Where a customer may change the firewall (a suspended server's stays as it is).
CHANGEABLE = (Status.RUNNING, Status.STOPPED)


class FirewallInvalid(InstanceError):
    """Rules that cannot be taken: `errors` maps a rule's number (1-based) to its fields' errors."""

    def __init__(self, errors: dict[int, dict[str, str]], message: str = "") -> None:
        self.errors = errors
        if not message:
            first = min(errors)
            field, text = next(iter(errors[first].items()))
            message = f"Nothing was changed: rule {first}, {LABELS[field].lower()}: {text}"
        super().__init__(message)


@dataclass(frozen=True)
class FirewallPage:
    """What the firewall page (and the server page's card) shows, from the database alone."""

    firewall: Firewall
    rules: list[Rule]
    operation: InstanceOperation | None  # a firewall change under way, or the last failed one
    changeable: bool

    @property
    def applying(self) -> bool:
        return self.operation is not None and self.operation.is_live

    @property
    def ipv6_network(self) -> str:
        """The server's own IPv6 /64 (its ipfilter set holds the whole network)."""
        ipv6 = self.firewall.instance.ipv6
        return str(ipaddress.ip_network(ipv6, strict=False)) if ipv6 else ""

    @property
    def incoming(self) -> str:
        return DONE_TO[self.firewall.policy_in]

    @property
    def outgoing(self) -> str:
        return DONE_TO[self.firewall.policy_out]

    @property
    def failure(self) -> str:
        op = self.operation
        return op.error_message if op is not None and op.state == op.State.FAILED else ""


def firewall_of(instance: Instance) -> Firewall:
    """The server's firewall (off, no rules, if the customer never changed it)."""
    return Firewall.objects.filter(instance=instance).first() or Firewall(instance=instance)


def firewall_page(instance: Instance) -> FirewallPage:
    firewall = firewall_of(instance)
    rows = list(firewall.rules.all()) if firewall.pk else []
    latest = instance.operations.filter(kind=Kind.FIREWALL).order_by("-created_at", "-id").first()
    shown = latest if latest is not None and latest.state != latest.State.SUCCEEDED else None
    return FirewallPage(
        firewall=firewall,
        rules=[_rule(row) for row in rows],
        operation=shown,
        changeable=instance.status in CHANGEABLE and instance.family != Family.DEDICATED,
    )


def _rule(row: FirewallRule) -> Rule:
    return Rule(
        row.direction, row.action, row.protocol, row.port, row.source, row.destination, row.comment
    )


def checked_rules(rules: list[dict]) -> list[Rule]:
    """Every rule checked; FirewallInvalid names each rule (by number) and field that is wrong."""
    if len(rules) > MAX_RULES:
        raise FirewallInvalid({}, f"At most {MAX_RULES} rules; you gave {len(rules)}.")
    checked, errors = [], {}
    for number, rule in enumerate(rules, 1):
        try:
            checked.append(check_rule(**rule))
        except RuleInvalid as exc:
            errors[number] = exc.errors
    if errors:
        raise FirewallInvalid(errors)
    return checked


def _describe(enabled: bool, policy_in: str, rules: list[Rule]) -> str:
    if not enabled:
        return "Firewall switched off: all traffic passes (anti-spoofing stays on)."
    count = f"{len(rules)} rule{'s' if len(rules) != 1 else ''}"
    return f"Firewall on: {count}, other incoming traffic {DONE_TO[policy_in]}."


def firewall_update(
    *,
    instance: Instance,
    enabled: bool,
    policy_in: str,
    policy_out: str,
    rules: list[dict],
    actor: str,
    actor_user: User | None,
    label: str = "",
) -> InstanceOperation:
    """Save the server's firewall and apply it (rules in order; fields as check_rule takes
    them). Raises FirewallInvalid for a bad rule, InstanceError when it cannot change now."""
    if instance.status not in CHANGEABLE:
        raise InstanceError(
            f"{instance.hostname} is {instance.get_status_display()}; its firewall cannot be "
            "changed now."
        )
    for name, value in (("incoming", policy_in), ("outgoing", policy_out)):
        if value not in Policy.values:
            raise InstanceError(f"Choose accept, drop or reject as the {name} policy.")
    checked = checked_rules(rules)
    done = (label + " " if label else "") + _describe(enabled, policy_in, checked)
    with transaction.atomic():
        firewall, _ = Firewall.objects.select_for_update().get_or_create(instance=instance)
        Firewall.objects.filter(pk=firewall.pk).update(
            enabled=enabled, policy_in=policy_in, policy_out=policy_out
        )
        firewall.rules.all().delete()
        FirewallRule.objects.bulk_create(
            FirewallRule(firewall=firewall, position=n, **rule.as_dict())
            for n, rule in enumerate(checked, 1)
        )
        # Refused while another operation runs: then nothing above is kept either.
        return operation_request(
            instance_id=instance.pk,
            kind=Kind.FIREWALL,
            actor=actor,
            actor_user=actor_user,
            params={"done": done},
        )


def firewall_preset(
    *, instance: Instance, preset: str, actor: str, actor_user: User | None
) -> InstanceOperation:
    """Replace the rules with a preset's and switch the firewall on (incoming: drop the rest)."""
    chosen = PRESETS.get(preset)
    if chosen is None:
        raise InstanceError("Choose one of the presets.")
    current = firewall_of(instance)
    return firewall_update(
        instance=instance,
        enabled=True,
        policy_in=Policy.DROP,
        policy_out=current.policy_out,
        rules=[rule.as_dict() for rule in chosen.rules],
        actor=actor,
        actor_user=actor_user,
        label=f"Preset “{chosen.name}”.",
    )
