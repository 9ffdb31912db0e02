"""Who reaches the Exports page: finance does; support, customers and the anonymous do not;
finance cannot act on servers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PAGE = "admin:billing_exportrun_changelist"


def staff_in(group: str):
    user = UserFactory(email=f"{group}@example.com", is_staff=True, totp=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def finance(db):
    return staff_in("finance")


@pytest.fixture
def support(db):
    return staff_in("support")


def test_finance_reaches_the_exports_page(client, finance):
    client.force_login(finance)
    page = client.get(reverse(PAGE))
    assert page.status_code == 200
    assert b"Finance exports" in page.content and b"Payout reconciliation" in page.content
    index = client.get(reverse("admin:index")).content.decode()
    assert reverse(PAGE) in index


def test_support_cannot_export(client, support):
    client.force_login(support)
    assert client.get(reverse(PAGE)).status_code == 403
    assert client.post(reverse(PAGE), {"report": "invoices"}).status_code == 403
    assert client.get(reverse("admin:billing_exportrun_download", args=[1])).status_code == 403
    assert reverse(PAGE) not in client.get(reverse("admin:index")).content.decode()


def test_customers_get_the_login_page(client, alice):
    client.force_login(alice)
    for url in (reverse(PAGE), reverse("admin:billing_exportrun_download", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


def test_finance_cannot_run_server_actions(client, finance, alice):
    from tests.factories import make_instance, make_location_with_capacity

    instance = make_instance(alice, make_location_with_capacity(), status="running")
    client.force_login(finance)
    url = reverse("admin:instances_operate", args=[instance.pk])
    assert client.post(url, {"action": "stop"}).status_code == 403
    assert client.get(reverse("admin:instances_instance_changelist")).status_code == 403


def test_neither_group_has_the_others_permissions():
    finance = set(Group.objects.get(name="finance").permissions.values_list("codename", flat=True))
    support = set(Group.objects.get(name="support").permissions.values_list("codename", flat=True))
    assert "export_finance" in finance and "change_instance" not in finance
    assert "change_instance" in support and "export_finance" not in support
    # Support reads the ledger on the customer page; it never exports it.
    assert "view_exportrun" not in support
