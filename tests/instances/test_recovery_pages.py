"""The server page's Snapshots and Backups cards: what they list, the confirmations that name
the snapshot or backup and the server and say what is lost, and the forms behind them."""

from __future__ import annotations

import dataclasses
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from instances.models import Instance, InstanceBackup, InstanceSnapshot
from tests.instances.operations import SPEC, running_server
from tests.instances.world import drive

WITH_BOTH = dataclasses.replace(SPEC, snapshots_max=2, backups_kept=3)


@pytest.fixture
def server(world, demo_location, alice) -> Instance:
    return running_server(alice, demo_location, spec=WITH_BOTH)


def url(name, server):
    return reverse(f"instances:{name}", args=[server.pk])


def page(client, server) -> str:
    return client.get(url("detail", server)).content.decode()


def take_from_the_page(client, server, label: str):
    response = client.post(url("snapshot_take", server), {"label": label})
    drive(server.operations.filter(kind="snapshot").first().pk)
    return response


def test_the_cards_say_what_the_plan_includes_and_offer_the_actions(alice_client, server):
    html = page(alice_client, server)
    assert 'id="snapshots"' in html and "0 of 2" in html
    assert 'name="label"' in html and "Take a snapshot" in html
    assert 'id="backups"' in html and "the newest 3 are kept" in html
    assert "between 01:00 and 06:00 (Europe/Berlin)" in html
    assert "Back up now" in html and "No backup yet." in html


def test_a_snapshot_taken_from_the_page_is_listed_with_a_confirmed_rollback(alice_client, server):
    response = take_from_the_page(alice_client, server, "before-upgrade")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/{server.pk}/#snapshots")
    html = page(alice_client, server)
    assert "before-upgrade" in html and "1 of 2" in html
    assert "Roll <strong>web1</strong> back to the snapshot <strong>before-upgrade</strong>" in html
    assert "lost for good" in html
    assert "Roll web1 back to before-upgrade" in html  # the button names both


def test_the_rollback_button_rolls_back(alice_client, server):
    take_from_the_page(alice_client, server, "known-good")
    snapshot = InstanceSnapshot.objects.get()
    response = alice_client.post(url("snapshot_rollback", server), {"snapshot": snapshot.pk})
    assert response.status_code == 302
    rollback = server.operations.get(kind="rollback")
    assert rollback.params == {"snapshot_id": snapshot.pk, "was_running": True}
    assert drive(rollback.pk).state == "succeeded"
    assert "Rolled back to the snapshot “known-good”" in page(alice_client, server)


def test_a_snapshot_without_a_name_is_refused_and_the_typed_name_kept(alice_client, server):
    response = alice_client.post(url("snapshot_take", server), {"label": "   "}, follow=True)
    assert "Name the snapshot" in response.content.decode()
    long = "x" * 41
    response = alice_client.post(url("snapshot_take", server), {"label": long})
    assert f"snapshot_label={long}" in response["Location"]
    html = alice_client.get(response["Location"]).content.decode()
    assert "at most 40 characters" in html and f'value="{long}"' in html
    assert not InstanceSnapshot.objects.exists()


def test_at_the_plans_limit_the_page_says_so_instead_of_offering_more(alice_client, server):
    take_from_the_page(alice_client, server, "one")
    take_from_the_page(alice_client, server, "two")
    html = page(alice_client, server)
    assert "as many snapshots as its plan includes (2)" in html
    assert "Take a snapshot" not in html


def test_a_backup_is_listed_with_date_size_and_state_and_a_confirmed_restore(alice_client, server):
    response = alice_client.post(url("backup_now", server))
    assert response["Location"].endswith(f"/{server.pk}/#backups")
    backup = InstanceBackup.objects.get()
    assert "Waiting" in page(alice_client, server)  # asked, not made yet
    drive(server.operations.get(kind="backup").pk)
    backup.refresh_from_db()
    html = page(alice_client, server)
    assert backup.created_at.strftime("%Y-%m-%d") in html
    assert "Available" in html and "On demand" in html
    assert re.search(r"<td>[\d.]+\s(MB|GB)</td>", html)  # filesizeformat's size
    assert "Restore <strong>web1</strong> from the backup of" in html
    assert "and so are all of its snapshots" in html
    response = alice_client.post(url("backup_restore", server), {"backup": backup.pk})
    assert server.operations.get(kind="restore").params["backup_id"] == backup.pk


def test_while_an_operation_runs_the_cards_offer_nothing(alice_client, server):
    alice_client.post(url("backup_now", server))
    html = page(alice_client, server)
    assert "Back up now" not in html and "Take a snapshot" not in html


def test_a_plan_without_them_says_so(alice_client, world, demo_location, alice):
    server = running_server(alice, demo_location)
    html = page(alice_client, server)
    assert "Snapshots are not included in NVMe S" in html
    assert "Backups are not included in NVMe S" in html
    response = alice_client.post(url("backup_now", server), follow=True)
    assert "Backups are not included in NVMe S" in response.content.decode()


def test_the_page_reads_the_same_few_queries_for_1_or_20_of_each(alice_client, server):
    def count() -> int:
        alice_client.get(url("detail", server))
        with CaptureQueriesContext(connection) as captured:
            alice_client.get(url("detail", server))
        return len(captured)

    def add(n: int) -> None:
        for _ in range(n):
            i = InstanceSnapshot.objects.count()
            InstanceSnapshot.objects.create(instance=server, name=f"s{i}", label=f"s{i}")
            InstanceBackup.objects.create(
                instance=server, trigger="scheduled", state="ready", size_bytes=10**9
            )

    add(1)
    one = count()
    add(19)
    assert count() == one
