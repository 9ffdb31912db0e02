"""Your SSH keys (servers are ordered and reinstalled with their ids)."""

from __future__ import annotations

from django.http import Http404
from ninja import Router, Status

from accounts import services
from accounts.models import SSHKey
from accounts.sshkeys import InvalidSSHKey
from api import auth, schemas
from api.errors import refused

router = Router(tags=["ssh keys"])


def _key(row: SSHKey) -> dict:
    return {
        "id": row.pk,
        "name": row.name,
        "key_type": row.key_type,
        "fingerprint": row.fingerprint,
        "created_at": row.created_at,
    }


@router.get("/ssh-keys", response=list[schemas.SSHKey], auth=auth.read)
def ssh_key_list(request):
    return [_key(row) for row in SSHKey.objects.filter(owner=request.user).order_by("name", "id")]


@router.post("/ssh-keys", response={201: schemas.SSHKey, 422: schemas.Error}, auth=auth.write)
def ssh_key_add(request, payload: schemas.SSHKeyIn):
    try:
        row = services.sshkey_add(
            owner=request.user, name=payload.name, public_key=payload.public_key
        )
    except InvalidSSHKey as error:
        raise refused(str(error), field="public_key") from None
    except services.AccountError as error:
        raise refused(str(error), field="public_key") from None
    return Status(201, _key(row))


@router.delete("/ssh-keys/{key_id}", response={204: None, 404: schemas.Error}, auth=auth.write)
def ssh_key_delete(request, key_id: int):
    """Servers that already have the key keep it."""
    try:
        services.sshkey_delete(owner=request.user, key_id=key_id)
    except SSHKey.DoesNotExist:
        raise Http404 from None
    return Status(204, None)
