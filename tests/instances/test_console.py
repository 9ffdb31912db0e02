"""The browser console through the real console proxy (portal/asgi.py under uvicorn) to the
demo cluster's consoles (sandbox/pve_console.py): the browser's side is a websocket client
that sends what a browser sends (the login session cookie, its Origin)."""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from instances import lifecycle, services
from instances.models import Cluster, ConsoleSession, Instance
from instances.proxmox import PRIVILEGES
from tests.instances.operations import CUSTOMER, running_server
from tests.instances.test_pve_role import use_token_with
from tests.instances.world import drive

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = "http://localhost"


@pytest.fixture
def server(world, demo_location, alice) -> Instance:
    return running_server(alice, demo_location)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def open_session(client: Client, server: Instance, kind: str = "terminal") -> dict:
    response = client.post(reverse("instances:console_session", args=[server.pk]), {"kind": kind})
    assert response.status_code == 200, response.content
    return response.json()


def browser(session: dict, client: Client | None, *, origin: str = ORIGIN):
    headers = {"Cookie": f"sessionid={client.cookies['sessionid'].value}"} if client else {}
    return connect(
        session["url"].replace("localhost", "127.0.0.1"),
        origin=origin,
        additional_headers=headers,
        subprotocols=["binary", session["protocol"]],
        open_timeout=10,
    )


def closed_with(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=10)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def terminal_output(ws, until: bytes) -> bytes:
    seen = b""
    while until not in seen:
        seen += ws.recv(timeout=10)
    return seen


def timeline(server: Instance) -> list[str]:
    return list(server.events.order_by("created_at", "id").values_list("message", flat=True))


def test_the_owner_types_at_the_servers_login_prompt(server, console_proxy, alice, caplog):
    caplog.set_level(logging.INFO)
    client = signed_in(alice)
    opened = open_session(client, server)
    with browser(opened, client) as ws:
        assert ws.recv(timeout=10) == "ready"
        assert terminal_output(ws, b"login: ").endswith(f"{server.hostname} login: ".encode())
        ws.send("1:100:30:")
        ws.send("0:4:root")
        assert terminal_output(ws, b"root") == b"root"
    session = ConsoleSession.objects.get()
    wait_for(lambda: ConsoleSession.objects.get().ended_at is not None)
    session.refresh_from_db()
    assert session.end_reason == ConsoleSession.End.CLOSED
    assert session.actor == CUSTOMER and session.user == alice
    assert timeline(server)[-2:] == ["Console opened: text terminal.", "Console closed."]
    assert opened["url"].endswith("/console/ws/")  # the token is in no URL
    token = opened["protocol"].removeprefix("portal-console.")
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest()
    # What the portal logs (fakepve's own access log shows its URLs, as pveproxy's does).
    ours = [record for record in caplog.records if not record.name.startswith("aiohttp")]
    logged = "\n".join(record.getMessage() for record in ours)
    assert token not in logged and "PVEVNC" not in logged
    assert any(r.startswith("console ") for r in (m.getMessage() for m in caplog.records))


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "it did not happen"
        time.sleep(0.05)


def test_a_console_session_opens_once(server, console_proxy, alice):
    client = signed_in(alice)
    opened = open_session(client, server)
    with browser(opened, client) as ws:
        assert ws.recv(timeout=10) == "ready"
    with browser(opened, client) as again:
        code, reason = closed_with(again)
    assert code == 4001
    assert "already used or has expired" in reason


def test_it_is_bound_to_the_login_session_and_the_customer(server, console_proxy, alice, mallory):
    opened = open_session(signed_in(alice), server)
    for other in (signed_in(alice), signed_in(mallory)):  # another login, another customer
        with browser(opened, other) as ws:
            assert closed_with(ws)[0] == 4001
    assert not ConsoleSession.objects.filter(connected_at__isnull=False).exists()


def test_an_unused_session_expires(server, console_proxy, alice, settings):
    settings.CONSOLE_SESSION_TTL = 0
    client = signed_in(alice)
    opened = open_session(client, server)
    with browser(opened, client) as ws:
        assert closed_with(ws)[0] == 4001


def test_without_a_login_a_token_or_from_another_site_the_upgrade_is_refused(
    server, console_proxy, alice
):
    client = signed_in(alice)
    opened = open_session(client, server)
    for attempt in (
        lambda: browser(opened, None),
        lambda: browser(opened, client, origin="https://evil.example"),
        lambda: browser({**opened, "protocol": "binary"}, client),  # no token
    ):
        with pytest.raises(InvalidStatus) as refused:
            attempt()
        assert refused.value.response.status_code == 403
    with browser(opened, client) as ws:  # still unused
        assert ws.recv(timeout=10) == "ready"


def test_another_customer_cannot_open_it(client, server, mallory):
    client.force_login(mallory)
    assert client.get(reverse("instances:console", args=[server.pk])).status_code == 404
    response = client.post(
        reverse("instances:console_session", args=[server.pk]), {"kind": "terminal"}
    )
    assert response.status_code == 404
    assert not ConsoleSession.objects.exists()


def test_signing_out_ends_the_console(server, console_proxy, alice):
    client = signed_in(alice)
    opened = open_session(client, server)
    with browser(opened, client) as ws:
        assert ws.recv(timeout=10) == "ready"
        client.post("/accounts/logout/")
        assert closed_with(ws) == (4000, "You signed out.")
    assert ConsoleSession.objects.get().end_reason == ConsoleSession.End.SIGNED_OUT
    assert timeline(server)[-1] == "Console closed: signed out."


def test_an_idle_console_closes(server, console_proxy, alice, settings):
    settings.CONSOLE_IDLE_TIMEOUT = 1
    client = signed_in(alice)
    with browser(open_session(client, server), client) as ws:
        assert ws.recv(timeout=10) == "ready"
        ws.send("2")  # pings are no input
        assert closed_with(ws) == (4000, "Closed after 1 minute without input.")
    assert timeline(server)[-1] == "Console closed after 1 minute without input."


def test_suspending_the_server_ends_its_console(server, console_proxy, alice):
    client = signed_in(alice)
    with browser(open_session(client, server), client) as ws:
        assert ws.recv(timeout=10) == "ready"
        lifecycle.instance_suspend(instance=server, reason="The invoice is unpaid.")
        assert closed_with(ws) == (4000, "The server was suspended.")
    assert "Console closed: the server was suspended." in timeline(server)


def test_a_stopped_server_has_no_console(server, console_proxy, alice):
    stop = services.instance_power(instance=server, action="stop", actor=CUSTOMER, actor_user=alice)
    drive(stop.pk)
    client = signed_in(alice)
    response = client.post(
        reverse("instances:console_session", args=[server.pk]), {"kind": "screen"}
    )
    assert response.status_code == 409
    assert "start it first" in response.json()["error"]


def test_the_screen_comes_without_a_password_and_without_pves_ticket(
    server, console_proxy, alice, world
):
    client = signed_in(alice)
    received = []
    with browser(open_session(client, server, "screen"), client) as ws:
        assert ws.recv(timeout=10) == "ready"
        received.append(ws.recv(timeout=10))
        assert received[-1] == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        assert ws.recv(timeout=10) == b"\x01\x01"  # one security type: none
        ws.send(b"\x01")
        assert ws.recv(timeout=10) == b"\x00\x00\x00\x00"
        ws.send(b"\x01")  # ClientInit
        received.append(ws.recv(timeout=10))
        width, height = struct.unpack(">HH", received[-1][:4])
        ws.send(struct.pack(">BxHHHH", 3, 0, 0, width, height))
        update = b""
        while len(update) < 16 + width * height * 4:
            update += ws.recv(timeout=10)
        ws.send(struct.pack(">BBxxI", 4, 1, 0x61))  # the key "a"
        wait_for(lambda: getattr(world.vm(server.vmid), "keys", []) == [(1, 0x61)])
    assert (width, height) == (640, 400)
    assert not any(b"PVEVNC" in message for message in received)
    assert "Console opened: screen." in timeline(server)


def test_staff_open_any_servers_console_from_the_admin(server, console_proxy, staff):
    client = signed_in(staff)
    assert client.get(reverse("staff_console", args=[server.pk])).status_code == 200
    response = client.post(reverse("staff_console_session", args=[server.pk]), {"kind": "terminal"})
    with browser(response.json(), client) as ws:
        assert ws.recv(timeout=10) == "ready"
    assert ConsoleSession.objects.get().actor == "staff"


def test_staff_without_the_right_to_change_servers_are_refused(server, world):
    from tests.factories import UserFactory

    reader = UserFactory(email="reader@example.com", is_staff=True, totp=True)
    client = signed_in(reader)
    assert client.get(reverse("staff_console", args=[server.pk])).status_code == 403


def test_the_documented_role_opens_the_console_and_vm_console_is_needed(
    server, console_proxy, alice, world
):
    use_token_with(world, PRIVILEGES)
    client = signed_in(alice)
    with browser(open_session(client, server), client) as ws:
        assert ws.recv(timeout=10) == "ready"
    use_token_with(world, [priv for priv in PRIVILEGES if priv != "VM.Console"])
    with browser(open_session(client, server), client) as ws:
        assert closed_with(ws)[0] == 1011
    refused = ConsoleSession.objects.filter(end_reason="unavailable").get()
    assert "Permission check failed" in refused.detail and "VM.Console" in refused.detail


def test_a_cluster_with_a_pinned_certificate_opens_consoles_and_refuses_another(
    server, console_proxy, alice, fakepve_cafile
):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    pem = Path(fakepve_cafile).read_bytes()
    fingerprint = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
    Cluster.objects.update(ca_bundle="", tls_fingerprint=fingerprint)
    client = signed_in(alice)
    with browser(open_session(client, server), client) as ws:
        assert ws.recv(timeout=10) == "ready"
    Cluster.objects.update(tls_fingerprint="00" * 32)
    with browser(open_session(client, server), client) as ws:
        assert closed_with(ws)[0] == 1011
    assert (
        "Fingerprints did not match" in ConsoleSession.objects.get(end_reason="unavailable").detail
    )
