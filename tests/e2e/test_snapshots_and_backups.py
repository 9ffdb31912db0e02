"""Snapshots and backups in the browser: a snapshot taken from the server page, what the guest
wrote afterwards undone by a rollback behind its confirmation, then "Back up now" with the
archive listed with its size; a Celery worker runs the operations and the page follows them.

SCREENSHOTS=<dir> keeps pictures of the cards.
"""

from __future__ import annotations

import dataclasses
import os
import re

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from sandbox import pve_disks
from tests.instances.operations import SPEC, running_server

pytestmark = pytest.mark.fakepve(time_scale=0.05)
WITH_BOTH = dataclasses.replace(SPEC, snapshots_max=2, backups_kept=7)


def signed_in(page: Page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def shot(page_or_locator, name: str) -> None:
    if os.environ.get("SCREENSHOTS"):
        page_or_locator.screenshot(path=os.path.join(os.environ["SCREENSHOTS"], name))


def test_snapshot_roll_back_and_back_up_from_the_server_page(
    page: Page, live_server, worker, world, demo_location, alice
):
    world.time_scale = 0  # built at once; the operations below run at a twentieth of PVE's pace
    server = running_server(alice, demo_location, spec=WITH_BOTH)
    world.time_scale = 0.05
    pve_disks.write(world, server.vmid, "the shop as it was")
    signed_in(page, live_server, alice)
    page.goto(f"{live_server.url}/servers/{server.pk}/")

    card = page.locator("#snapshots")
    expect(card).to_contain_text("0 of 2")
    card.get_by_label("Name of the snapshot").fill("before-update")
    card.get_by_role("button", name="Take a snapshot").click()
    expect(page.get_by_text("Snapshot in progress")).to_be_visible()
    expect(card).to_contain_text("Ready", timeout=20_000)  # the page reloads once it is done
    expect(card).to_contain_text("1 of 2")

    pve_disks.write(world, server.vmid, "a broken update")
    card.get_by_text("Roll back…").click()
    confirm = card.locator("details[open] form")
    expect(confirm).to_contain_text("Roll web1 back to the snapshot before-update")
    expect(confirm).to_contain_text("lost for good")
    shot(page.locator("#snapshots"), "snapshots-rollback-confirm.png")
    confirm.get_by_role("button", name="Roll web1 back to before-update").click()
    expect(page.get_by_text(re.compile("Rollback to a snapshot in progress", re.I))).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Rolled back to the snapshot “before-update”", timeout=30_000)
    assert pve_disks.contents(world, server.vmid) == "the shop as it was"
    expect(page.locator("p.status").first).to_have_text(re.compile("Running", re.I))

    backups = page.locator("#backups")
    backups.get_by_role("button", name="Back up now").click()
    expect(backups).to_contain_text("Available", timeout=30_000)
    expect(backups.locator("td").nth(1)).to_have_text(re.compile(r"[\d.]+\s(MB|GB)"))
    expect(timeline).to_contain_text("Backup made (")
    shot(page.locator("#snapshots"), "snapshots-card.png")
    shot(backups, "backups-card.png")
    shot(page, "server-page.png")
    if os.environ.get("SCREENSHOTS"):  # and on a phone
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page.locator("#snapshots"), "snapshots-phone.png")
        shot(backups, "backups-phone.png")
