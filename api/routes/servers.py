"""Servers: list, read, order, and what can be asked of a running one.

Every change goes through the same services as the server page (instances/services.py,
billing/orders.py, billing/upgrades.py): the rules live there, once.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from api import auth, presenters, schemas
from api.errors import APIError, conflict, refused
from api.paging import Paging, page_of, paginate
from billing import orders, saved_card, stripe_client, upgrades
from billing.models import Plan
from instances import selectors, services, usage
from instances.models import InstanceEvent, InstanceOperation, OSImage

router = Router(tags=["servers"])
CUSTOMER = InstanceEvent.Actor.CUSTOMER
ERRORS = {404: schemas.Error, 409: schemas.Error, 422: schemas.Error}
# The columns the list shows (servers_of reads only these).
LISTED = (
    *("hostname", "plan_name", "family", "status", "created_at", "missing_since"),
    *("location__code", "os_image__slug", "ipv4__address"),
)


def _server(request, server_id: int):
    return selectors.server_of(request.user, server_id)


def _requested(call, instance, *, field: str | None = None, **kwargs):
    """Ask for an operation as the customer; 202 with it, or why not."""
    try:
        operation = call(instance=instance, actor=CUSTOMER, actor_user=instance.owner, **kwargs)
    except services.OperationInProgress as error:
        raise conflict(str(error), code="busy") from None
    except services.TransitionConflict as error:
        raise conflict(str(error)) from None
    except services.InstanceError as error:
        raise refused(str(error), field=field) from None
    return Status(202, presenters.operation(operation))


@router.get("/servers", response=page_of(schemas.ServerSummary), auth=auth.read)
def server_list(request, paging: Query[Paging]):
    """Your servers (removed ones are left out), newest first."""
    rows = selectors.servers_of(request.user).only(*LISTED).order_by("-created_at", "-id")
    return paginate(rows, paging, presenters.server_summary)


@router.get(
    "/servers/{server_id}", response={200: schemas.Server, 404: schemas.Error}, auth=auth.read
)
def server_get(request, server_id: int):
    return presenters.server(_server(request, server_id))


@router.post(
    "/servers",
    response={201: schemas.OrderCreated, 422: schemas.Error},
    auth=auth.write,
    summary="Order a server",
)
def server_create(request, payload: schemas.ServerCreateIn):
    """Places an order (the same checks and prices as the order page). With
    `payment=checkout` the answer carries the Stripe Checkout page to pay on; with
    `payment=saved_card` the card Stripe keeps for you (the one you paid with before) is charged
    at once: `order.status` is then `paid`, or `payment_error` says why not (declined, the bank
    wants to confirm it: pay on Checkout instead). The server is built once the payment is in:
    poll `GET /orders/{id}` until `server_id` is set."""
    plan = Plan.objects.on_sale().filter(slug=payload.plan).first()
    location = selectors.orderable_locations().filter(code=payload.location).first()
    image = OSImage.objects.filter(slug=payload.image, active=True).first()
    try:
        with transaction.atomic():
            order = orders.order_place(
                owner=request.user,
                plan_id=plan.pk if plan else 0,
                location_id=location.pk if location else 0,
                os_image_id=image.pk if image else 0,
                hostname=payload.hostname,
                ssh_key_ids=payload.ssh_keys,
                generate_password=payload.generate_password,
            )
    except orders.OrderError as error:
        field = {"os_image": "image"}.get(error.field, error.field)
        raise refused(str(error), field=field) from None
    checkout_url, payment_error = None, None
    try:
        if payload.payment == "saved_card":
            saved_card.order_pay_with_saved_card(order)
        else:
            checkout_url = orders.checkout_url(order)
    except (orders.OrderError, stripe_client.StripeError) as error:
        # The order stands (payable later with POST /orders/{id}/checkout or
        # /pay-with-saved-card); a retry of this request must not place a second one, so this
        # is not an error status.
        payment_error = str(error)
    order.refresh_from_db()
    return Status(
        201,
        {
            "order": presenters.order(order),
            "checkout_url": checkout_url,
            "payment_error": payment_error,
        },
    )


@router.post(
    "/servers/{server_id}/power", response={202: schemas.Operation, **ERRORS}, auth=auth.write
)
def server_power(request, server_id: int, payload: schemas.PowerIn):
    """Start, shut down (ACPI), stop (hard), reboot or reset the server."""
    return _requested(services.instance_power, _server(request, server_id), action=payload.action)


@router.post(
    "/servers/{server_id}/rename", response={202: schemas.Operation, **ERRORS}, auth=auth.write
)
def server_rename(request, server_id: int, payload: schemas.RenameIn):
    return _requested(
        services.instance_rename,
        _server(request, server_id),
        field="hostname",
        hostname=payload.hostname,
    )


@router.post(
    "/servers/{server_id}/reinstall", response={202: schemas.Operation, **ERRORS}, auth=auth.write
)
def server_reinstall(request, server_id: int, payload: schemas.ReinstallIn):
    """Wipes the disk and installs the image (same address and size). A generated password is
    shown once: `POST /servers/{id}/password/reveal` after the operation succeeded."""
    instance = _server(request, server_id)
    image = OSImage.objects.filter(slug=payload.image).first()
    if image is None:
        raise refused(f"There is no image {payload.image!r}.", field="image")
    return _requested(
        services.instance_reinstall,
        instance,
        image=image,
        ssh_key_ids=payload.ssh_keys,
        generate_password=payload.generate_password,
        confirm_hostname=payload.confirm_hostname,
    )


@router.post(
    "/servers/{server_id}/password-reset",
    response={202: schemas.Operation, **ERRORS},
    auth=auth.write,
)
def server_password_reset(request, server_id: int, payload: schemas.PasswordResetIn):
    """A new generated password for the login user; read it once with …/password/reveal."""
    return _requested(
        services.instance_password_reset,
        _server(request, server_id),
        allow_reboot=payload.allow_reboot,
    )


@router.post(
    "/servers/{server_id}/password/reveal",
    response={200: schemas.Password, 404: schemas.Error, 410: schemas.Error},
    auth=auth.write,
)
def server_password_reveal(request, server_id: int):
    """The generated root password, once: it is forgotten as it is read."""
    password = services.password_reveal(instance=_server(request, server_id))
    if password is None:
        raise APIError(410, "password_gone", "The password was already shown once and is not kept.")
    return {"password": password}


@router.post(
    "/servers/{server_id}/reboot-plan",
    response={200: schemas.RebootPlan, **ERRORS},
    auth=auth.write,
)
def server_reboot_plan(request, server_id: int, payload: schemas.RebootPlanIn):
    """Reboot at a time you pick (what waits for a reboot applies then); null cancels."""
    instance = _server(request, server_id)
    try:
        services.reboot_plan(instance=instance, at=payload.at, actor_user=request.user)
    except services.InstanceError as error:
        raise refused(str(error), field="at") from None
    instance.refresh_from_db(fields=["reboot_at"])
    return {"reboot_at": instance.reboot_at}


@router.get(
    "/servers/{server_id}/metrics",
    response={200: schemas.Metrics, 202: schemas.Metrics, 404: schemas.Error},
    auth=auth.read,
)
def server_metrics(
    request, response: HttpResponse, server_id: int, timeframe: schemas.Timeframe = "hour"
):
    """CPU, memory, network and disk samples from Proxmox. 202 while a worker fetches them:
    ask again after Retry-After seconds."""
    instance = _server(request, server_id)
    samples = usage.cached(instance.pk, timeframe)
    if samples is None:
        if instance.vmid and usage.should_fetch(instance.pk, timeframe):
            services.usage_refresh(instance=instance, timeframe=timeframe)
        if not instance.vmid:  # not built (yet): nothing to show
            return {"timeframe": timeframe, "state": "ready", "samples": []}
        response["Retry-After"] = "2"
        return Status(202, {"timeframe": timeframe, "state": "loading", "samples": []})
    keep = schemas.MetricsSample.model_fields
    rows = [{k: v for k, v in sample.items() if k in keep} for sample in samples]
    return {"timeframe": timeframe, "state": "ready", "samples": rows}


@router.get(
    "/servers/{server_id}/operations",
    response={200: page_of(schemas.Operation), 404: schemas.Error},
    auth=auth.read,
)
def server_operations(request, server_id: int, paging: Query[Paging]):
    """The server's operations, newest first."""
    instance = _server(request, server_id)
    rows = instance.operations.order_by("-created_at", "-id")
    return paginate(rows, paging, presenters.operation)


@router.get(
    "/operations/{operation_id}",
    response={200: schemas.Operation, 404: schemas.Error},
    auth=auth.read,
    tags=["operations"],
)
def operation_get(request, operation_id: int):
    """An operation's progress: poll until `state` is succeeded or failed."""
    row = get_object_or_404(
        InstanceOperation.objects.filter(instance__owner=request.user), pk=operation_id
    )
    return presenters.operation(row)


# --- Upgrade VPS ------------------------------------------------------------------------------


def _upgrade_error(error: upgrades.UpgradeError) -> APIError:
    return refused(str(error))


@router.get(
    "/servers/{server_id}/upgrades",
    response={200: list[schemas.UpgradeOption], **ERRORS},
    auth=auth.read,
    tags=["upgrades"],
)
def upgrade_options(request, server_id: int):
    """Every bigger size with the exact prorated amount due now (a quote valid 15 minutes),
    and every smaller size (from the next period)."""
    instance = _server(request, server_id)
    try:
        options = upgrades.upgrade_options(request.user, instance)
    except upgrades.UpgradeError as error:
        raise _upgrade_error(error) from None
    return [
        {
            "plan": option.plan.slug,
            "kind": option.kind,
            "changes": option.changes,
            "live": option.live,
            "monthly_total_cents": option.monthly.monthly_gross,
            "due_now_cents": option.due_now_cents,
            "quote": option.token or None,
            "refused": option.refused,
        }
        for option in options
    ]


@router.post(
    "/servers/{server_id}/upgrade",
    response={202: schemas.Upgrade, **ERRORS},
    auth=auth.write,
    tags=["upgrades"],
)
def upgrade_apply(request, server_id: int, payload: schemas.UpgradeIn):
    """Charge the quoted amount and grow the server once Stripe has the money. If the card
    needs confirming, `state` is awaiting_payment and `pay_url` is where to pay."""
    instance = _server(request, server_id)
    try:
        upgrade = upgrades.upgrade_confirm(
            user=request.user, instance=instance, token=payload.quote, keep_disk=payload.keep_disk
        )
    except upgrades.UpgradeError as error:
        raise refused(str(error), field="quote") from None
    return Status(202, presenters.upgrade(upgrade))


@router.post(
    "/servers/{server_id}/downgrade",
    response={202: schemas.Upgrade, **ERRORS},
    auth=auth.write,
    tags=["upgrades"],
)
def downgrade_schedule(request, server_id: int, payload: schemas.DowngradeIn):
    """A smaller size from the next period (nothing is refunded now; disks never shrink)."""
    instance = _server(request, server_id)
    plan = Plan.objects.filter(slug=payload.plan).first()
    try:
        upgrade = upgrades.downgrade_schedule(
            user=request.user, instance=instance, plan_id=plan.pk if plan else 0
        )
    except upgrades.UpgradeError as error:
        raise refused(str(error), field="plan") from None
    return Status(202, presenters.upgrade(upgrade))
