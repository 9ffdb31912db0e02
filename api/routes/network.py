"""A server's network: reverse DNS (PTR names in PowerDNS)."""

from __future__ import annotations

from ninja import Router, Status

from api import auth, presenters, schemas
from api.errors import conflict, refused
from instances import reverse_dns, selectors, services
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
