"""What can be ordered: plans, locations, images."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from ninja import Query, Router

from api import auth, presenters, schemas
from billing import selectors as billing_selectors
from billing.models import Plan
from instances import selectors as instance_selectors
from instances.models import OSImage

router = Router(tags=["catalogue"], auth=auth.read)


@router.get("/plans", response=list[schemas.Plan], summary="Plans on sale")
def plans(request):
    return [presenters.plan(plan) for plan in Plan.objects.on_sale()]


@router.get(
    "/plans/{slug}", response=schemas.PlanDetail, summary="A plan and where it can be built now"
)
def plan(request, slug: str):
    row = get_object_or_404(Plan.objects.on_sale(), slug=slug)
    where = [
        {"location": slot.location.code, "available": slot.available}
        for slot in billing_selectors.availability(row)
    ]
    return presenters.plan(row) | {"availability": where}


@router.get("/locations", response=list[schemas.Location], summary="Locations")
def locations(request):
    return [presenters.location(row) for row in instance_selectors.orderable_locations()]


@router.get(
    "/images",
    response={200: list[schemas.Image], 404: schemas.Error},
    summary="Operating system images",
)
def images(request, location: str | None = Query(None, description="Only those offered here.")):
    if location:
        place = get_object_or_404(instance_selectors.orderable_locations(), code=location)
        rows = instance_selectors.images_for_location(place)
    else:
        rows = OSImage.objects.filter(active=True).order_by("display_order", "name")
    return [presenters.image(row) for row in rows]
