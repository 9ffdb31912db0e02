"""What every page of a signed-in customer shows about money: a payment that failed."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from billing.models import Subscription

UNSETTLED = ("past_due", "unpaid")


def payment_notice(request) -> dict:
    """`payment_notice`: a subscription of the customer's whose payment failed (or None), read
    only when a page shows it (base.html does, for customers)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.is_staff:
        return {}

    def unsettled():
        return (
            Subscription.objects.filter(owner=user, status__in=UNSETTLED)
            .only("pk", "status", "suspended_at")
            .first()
        )

    return {"payment_notice": SimpleLazyObject(unsettled)}
