"""Back-office fixtures: staff in each role, and a customer with servers and money to look at."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from billing.models import BillingAccount, BillingEvent, Invoice, LedgerEntry, Subscription
from instances.models import IPAddress, Node
from instances.state import event_record
from tests.factories import (
    UserFactory,
    make_instance,
    make_location_with_capacity,
    make_operation,
    make_order,
)


def _staff_in(group: str):
    user = UserFactory(email=f"{group}@example.com", is_staff=True, totp=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def support(db):
    return _staff_in("support")


@pytest.fixture
def finance(db):
    return _staff_in("finance")


@pytest.fixture
def location(db):
    return make_location_with_capacity()


@pytest.fixture
def placed_server(location):
    """`placed_server(owner, hostname, **spec)`: a running server on the first node, with a
    VMID and the next free address of the location."""
    node = Node.objects.filter(cluster__location=location).order_by("pk").first()

    def make(owner, hostname="web1", *, status="running", node=node, **spec):
        server = make_instance(owner, location, hostname=hostname, status=status, **spec)
        address = IPAddress.objects.filter(pool__location=location, state="free").first()
        IPAddress.objects.filter(pk=address.pk).update(state="assigned")
        server.node, server.cluster, server.ipv4 = node, node.cluster, address
        server.vmid = 1000 + server.pk
        server.save()
        return server

    return make


@pytest.fixture
def customer_with(placed_server, location):
    """`customer_with(customer, n)`: n of everything on the customer page: servers (each with
    a finished build, a running reboot and three timeline entries), paid orders with their
    subscriptions, invoices, ledger rows and billing events."""

    def fill(customer, n: int):
        now = timezone.now()
        BillingAccount.objects.get_or_create(
            user=customer, defaults={"stripe_customer_id": f"cus_{customer.pk}test"}
        )
        start = Invoice.objects.filter(owner=customer).count()
        for i in range(start, start + n):
            server = placed_server(customer, f"{customer.username}-s{i}")
            make_operation(server, state="succeeded", step="ready")
            make_operation(server, kind="reboot", state="running", step="reboot")
            for text in ("Server ordered.", "Your server is ready.", "Reboot requested."):
                event_record(server, message=text)
            order = make_order(customer, location, hostname=server.hostname)
            order.status, order.instance = "paid", server
            order.stripe_subscription_id = f"sub_{customer.pk}_{i}"
            order.save()
            subscription = Subscription.objects.create(
                order=order,
                owner=customer,
                plan=order.plan,
                stripe_subscription_id=order.stripe_subscription_id,
                status="active",
                current_period_end=now + timedelta(days=30),
            )
            BillingEvent.objects.create(
                subscription=subscription, old="incomplete", new="active", reason="Paid."
            )
            invoice = Invoice.objects.create(
                owner=customer,
                stripe_invoice_id=f"in_{customer.pk}_{i}",
                stripe_subscription_id=subscription.stripe_subscription_id,
                number=f"INV-{customer.pk}-{i:04d}",
                status="paid",
                currency="EUR",
                subtotal_cents=499,
                tax_cents=95,
                total_cents=594,
                amount_paid_cents=594,
                issued_at=now - timedelta(days=i),
            )
            LedgerEntry.objects.create(
                kind=LedgerEntry.Kind.INVOICE_PAID,
                occurred_at=now - timedelta(days=i),
                customer=customer,
                currency="EUR",
                net_cents=499,
                vat_cents=95,
                gross_cents=594,
                country="DE",
                vat_treatment="domestic",
                stripe_object_id=invoice.stripe_invoice_id,
                document_number=invoice.number,
            )
        return customer

    return fill


# A customer who paid for a server on the Stripe sandbox (for cancellations and credit notes).
from tests.billing.conftest import demo_sandbox, german, paid_server, settle  # noqa: E402, F401
