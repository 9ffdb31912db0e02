"""Snapshots and backups of a server: take, roll back, delete; back up now, restore."""

from __future__ import annotations

from django.http import Http404
from ninja import Router, Status

from api import auth, presenters, schemas
from api.errors import conflict, refused
from instances import backups, selectors, services, snapshots
from instances.models import InstanceEvent

router = Router(tags=["snapshots and backups"])
ERRORS = {404: schemas.Error, 409: schemas.Error, 422: schemas.Error}
CUSTOMER = InstanceEvent.Actor.CUSTOMER


def _asked(call, request, server_id: int, *, of: str = "", **kwargs):
    """Ask for the change as the customer; `of` names the server's snapshots or backups the
    path names one of (another server's, even the customer's own, is 404 here)."""
    instance = selectors.server_of(request.user, server_id)
    if of and not getattr(instance, of).filter(pk=kwargs[f"{of[:-1]}_id"]).exists():
        raise Http404
    try:
        operation = call(instance=instance, actor=CUSTOMER, actor_user=request.user, **kwargs)
    except services.OperationInProgress as error:
        raise conflict(str(error), code="busy") from None
    except services.InstanceError as error:
        raise refused(str(error)) from None
    return Status(202, presenters.operation(operation))


@router.get(
    "/servers/{server_id}/snapshots",
    response={200: schemas.Snapshots, 404: schemas.Error},
    auth=auth.read,
)
def snapshot_list(request, server_id: int):
    """The server's snapshots on its host, newest first (up to the plan's number)."""
    instance = selectors.server_of(request.user, server_id)
    rows = snapshots.snapshots_of(instance)
    return {
        "allowed": instance.snapshots_max,
        "items": [
            {"id": row.pk, "label": row.label, "state": row.state, "created_at": row.created_at}
            for row in rows
        ],
    }


@router.post(
    "/servers/{server_id}/snapshots",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def snapshot_take(request, server_id: int, payload: schemas.SnapshotIn):
    return _asked(snapshots.snapshot_take, request, server_id, label=payload.label)


@router.post(
    "/servers/{server_id}/snapshots/{snapshot_id}/rollback",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def snapshot_rollback(request, server_id: int, snapshot_id: int):
    """Put the server back to the snapshot: everything written since is lost."""
    return _asked(
        snapshots.snapshot_rollback, request, server_id, of="snapshots", snapshot_id=snapshot_id
    )


@router.delete(
    "/servers/{server_id}/snapshots/{snapshot_id}",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def snapshot_delete(request, server_id: int, snapshot_id: int):
    return _asked(
        snapshots.snapshot_delete, request, server_id, of="snapshots", snapshot_id=snapshot_id
    )


@router.get(
    "/servers/{server_id}/backups",
    response={200: schemas.Backups, 404: schemas.Error},
    auth=auth.read,
)
def backup_list(request, server_id: int):
    """The server's backups, newest first: made, being made, and failed attempts."""
    instance = selectors.server_of(request.user, server_id)
    panel = backups.backups_panel(instance, None)
    rows = backups.backups_of(instance)
    return {
        "kept": instance.backups_kept,
        "offered": bool(panel and panel.offered),
        "window": panel.window if panel else "",
        "items": [
            {
                "id": row.pk,
                "trigger": row.trigger,
                "state": row.state,
                "size_bytes": row.size_bytes,
                "created_at": row.created_at,
                "finished_at": row.finished_at,
            }
            for row in rows
        ],
    }


@router.post(
    "/servers/{server_id}/backups",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def backup_now(request, server_id: int):
    """Back up now (the oldest beyond the plan's number go once it is made)."""
    return _asked(backups.backup_now, request, server_id)


@router.post(
    "/servers/{server_id}/backups/{backup_id}/restore",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def backup_restore(request, server_id: int, backup_id: int):
    """Replace the server's disks by the backup: everything written since is lost."""
    return _asked(backups.backup_restore, request, server_id, of="backups", backup_id=backup_id)
