"""Customer pages run a fixed, small number of SQL queries: the same with 1 server as with 50."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instances.models import Instance, InstanceTraffic
from instances.state import event_record
from tests.factories import make_instance, make_location_with_capacity, make_operation

MOST = 12
PAGES = [
    ("instances:list", False, {}),
    ("instances:detail", True, {}),
    ("instances:detail", True, {"HX-Request": "true"}),
    ("instances:graphs", True, {"HX-Request": "true"}),
    ("instances:graphs", True, {}),
    ("instances:reinstall", True, {}),
    ("instances:password", True, {}),
    ("instances:firewall", True, {}),
    ("billing:overview", False, {}),
    ("accounts:overview", False, {}),
    ("accounts:ssh_keys", False, {}),
]


def servers(owner, location, count: int) -> Instance:
    from django.utils import timezone

    now = timezone.now()
    first = None
    for n in range(count):
        server = make_instance(owner, location, hostname=f"s{n}", status=Instance.Status.RUNNING)
        Instance.objects.filter(pk=server.pk).update(
            vmid=1000 + server.pk, cluster=location.clusters.get()
        )
        make_operation(server, state="succeeded", step="ready")
        make_operation(server, kind="reboot", state="running", step="reboot")
        for text in ("Server ordered.", "Your server is ready.", "Reboot requested."):
            event_record(server, message=text)
        InstanceTraffic.objects.create(
            instance=server, period_start=now, period_end=now, bytes_in=1, bytes_out=2
        )
        first = first or server
    return first


def queries(client, name, with_server, headers, server) -> int:
    url = reverse(name, args=[server.pk] if with_server else [])
    client.get(url, headers=headers)  # the same state of the cache for every count
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code in {200, 286}, (name, response.status_code)
    return len(captured)


@pytest.mark.parametrize(("name", "with_server", "headers"), PAGES)
def test_a_page_runs_the_same_few_queries_for_1_or_50_servers(
    client, alice, db, name, with_server, headers
):
    location = make_location_with_capacity(addresses=5)
    client.force_login(alice)
    one = servers(alice, location, 1)
    with_one = queries(client, name, with_server, headers, one)
    servers(alice, location, 49)
    with_fifty = queries(client, name, with_server, headers, one)
    assert with_one == with_fifty, f"{name}: {with_one} queries with 1 server, {with_fifty} with 50"
    assert with_fifty <= MOST, f"{name}: {with_fifty} queries"
