"""A server's network: reverse DNS (PTR names in PowerDNS) and its firewall."""

from __future__ import annotations

from ninja import Router, Status

from api import auth, presenters, schemas
from api.errors import conflict, refused
from instances import firewall, reverse_dns, selectors, services
from instances.firewall_rules import PRESETS
from instances.models import InstanceEvent

router = Router(tags=["network"])
ERRORS = {404: schemas.Error, 409: schemas.Error, 422: schemas.Error}


@router.get(
    "/servers/{server_id}/reverse-dns",
    response={200: schemas.ReverseDns, 404: schemas.Error},
    auth=auth.read,
)
def reverse_dns_get(request, server_id: int):
    """The PTR name of each of the server's addresses: its IPv4 address, the first of its IPv6
    /64 and any other of the /64 given one. `managed` is false where support sets them."""
    instance = selectors.server_of(request.user, server_id)
    panel = reverse_dns.reverse_dns_panel(instance, selectors.latest_operation(instance))
    if panel is None:
        return {"managed": False, "editable": False, "ipv6_network": None, "addresses": []}
    return {
        "managed": True,
        "editable": panel.editable,
        "ipv6_network": panel.ipv6_network or None,
        "addresses": [
            {
                "address": card.address,
                "version": card.version,
                "ptr": card.ptr,
                "is_default": card.is_default,
                "changing_to": card.changing_to,
            }
            for card in panel.cards
        ],
    }


@router.post(
    "/servers/{server_id}/reverse-dns",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def reverse_dns_set(request, server_id: int, payload: schemas.ReverseDnsIn):
    """Point an address at a name, which must resolve (A or AAAA) to that address; an empty
    name puts the default back (or removes the PTR of an address without a default)."""
    instance = selectors.server_of(request.user, server_id)
    try:
        operation = reverse_dns.reverse_dns_request(
            instance=instance,
            address=payload.address,
            ptr=payload.ptr,
            actor=InstanceEvent.Actor.CUSTOMER,
            actor_user=request.user,
        )
    except reverse_dns.ReverseDnsError as error:
        raise refused(str(error), field=error.field) from None
    except services.OperationInProgress as error:
        raise conflict(str(error), code="busy") from None
    except services.InstanceError as error:
        raise refused(str(error)) from None
    return Status(202, presenters.operation(operation))


# --- Firewall ---------------------------------------------------------------------------------


def _firewall(instance) -> dict:
    page = firewall.firewall_page(instance)
    wall = page.firewall
    return {
        "enabled": wall.enabled,
        "policy_in": wall.policy_in,
        "policy_out": wall.policy_out,
        "rules": [rule.as_dict() for rule in page.rules],
        "applying": page.applying,
        "failure": page.failure,
        "changeable": page.changeable,
        # As the page says: known only once a firewall was applied (a new build filters).
        "filtering": not wall.pk or wall.nic_filtered,
        "presets": [
            {"key": key, "name": preset.name, "description": preset.description}
            for key, preset in PRESETS.items()
        ],
    }


def _firewall_refused(error: firewall.FirewallInvalid):
    """The first bad field as `field` (rules.<index from 0>.<field>), all of them in errors."""
    problems = [
        {"field": f"rules.{number - 1}.{name}", "message": text}
        for number, fields in sorted(error.errors.items())
        for name, text in fields.items()
    ]
    failure = refused(str(error), field=problems[0]["field"] if problems else "rules")
    failure.errors = problems
    return failure


@router.get(
    "/servers/{server_id}/firewall",
    response={200: schemas.Firewall, 404: schemas.Error},
    auth=auth.read,
)
def firewall_get(request, server_id: int):
    """The server's firewall as you keep it (PVE's copy is kept equal to it)."""
    return _firewall(selectors.server_of(request.user, server_id))


@router.post(
    "/servers/{server_id}/firewall",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def firewall_set(request, server_id: int, payload: schemas.FirewallIn):
    """Replace the whole firewall (on/off, policies, the rules in order). One bad rule and
    nothing changes: `field` names it (`rules.2.port`). Anti-spoofing stays on regardless."""
    instance = selectors.server_of(request.user, server_id)
    try:
        operation = firewall.firewall_update(
            instance=instance,
            enabled=payload.enabled,
            policy_in=payload.policy_in,
            policy_out=payload.policy_out,
            rules=[rule.model_dump() for rule in payload.rules],
            actor=InstanceEvent.Actor.CUSTOMER,
            actor_user=request.user,
        )
    except firewall.FirewallInvalid as error:
        raise _firewall_refused(error) from None
    except services.OperationInProgress as error:
        raise conflict(str(error), code="busy") from None
    except services.InstanceError as error:
        raise refused(str(error)) from None
    return Status(202, presenters.operation(operation))


@router.post(
    "/servers/{server_id}/firewall/preset",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def firewall_preset(request, server_id: int, payload: schemas.PresetIn):
    """Replace the rules by a preset's (ssh, web, mail) and switch the firewall on."""
    instance = selectors.server_of(request.user, server_id)
    try:
        operation = firewall.firewall_preset(
            instance=instance,
            preset=payload.preset,
            actor=InstanceEvent.Actor.CUSTOMER,
            actor_user=request.user,
        )
    except services.OperationInProgress as error:
        raise conflict(str(error), code="busy") from None
    except services.InstanceError as error:
        raise refused(str(error), field="preset") from None
    return Status(202, presenters.operation(operation))
