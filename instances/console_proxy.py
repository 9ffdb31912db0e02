"""The browser console's websocket, served by the ASGI server (portal/asgi.py): the browser
never talks to Proxmox and never sees a PVE ticket or token.

For `/console/ws/`, with the console session's token in a subprotocol (`portal-console.<token>`,
beside `binary`: never in the URL, which servers and proxies log), it checks, itself, what a
page would: the Origin (a host of ALLOWED_HOSTS), the Django login session cookie (as
`auth.get_user` does: the user and their session hash), then takes the console session once
(instances/consoles.py). Then it asks PVE
for a proxy (termproxy or vncproxy, through instances/proxmox.py), opens PVE's vncwebsocket
with the cluster's token and TLS settings, logs in there (the terminal's `user:ticket` line;
VNC authentication with the ticket) and relays:

- text terminal: the browser sends termproxy's own messages (`0:<length>:<data>`,
  `1:<cols>:<rows>:`, `2`), checked and passed on; the terminal's output comes back as is;
- screen: the browser's noVNC gets an RFB 3.8 handshake without authentication from us, then
  the bytes of the server's screen.

The first message to the browser is the text `ready`; a console that cannot start is closed
with a code (4001 refused, 4000 ended, 1011 Proxmox unreachable) and a reason the page shows.
Every CONSOLE_CHECK_INTERVAL seconds it looks again at the session (ended elsewhere: signed
out, suspended), the server (still running) and the login; CONSOLE_IDLE_TIMEOUT seconds without
input close it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import time
from importlib import import_module
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from django.conf import settings
from django.contrib import auth
from django.db import close_old_connections
from django.http import HttpRequest, parse_cookie
from django.http.request import split_domain_port, validate_host

from common.websocket import Closed, WebSocketClient
from instances import consoles
from instances.models import ConsoleSession
from instances.proxmox import ConsoleProxy, ProxmoxError, ProxmoxPermanent, PveClient

logger = logging.getLogger(__name__)
End = ConsoleSession.End
PATH = "/console/ws/"
TOKEN = re.compile(r"portal-console\.(?P<token>[A-Za-z0-9_-]{20,128})")
TERMINAL_MESSAGE = re.compile(r"0:(\d+):(.*)|1:\d+:\d+:|2", re.DOTALL)
# Client-to-server RFB messages that a person causes: keys, the mouse, pasting, QEMU's keys.
RFB_INPUT = {4, 5, 6, 255}
REFUSED, ENDED, UNREACHABLE = 4001, 4000, 1011
GOODBYE = {
    End.DISCONNECTED: "The server's console closed the connection.",
    End.SIGNED_OUT: "You signed out.",
    End.SUSPENDED: "The server was suspended.",
    End.NOT_RUNNING: "The server is not running.",
    End.UNAVAILABLE: "The server's console could not be reached; try again in a minute.",
}


def db(function):
    """ORM work from the event loop: in Django's thread, connections past their age closed."""

    def call(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=True)


async def console_websocket(scope, receive, send) -> None:
    """The ASGI application for websocket connections."""
    if (await receive())["type"] != "websocket.connect":
        return
    offered = scope.get("subprotocols", [])
    found = next(filter(None, map(TOKEN.fullmatch, offered)), None)
    allowed = found and scope["path"] == PATH and _origin_allowed(scope)
    login = await db(_login)(scope) if allowed else None
    if login is None:  # refused before the upgrade: the browser sees an HTTP 403
        await send({"type": "websocket.close", "code": 1008})
        return
    subprotocol = "binary" if "binary" in offered else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    browser = Browser(receive, send)
    try:
        session = await db(consoles.console_claim)(
            token=found["token"], user_id=login[0], login_session_key=login[1]
        )
    except consoles.ConsoleRefused as refused:
        await browser.close(REFUSED, str(refused))
        return
    logger.info(
        "console %s (%s) of server %s opened", session.pk, session.kind, session.instance_id
    )
    reason, detail = await Relay(session, scope, login, browser).run()
    await db(consoles.console_end)(session_id=session.pk, reason=reason, detail=detail)
    logger.info("console %s ended: %s %s", session.pk, reason, detail)
    if reason == End.IDLE:
        await browser.close(ENDED, f"Closed after {consoles.idle_time()} without input.")
    elif reason != End.CLOSED:
        await browser.close(UNREACHABLE if reason == End.UNAVAILABLE else ENDED, GOODBYE[reason])


def _origin_allowed(scope) -> bool:
    """Only pages of the portal open the console (a host of ALLOWED_HOSTS), as Django's CSRF
    check would insist for a form: the cookie alone must not be enough."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    host, _port = split_domain_port(urlsplit(origin).netloc)
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


def _login(scope) -> tuple[int, str] | None:
    """(user id, session key) of the Django login the cookie names, or None."""
    headers = dict(scope.get("headers", []))
    key = parse_cookie(headers.get(b"cookie", b"").decode("latin-1")).get(
        settings.SESSION_COOKIE_NAME
    )
    if not key:
        return None
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    user = auth.get_user(request)  # checks the session's hash of the user's password
    if not user.is_authenticated or not user.is_active:
        return None
    return user.pk, key


class Browser:
    """The browser's side of the connection (ASGI messages)."""

    def __init__(self, receive, send) -> None:
        self._receive, self._send = receive, send
        self.buffer = b""
        self.gone = False

    async def recv(self) -> bytes | str | None:
        """The next message, or None once the browser has gone."""
        if self.gone:
            return None
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.gone = True
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def read(self, size: int) -> bytes:
        """Exactly `size` bytes of the browser's binary stream (RFB), across messages."""
        while len(self.buffer) < size:
            data = await self.recv()
            if not isinstance(data, bytes):
                raise Closed("the browser left or sent text")
            self.buffer += data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def send(self, data: bytes | str) -> None:
        key = "text" if isinstance(data, str) else "bytes"
        await self._send({"type": "websocket.send", key: data})

    async def close(self, code: int, reason: str = "") -> None:
        if not self.gone:
            self.gone = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


class Relay:
    """One console session, from PVE's proxy to its end; `run` says why it ended."""

    def __init__(self, session: ConsoleSession, scope, login, browser: Browser) -> None:
        self.session, self.scope, self.login, self.browser = session, scope, login, browser
        self.instance = session.instance
        self.last_input = time.monotonic()
        self.pve_buffer = b""

    async def run(self) -> tuple[str, str]:
        cluster = self.instance.cluster
        client = PveClient(
            api_url=cluster.api_url,
            token_id=cluster.token_id,
            token_secret=cluster.token_secret,
            ca_bundle=cluster.ca_bundle,
            tls_fingerprint=cluster.tls_fingerprint,
        )
        try:
            upstream = await self._open(client)
        except (ProxmoxError, Closed, TimeoutError) as exc:
            return End.UNAVAILABLE, str(exc)
        finally:
            client.close()
        try:
            await self.browser.send("ready")
            if self.session.kind == ConsoleSession.Kind.SCREEN:
                await self._rfb_greeting()
            tasks = [
                asyncio.ensure_future(self._to_browser(upstream)),
                asyncio.ensure_future(self._from_browser(upstream)),
                asyncio.ensure_future(self._watch()),
            ]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return next(iter(done)).result()
        except Closed:
            return End.CLOSED, ""
        finally:
            await upstream.close()

    # --- PVE's side -------------------------------------------------------------------------

    async def _open(self, client: PveClient) -> WebSocketClient:
        node, vmid = self.instance.node.name, self.instance.vmid
        screen = self.session.kind == ConsoleSession.Kind.SCREEN
        start = client.vnc_proxy if screen else client.term_proxy
        proxy: ConsoleProxy = await sync_to_async(start, thread_sensitive=False)(node, vmid)
        upstream = await client.console_websocket(proxy)
        try:
            if screen:
                await asyncio.wait_for(self._vnc_login(upstream, proxy.vnc_password), 10)
            else:
                await upstream.send(f"{proxy.user}:{proxy.ticket}\n")
                if await asyncio.wait_for(upstream.recv(), 10) != b"OK":
                    raise ProxmoxPermanent("the terminal proxy refused its ticket")
        except BaseException:
            await upstream.close()
            raise
        return upstream

    async def _pve_read(self, upstream: WebSocketClient, size: int) -> bytes:
        while len(self.pve_buffer) < size:
            data = await upstream.recv()
            self.pve_buffer += data if isinstance(data, bytes) else data.encode()
        data, self.pve_buffer = self.pve_buffer[:size], self.pve_buffer[size:]
        return data

    async def _vnc_login(self, upstream: WebSocketClient, password: str) -> None:
        """RFB as a client: version 3.8, VNC authentication (the DES challenge) with PVE's
        ticket or password."""
        if not (await self._pve_read(upstream, 12)).startswith(b"RFB 003."):
            raise ProxmoxPermanent("the VNC proxy did not speak RFB")
        await upstream.send(b"RFB 003.008\n")
        types = await self._pve_read(upstream, (await self._pve_read(upstream, 1))[0])
        if 2 in types:
            await upstream.send(b"\x02")
            challenge = await self._pve_read(upstream, 16)
            await upstream.send(vnc_response(password, challenge))
        elif 1 in types:
            await upstream.send(b"\x01")
        else:
            raise ProxmoxPermanent(f"the VNC proxy offered no usable security type: {list(types)}")
        if struct.unpack(">I", await self._pve_read(upstream, 4))[0] != 0:
            raise ProxmoxPermanent("VNC authentication with the proxy's ticket failed")

    # --- the browser's side -----------------------------------------------------------------

    async def _rfb_greeting(self) -> None:
        """RFB as the server to noVNC: 3.8 and security type None (we authenticated)."""
        await self.browser.send(b"RFB 003.008\n")
        if not (await self.browser.read(12)).startswith(b"RFB 003."):
            raise Closed("not an RFB client")
        await self.browser.send(b"\x01\x01")
        if await self.browser.read(1) != b"\x01":
            raise Closed("the client chose another security type")
        await self.browser.send(b"\x00\x00\x00\x00")

    async def _to_browser(self, upstream: WebSocketClient) -> tuple[str, str]:
        if self.pve_buffer:
            await self.browser.send(self.pve_buffer)
        try:
            while True:
                data = await upstream.recv()
                await self.browser.send(data if isinstance(data, bytes) else data.encode())
        except Closed:
            return End.DISCONNECTED, ""

    async def _from_browser(self, upstream: WebSocketClient) -> tuple[str, str]:
        screen = self.session.kind == ConsoleSession.Kind.SCREEN
        pending = self.browser.buffer
        self.browser.buffer = b""
        try:
            if pending:
                await upstream.send(pending)
            while (data := await self.browser.recv()) is not None:
                if screen and isinstance(data, bytes):
                    if data[:1] and data[0] in RFB_INPUT:
                        self.last_input = time.monotonic()
                elif not screen and isinstance(data, str) and TERMINAL_MESSAGE.fullmatch(data):
                    if data[0] == "0":
                        self.last_input = time.monotonic()
                else:
                    return End.CLOSED, "the browser sent something the console does not take"
                await upstream.send(data)
        except Closed:
            return End.DISCONNECTED, ""
        return End.CLOSED, ""

    async def _watch(self) -> tuple[str, str]:
        """The session, the server and the login, looked at again and again; and idleness."""
        interval = settings.CONSOLE_CHECK_INTERVAL
        while True:
            idle_left = settings.CONSOLE_IDLE_TIMEOUT - (time.monotonic() - self.last_input)
            if idle_left <= 0:
                return End.IDLE, ""
            await asyncio.sleep(min(interval, idle_left))
            reason = await db(consoles.console_check)(session_id=self.session.pk)
            if reason:
                return reason, ""
            if await db(_login)(self.scope) != self.login:
                return End.SIGNED_OUT, "the login session ended"


def vnc_response(password: str, challenge: bytes) -> bytes:
    """VNC authentication's answer: the challenge DES-encrypted with the password's first 8
    bytes as the key, each byte's bits reversed (RFC 6143 7.2.2, as VNC servers do it)."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in (password.encode() + bytes(8))[:8])
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()
