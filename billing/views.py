from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.services import profile_is_complete
from billing import dunning, orders, saved_card, selectors, stripe_client, upgrades
from billing.events import EventRefused, event_store
from billing.forms import OrderForm
from billing.models import Order, Plan, Upgrade
from billing.tasks import stripe_event_queue
from instances import selectors as instance_selectors

logger = logging.getLogger(__name__)


@require_GET
def plans(request):
    return render(request, "billing/plans.html", {"families": selectors.catalog()})


def _profile_first(request):
    messages.info(request, "Before your first order, tell us who to invoice.")
    return redirect(f"{reverse('accounts:profile')}?next={request.get_full_path()}")


@login_required
@require_http_methods(["GET", "POST"])
def order_new(request):
    if not profile_is_complete(request.user):
        return _profile_first(request)
    initial = {}
    if slug := request.GET.get("plan"):
        initial["plan"] = Plan.objects.on_sale().filter(slug=slug).first()
    if initial.get("plan"):  # preselect where the plan can be built now
        where = [
            slot.location for slot in selectors.availability(initial["plan"]) if slot.available
        ]
        initial["location"] = where[0] if where else None
    if family := request.GET.get("family"):
        initial["family"] = family
    if code := request.GET.get("location"):
        initial["location"] = instance_selectors.orderable_locations().filter(code=code).first()
    form = OrderForm(request.POST or None, owner=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                order = orders.order_place(
                    owner=request.user,
                    plan_id=data["plan"].pk,
                    location_id=data["location"].pk,
                    os_image_id=data["os_image"].pk,
                    hostname=data["hostname"],
                    ssh_key_ids=[key.pk for key in data["ssh_keys"]],
                    generate_password=data["generate_password"],
                )
        except orders.OrderError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
        else:
            if _saved_card(request, order):  # the order page offers it next to Checkout
                return redirect("billing:order", order.pk)
            return _to_checkout(request, order)
    plan = _chosen_plan(form)
    if not form.is_bound and plan and not form.initial.get("location"):
        # Where the plan can be built now, so "Continue" works without a detour.
        where = [slot.location for slot in selectors.availability(plan) if slot.available]
        form.initial["location"] = where[0] if where else None
    return render(
        request,
        "billing/order_form.html",
        {
            "form": form,
            "plan": plan,
            "quote": orders.quote_for(request.user, plan) if plan else None,
            "availability": selectors.availability(plan) if plan else [],
            **selectors.plan_cards(request.user, plan, family=request.GET.get("family")),
        },
    )


def _chosen_plan(form: OrderForm) -> Plan | None:
    queryset = form.fields["plan"].queryset
    raw = form.data.get("plan") if form.is_bound else None
    if raw and str(raw).isdigit():
        return queryset.filter(pk=raw).first()
    initial = form.initial.get("plan")
    if initial is None and (family := form.initial.get("family")):
        initial = queryset.filter(family=family).first()
    if initial is not None:
        form.initial["plan"] = initial
    return initial if initial is not None else queryset.first()


@login_required
@require_GET
def order_summary(request):
    """The order form's price box for another plan (htmx swaps it in as the plan changes)."""
    if not profile_is_complete(request.user):
        return HttpResponse(status=204)
    plan = Plan.objects.on_sale().filter(pk=request.GET.get("plan") or 0).first()
    if plan is None:
        return HttpResponse(status=204)
    return render(
        request,
        "billing/order_form.html#summary",
        {
            "plan": plan,
            "quote": orders.quote_for(request.user, plan),
            "availability": selectors.availability(plan),
        },
    )


def _to_checkout(request, order: Order):
    try:
        url = orders.checkout_url(order)
    except (orders.OrderError, stripe_client.StripeError) as error:
        messages.error(request, str(error))
        return redirect("billing:order", order.pk)
    return redirect(url)


@login_required
@require_GET
@never_cache
def order_detail(request, order_id: int):
    order = orders.order_of(request.user, order_id)
    if order.instance_id and request.GET.get("paid") == "1" and not request.htmx:
        return redirect("instances:detail", order.instance_id)  # back from Stripe, already paid
    if request.htmx and order.instance_id:
        # The page was waiting for the payment: it moves on to the server being built.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("instances:detail", args=[order.instance_id])
        return response
    just_paid = request.GET.get("paid") == "1" and _paid_on_stripe(order)
    return render(
        request,
        "billing/order_detail.html",
        {"order": order, "just_paid": just_paid, "saved_card": _saved_card(request, order)},
    )


def _paid_on_stripe(order: Order) -> bool:
    """Back from Checkout or paid with the saved card: the order page waits for the webhook
    only if Stripe says it is paid (a hand-typed ?paid=1 does not hide the Pay button)."""
    if not order.is_payable or saved_card.charged(order):
        return True
    try:
        return orders.checkout_complete(order)
    except stripe_client.StripeError:
        return True  # cannot tell now; the page keeps looking


def _saved_card(request, order: Order) -> saved_card.SavedCard | None:
    """The card the second Pay button offers (read from Stripe at most once a minute, and
    never for a customer without a Stripe customer yet)."""
    if not order.is_payable or request.GET.get("paid") == "1":
        return None
    try:
        return saved_card.saved_card(request.user, cached=True)
    except stripe_client.StripeError:
        return None  # Checkout still pays it


@login_required
@require_POST
def order_pay_saved(request, order_id: int):
    order = orders.order_of(request.user, order_id)
    try:
        saved_card.order_pay_with_saved_card(
            order, payment_method_id=request.POST.get("payment_method") or None
        )
    except (orders.OrderError, stripe_client.StripeError) as error:
        messages.error(request, str(error))
        return redirect("billing:order", order.pk)
    return redirect(reverse("billing:order", args=[order.pk]) + "?paid=1")


@login_required
@require_POST
def order_pay(request, order_id: int):
    return _to_checkout(request, orders.order_of(request.user, order_id))


@login_required
@require_POST
def order_cancel(request, order_id: int):
    order = orders.order_of(request.user, order_id)
    try:
        orders.order_cancel(order)
    except (orders.OrderError, stripe_client.StripeError) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Order {order.pk} is cancelled; nothing was charged.")
    return redirect("billing:order", order.pk)


@login_required
@require_POST
@never_cache
def order_password(request, order_id: int):
    order = orders.order_of(request.user, order_id)
    password = orders.root_password_reveal(order)
    if password is None:
        messages.info(request, "The root password was already shown once and is not kept.")
        return redirect("billing:order", order.pk)
    return render(request, "billing/order_password.html", {"order": order, "password": password})


@login_required
@require_GET
def overview(request):
    return render(request, "billing/overview.html", selectors.billing_page(request.user))


@login_required
@require_POST
def customer_portal(request):
    account = selectors.account_of(request.user)
    if account is None:
        messages.info(request, "Payment details appear here after your first order.")
        return redirect("billing:overview")
    try:
        session = stripe_client.billing_portal_session_create(
            customer_id=account.stripe_customer_id,
            return_url=request.build_absolute_uri(reverse("billing:overview")),
        )
    except stripe_client.StripeError as error:
        messages.error(request, str(error))
        return redirect("billing:overview")
    return redirect(session["url"])


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Verify, store, answer: processing happens after commit in a Celery task."""
    try:
        event = stripe_client.event_from_webhook(
            request.body, request.headers.get("Stripe-Signature", "")
        )
    except stripe_client.SignatureError as error:
        logger.warning("stripe webhook refused: %s", error)
        return HttpResponseBadRequest("invalid signature")
    try:
        with transaction.atomic():
            row, created = event_store(event)
            if row.processed_at is None:
                transaction.on_commit(lambda: stripe_event_queue(row.pk))
    except EventRefused as error:
        logger.warning("stripe webhook refused: %s", error)
        return HttpResponseBadRequest("not a Stripe event")
    return HttpResponse("stored" if created else "duplicate", content_type="text/plain")


# --- Upgrade VPS (and smaller sizes) for one of the customer's servers -----------------------


@login_required
@require_GET
@never_cache
def server_upgrade(request, instance_id: int):
    """The sizes a server may move to, with the amount due now (Stripe's preview)."""
    instance = instance_selectors.server_of(request.user, instance_id)
    try:
        subscription = upgrades.subscription_for(request.user, instance)
    except upgrades.UpgradeError as error:
        messages.info(request, str(error))
        return redirect("instances:detail", instance.pk)
    live = upgrades.live_upgrade(subscription)
    options, unavailable = [], ""
    if live is None and subscription.status in upgrades.PAYING:
        try:
            options = upgrades.upgrade_options(request.user, instance)
        except stripe_client.StripeError as error:
            unavailable = str(error)
    return render(
        request,
        "billing/upgrade.html",
        {
            "instance": instance,
            "subscription": subscription,
            "plan": upgrades.current_plan(subscription),
            "live": live,
            "bigger": [option for option in options if option.kind == "upgrade"],
            "smaller": [option for option in options if option.kind == "downgrade"],
            "unavailable": unavailable,
            "last": subscription.upgrades.exclude(state__in=Upgrade.LIVE).first(),
        },
    )


@login_required
@require_POST
def server_upgrade_confirm(request, instance_id: int):
    instance = instance_selectors.server_of(request.user, instance_id)
    try:
        upgrade = upgrades.upgrade_confirm(
            user=request.user,
            instance=instance,
            token=request.POST.get("quote", ""),
            keep_disk=request.POST.get("keep_disk") == "1",
        )
    except upgrades.UpgradeError as error:
        messages.error(request, str(error))
        return redirect("billing:upgrade", instance.pk)
    if upgrade.state in (Upgrade.State.PAID, Upgrade.State.APPLIED):
        messages.success(
            request, f"Paid. {instance.hostname} is being upgraded to {upgrade.to_plan}."
        )
        return redirect("instances:detail", instance.pk)
    return redirect("billing:upgrade", instance.pk)


@login_required
@require_POST
def server_downgrade(request, instance_id: int):
    instance = instance_selectors.server_of(request.user, instance_id)
    try:
        if request.POST.get("cancel"):
            upgrades.downgrade_cancel(user=request.user, instance=instance)
            messages.success(request, f"{instance.hostname} keeps its size.")
        else:
            plan_id = int(request.POST.get("plan") or 0)
            upgrade = upgrades.downgrade_schedule(
                user=request.user, instance=instance, plan_id=plan_id
            )
            messages.success(
                request,
                f"{instance.hostname} moves to {upgrade.to_plan} on "
                f"{upgrade.effective_at:%Y-%m-%d}, when the next period starts.",
            )
    except (upgrades.UpgradeError, stripe_client.StripeError, ValueError) as error:
        messages.error(request, str(error) or "Choose one of the sizes offered.")
    return redirect("billing:upgrade", instance.pk)


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def server_cancel(request, instance_id: int):
    """Cancel a server: at the end of the paid period (undo until then) or now, no refund."""
    instance = instance_selectors.server_of(request.user, instance_id)
    try:
        subscription = upgrades.subscription_for(request.user, instance)
    except upgrades.UpgradeError as error:
        messages.info(request, str(error))
        return redirect("instances:detail", instance.pk)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "undo":
                dunning.cancel_at_period_end(
                    subscription=subscription, user=request.user, undo=True
                )
                messages.success(
                    request, f"{instance.hostname} keeps running; nothing is cancelled."
                )
            elif action == "period_end":
                dunning.cancel_at_period_end(subscription=subscription, user=request.user)
                messages.success(request, f"{instance.hostname} is cancelled for the period's end.")
            elif action == "now":
                if request.POST.get("confirm_hostname", "").strip() != instance.hostname:
                    raise dunning.CancelError(f"Type {instance.hostname} exactly to confirm.")
                dunning.cancel_now(subscription=subscription, user=request.user)
                messages.success(request, f"{instance.hostname} is cancelled and being deleted.")
                return redirect("instances:detail", instance.pk)
            else:
                raise dunning.CancelError("Choose when to cancel.")
        except (dunning.CancelError, stripe_client.StripeError) as error:
            messages.error(request, str(error))
        return redirect("billing:cancel", instance.pk)
    subscription.refresh_from_db()
    return render(
        request, "billing/cancel.html", {"instance": instance, "subscription": subscription}
    )
