"""The console in the browser: the server page's Console button, the serial terminal in
xterm.js through the portal's console proxy (portal/asgi.py under uvicorn) to the demo
cluster's console (sandbox/pve_console.py), and the screen in noVNC. The page talks to the
portal only; another customer's console is a 404; a console session opens once.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from tests.instances.operations import running_server

ROWS = ".xterm-rows"


def sign_in_as(page_or_context, user, live_server) -> None:
    """The browser carries the user's login session cookie (as after signing in)."""
    client = Client()
    client.force_login(user)
    context = getattr(page_or_context, "context", page_or_context)
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def server(world, demo_location, alice):
    return running_server(alice, demo_location, hostname="web1")


def test_the_console_shows_the_servers_login_prompt_and_echoes_what_is_typed(
    page: Page,
    live_server,
    server,
    world,
    console_proxy,
    alice,
    browser: Browser,
    mallory,
    tmp_path,
):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda websocket: requests.append(websocket.url))
    sign_in_as(page, alice, live_server)
    page.goto(f"{live_server.url}/servers/{server.pk}/")
    with page.expect_response(re.compile(r"/console/session/$")) as opened:
        page.get_by_role("link", name="Console").click()
    expect(page.get_by_role("heading", name="Console of web1")).to_be_visible()
    expect(page.locator("#console-status")).to_have_text("Connected to the serial terminal.")
    rows = page.locator(ROWS)
    expect(rows).to_contain_text("web1 login:")
    page.locator(".xterm").click()
    page.keyboard.type("root")
    expect(rows).to_contain_text("web1 login: root")
    page.keyboard.press("Enter")
    expect(rows).to_contain_text("Password:")
    page.screenshot(path=tmp_path / "console-terminal.png")

    # The page talked to the portal and its console proxy only, never to Proxmox.
    pve = urlsplit(world.url).netloc
    assert requests and not [url for url in requests if pve in url]
    assert any(url.startswith(console_proxy.origin) for url in requests)

    # The session's websocket URL opens once: a second connection is refused.
    used = opened.value.json()
    code, reason = page.evaluate(
        """(used) => new Promise((resolve) => {
            const socket = new WebSocket(used.url, ["binary", used.protocol]);
            socket.onclose = (event) => resolve([event.code, event.reason]);
        })""",
        used,
    )
    assert code == 4001 and "already used" in reason

    # Another customer's console does not exist for them.
    other = browser.new_context()
    sign_in_as(other, mallory, live_server)
    for url in (f"/servers/{server.pk}/console/", f"/servers/{server.pk}/"):
        assert other.request.get(f"{live_server.url}{url}").status == 404
    other.close()

    # The text terminal gives way to the screen: noVNC, through the same proxy.
    page.get_by_role("button", name="Screen").click()
    expect(page.locator("#console-status")).to_have_text("Connected to the screen.")
    expect(page.locator("#console-screen canvas")).to_be_visible()
    page.screenshot(path=tmp_path / "console-screen.png")
    page.get_by_role("link", name="web1").click()
    expect(page.locator("#timeline")).to_contain_text("Console opened: screen.")
    expect(page.locator("#timeline")).to_contain_text("Console opened: text terminal.")
