"""Orders: what was ordered, paying for it, cancelling it before paying."""

from __future__ import annotations

from ninja import Query, Router

from api import auth, presenters, schemas
from api.errors import refused
from api.paging import Paging, page_of, paginate
from billing import orders, saved_card

router = Router(tags=["orders"])


@router.get("/orders", response=page_of(schemas.Order), auth=auth.read)
def order_list(request, paging: Query[Paging]):
    rows = orders.orders_of(request.user).select_related("os_image").order_by("-created_at", "-id")
    return paginate(rows, paging, presenters.order)


@router.get("/orders/{order_id}", response={200: schemas.Order, 404: schemas.Error}, auth=auth.read)
def order_get(request, order_id: int):
    """Poll after paying: `server_id` appears once Stripe has the payment."""
    return presenters.order(orders.order_of(request.user, order_id))


@router.post(
    "/orders/{order_id}/checkout",
    response={200: schemas.Checkout, 404: schemas.Error, 422: schemas.Error, 503: schemas.Error},
    auth=auth.write,
)
def order_checkout(request, order_id: int):
    """The Stripe Checkout page to pay the order on (the open one again, or a new one)."""
    order = orders.order_of(request.user, order_id)
    try:
        return {"checkout_url": orders.checkout_url(order)}
    except orders.OrderError as error:
        raise refused(str(error)) from None


@router.get("/saved-card", response={200: schemas.SavedCard, 503: schemas.Error}, auth=auth.read)
def saved_card_get(request):
    """The card `payment=saved_card` would charge (Stripe's invoice default card, else the
    newest unexpired one attached to you), or `card: null` before your first card payment."""
    card = saved_card.saved_card(request.user, cached=True)
    if card is None:
        return {"card": None}
    return {
        "card": {
            "label": card.label,
            "brand": card.brand,
            "last4": card.last4,
            "expiry": card.expiry,
        }
    }


@router.post(
    "/orders/{order_id}/pay-with-saved-card",
    response={200: schemas.Order, 404: schemas.Error, 422: schemas.Error, 503: schemas.Error},
    auth=auth.write,
)
def order_pay_saved_card(request, order_id: int):
    """Charge the order to the card Stripe keeps for you, at once (as the order page's "Pay with
    Visa •••• 4242"). A declined card, or one the bank wants to confirm, is a 422 and leaves the
    order payable (on Checkout too); trying again after an answer that never came charges once."""
    order = orders.order_of(request.user, order_id)
    try:
        saved_card.order_pay_with_saved_card(order)
    except orders.OrderError as error:
        raise refused(str(error)) from None
    return presenters.order(orders.order_of(request.user, order_id))


@router.post(
    "/orders/{order_id}/cancel",
    response={200: schemas.Order, 404: schemas.Error, 422: schemas.Error, 503: schemas.Error},
    auth=auth.write,
)
def order_cancel(request, order_id: int):
    """Cancel an order that is not paid yet (its Checkout page is closed first)."""
    order = orders.order_of(request.user, order_id)
    try:
        orders.order_cancel(order)
    except orders.OrderError as error:
        raise refused(str(error)) from None
    return presenters.order(orders.order_of(request.user, order_id))
