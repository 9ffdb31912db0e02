"""The demo cluster's consoles as PVE serves them: `vncproxy` and `termproxy` start a proxy on
a port of its own, `vncwebsocket` connects the caller's websocket to it, and behind it the
guest's screen (a VNC server) or its serial line, where the cloud image runs a login prompt.

fakepve 0.5 has the three endpoints; this module answers them instead, on the same tickets and
hooks (installed by sandbox.pve.install_extensions, listed in sandbox/README.md), following the
PVE 9.1 schema (../shared/reference/pve-9.1-api-schema.json) and qemu-server's API2/Qemu.pm:

- every answer is checked against the schema first (PVE's 400 names the parameter);
- `port` is an integer, the proxy's own, from 5900-5999 (fakepve: the string "5900" for all);
- `vncproxy` answers the cluster's CA certificate in `cert` (fakepve: none), and always starts
  a VNC proxy: `websocket` only matters for serial terminals (fakepve: a terminal without it);
- `termproxy` needs the serial port it opens, `serial` or the one `vga` shows (400 otherwise);
- `vncwebsocket` needs the `port` of the proxy call (fakepve accepted none), the ticket is
  checked before the upgrade, and each proxy takes one connection within the ticket's 40 s.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import re
import secrets
import ssl
import struct
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from fakepve import FakePve, PveError
from fakepve.server import USER, ok, params

FIRST_PORT, LAST_PORT = 5900, 5999
SERIAL = re.compile(r"serial[0-3]")
# What the screen shows: a console's usual 640x400 (raw pixels, so kept small), dark.
SCREEN = (640, 400)
MESSAGE = re.compile(r"0:(\d+):(.*)|1:(\d+):(\d+):|2", re.DOTALL)


@dataclass
class Proxy:
    """A proxy PVE started (vncproxy or termproxy): it waits on its port for one connection."""

    port: int
    vmid: int
    user: str
    ticket: str
    issued: float
    serial: str = ""  # the serial port a terminal proxy opens; "" for a VNC proxy
    password: str = ""  # the VNC password, when PVE made one (generate-password)
    taken: bool = False


def install(pve: FakePve) -> None:
    pve.console_proxies = {}
    pve.console_cert = None
    ours = {"vncproxy": _vncproxy, "termproxy": _termproxy, "vncwebsocket": _vncwebsocket}
    answer = pve._answer

    async def routed(request, handler, generic, path_node):
        canonical = getattr(request.match_info.route.resource, "canonical", "")
        if "/qemu/{vmid}/" in canonical and canonical.rsplit("/", 1)[-1] in ours:
            handler = functools.partial(ours[canonical.rsplit("/", 1)[-1]], pve)
        return await answer(request, handler, generic, path_node)

    pve._answer = routed


# --- starting a proxy --------------------------------------------------------------------------


def _start_proxy(pve: FakePve, request, vm, *, serial: str = "", password: str = "") -> Proxy:
    """A proxy on the next free port (PVE::Tools::next_vnc_port). One nobody connected to
    within the ticket's lifetime has given up and freed its port."""
    now = time.time()
    for port, proxy in list(pve.console_proxies.items()):
        if proxy.taken or now - proxy.issued >= pve.vnc_ticket_ttl:
            del pve.console_proxies[port]
    free = (p for p in range(FIRST_PORT, LAST_PORT + 1) if p not in pve.console_proxies)
    port = next(free, None)
    if port is None:
        raise PveError(500, f"unable to find free port ({FIRST_PORT}-{LAST_PORT})")
    proxy = Proxy(port, vm.vmid, request[USER], f"PVEVNC:{secrets.token_hex(16)}", now)
    proxy.serial, proxy.password = serial, password
    pve.console_proxies[port] = proxy
    return proxy


def _upid(vm, kind: str) -> str:
    return f"UPID:{vm.node}:{kind}:{vm.vmid}:"  # as fakepve writes it (no task is kept)


def _serial_of(vm, asked: str | None) -> str:
    """The serial port a terminal opens: the one asked for, else the one `vga` shows."""
    vga = str(vm.config.get("vga", "")).split(",")[0].removeprefix("type=")
    return asked or (vga if SERIAL.fullmatch(vga) else "")


async def _termproxy(pve: FakePve, request):
    vm = pve._vm(request, "VM.Console")
    values = pve._verify(request, await params(request))
    serial = _serial_of(vm, values.get("serial"))
    if not serial or not vm.config.get(serial):
        raise PveError(
            400,
            "Parameter verification failed.",
            {"serial": "configuration does not have a serial port"},
        )
    proxy = _start_proxy(pve, request, vm, serial=serial)
    return ok(
        {
            "port": proxy.port,
            "ticket": proxy.ticket,
            "user": proxy.user,
            "upid": _upid(vm, "vncproxy"),
        }
    )


async def _vncproxy(pve: FakePve, request):
    vm = pve._vm(request, "VM.Console")
    values = pve._verify(request, await params(request))
    password = secrets.token_hex(4) if values.get("generate-password") else ""
    proxy = _start_proxy(pve, request, vm, password=password)
    data = {
        "port": proxy.port,
        "ticket": proxy.ticket,
        "user": proxy.user,
        "upid": _upid(vm, "vncproxy"),
        "cert": await _served_certificate(pve),
    }
    if password:
        data["password"] = password
    return ok(data)


async def _served_certificate(pve: FakePve) -> str:
    """The certificate the fake serves (its own CA: it is self-signed), as PVE answers
    /etc/pve/pve-root-ca.pem. Read once from a TLS handshake with itself."""
    if pve.console_cert is None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        _reader, writer = await asyncio.open_connection(pve.host, pve.port, ssl=context)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        pve.console_cert = ssl.DER_cert_to_PEM_cert(der)
    return pve.console_cert


# --- connecting to it --------------------------------------------------------------------------


async def _vncwebsocket(pve: FakePve, request):
    """pveproxy checks the ticket (user, /vms/<vmid>, age) and then connects the websocket to
    localhost:<port>; whatever proxy listens there takes the connection, once."""
    vm = pve._vm(request, "VM.Console")
    values = pve._verify(request, dict(request.query))
    proxy = pve.console_proxies.get(values["port"])
    ticket = str(values["vncticket"])
    mine = [p for p in pve.console_proxies.values() if p.vmid == vm.vmid and not p.taken]
    fresh = [p for p in mine if time.time() - p.issued < pve.vnc_ticket_ttl]
    if not any(
        p.user == request[USER] and hmac.compare_digest(p.ticket.encode(), ticket.encode())
        for p in fresh
    ):
        raise PveError(401, "permission denied - invalid PVEVNC ticket")
    if proxy is None or proxy.taken:
        raise PveError(500, f"failed to connect to localhost:{values['port']}: Connection refused")
    proxy.taken = True
    ws = web.WebSocketResponse(protocols=("binary",), max_msg_size=0)
    await ws.prepare(request)
    try:
        if proxy.ticket != ticket:  # another console's proxy: it refuses this ticket
            return ws
        if proxy.serial:
            await _terminal(pve, ws, vm, proxy)
        else:
            await _screen(pve, ws, vm, proxy)
    except ConnectionError:
        pass
    finally:
        await ws.close()
    return ws


async def _terminal(pve: FakePve, ws, vm, proxy: Proxy) -> None:
    """termproxy: the client says `user:ticket\\n`, hears OK, then `qm terminal` runs (socat on
    the VM's serial socket). Client messages: `0:<length>:<data>` input, `1:<cols>:<rows>:`
    a resize, `2` a ping."""
    hello = await ws.receive()
    if (
        pve.refuse_terminal
        or hello.type != aiohttp.WSMsgType.TEXT
        or hello.data != f"{proxy.user}:{proxy.ticket}\n"
    ):
        return
    await ws.send_bytes(b"OK")
    if vm.status != "running":
        await ws.send_bytes(f"VM {vm.vmid} not running\r\n".encode())
        return
    await ws.send_bytes(f"starting serial terminal on interface {proxy.serial}\r\n".encode())
    getty = Getty(vm.name, f"ttyS{proxy.serial[-1]}")
    await ws.send_bytes(getty.banner())
    async for frame in ws:
        if frame.type != aiohttp.WSMsgType.TEXT:
            break
        pve.termdata.append(frame.data)
        found = MESSAGE.fullmatch(frame.data)
        if found and found[1] is not None:
            data = found[2].encode()[: int(found[1])].decode(errors="replace")
            echo = getty.feed(data)
            if echo:
                await ws.send_bytes(echo)


@dataclass
class Getty:
    """What a cloud image runs on its serial console: agetty's prompt and login's questions.

    It shows the prompt when a terminal attaches (a real getty printed it at boot, and again
    for every empty line), echoes the login name, not the password, and refuses every login.
    """

    hostname: str
    tty: str
    state: str = "login"
    typed: list[str] = field(default_factory=list)

    def banner(self) -> bytes:
        return f"\r\n{self.hostname} {self.tty}\r\n\r\n{self.hostname} login: ".encode()

    def feed(self, data: str) -> bytes:
        out = []
        for char in data:
            if char in "\r\n":
                out.append(self._enter())
            elif char in "\x7f\b":
                if self.typed:
                    self.typed.pop()
                    out.append("\b \b" if self.state == "login" else "")
            elif char.isprintable():
                self.typed.append(char)
                out.append(char if self.state == "login" else "")
        return "".join(out).encode()

    def _enter(self) -> str:
        name, self.typed = "".join(self.typed), []
        if self.state == "login":
            if not name:
                return f"\r\n{self.hostname} login: "
            self.state = "password"
            return "\r\nPassword: "
        self.state = "login"
        return f"\r\n\r\nLogin incorrect\r\n{self.hostname} login: "


async def _screen(pve: FakePve, ws, vm, proxy: Proxy) -> None:
    """QEMU's VNC server behind `qm vncproxy`: RFB 3.8, VNC authentication with the ticket (or
    the generated password), then the screen in raw encoding for as long as the client stays
    (fakepve's sent one picture and hung up). Needs cryptography (fakepve's crypto extra)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    stream = RfbStream(ws)
    await ws.send_bytes(b"RFB 003.008\n")
    if await stream.read(12) != b"RFB 003.008\n":
        return
    await ws.send_bytes(b"\x01\x02")  # one security type: VNC authentication
    if await stream.read(1) != b"\x02":
        return
    challenge = secrets.token_bytes(16)
    await ws.send_bytes(challenge)
    # VNC's DES key: the password's first 8 bytes, each byte's bits reversed.
    key = bytes(
        int(f"{b:08b}"[::-1], 2) for b in ((proxy.password or proxy.ticket).encode() + bytes(8))[:8]
    )
    expected = Cipher(TripleDES(key * 3), modes.ECB()).encryptor().update(challenge)
    if not hmac.compare_digest(await stream.read(16), expected):
        reason = b"Authentication failed"
        await ws.send_bytes(struct.pack(">II", 1, len(reason)) + reason)
        return
    await ws.send_bytes(struct.pack(">I", 0))
    await stream.read(1)  # ClientInit (shared flag)
    width, height = SCREEN
    name = vm.name.encode()
    # Server pixel format: 32 bits, depth 24, little-endian true colour, red at bit 16.
    pixel_format = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    await ws.send_bytes(
        struct.pack(">HH", width, height) + pixel_format + struct.pack(">I", len(name)) + name
    )
    layout = (False, 16, 8, 0)  # big-endian?, red, green, blue shifts
    sent = False
    while True:
        kind = (await stream.read(1))[0]
        if kind == 0:  # SetPixelFormat
            data = await stream.read(19)
            layout = (bool(data[5]), data[13], data[14], data[15])
        elif kind == 2:  # SetEncodings
            count = struct.unpack(">xH", await stream.read(3))[0]
            await stream.read(4 * count)
        elif kind == 3:  # FramebufferUpdateRequest: the whole screen once, then nothing changes
            incremental = (await stream.read(9))[0]
            if not incremental or not sent:
                vm.screenshots = getattr(vm, "screenshots", 0) + 1
                await ws.send_bytes(_frame(width, height, layout))
                sent = True
        elif kind == 4:  # KeyEvent
            vm.keys = [*getattr(vm, "keys", []), struct.unpack(">BxxI", await stream.read(7))]
        elif kind == 5:  # PointerEvent
            await stream.read(5)
        elif kind == 6:  # ClientCutText
            length = struct.unpack(">xxxI", await stream.read(7))[0]
            await stream.read(length)
        else:
            return  # a message this server never offered


def _frame(width: int, height: int, layout: tuple[bool, int, int, int]) -> bytes:
    """A FramebufferUpdate with one raw rectangle: a dark screen with a lighter top bar."""
    big_endian, red, green, blue = layout

    def pixel(r: int, g: int, b: int) -> bytes:
        return struct.pack(">I" if big_endian else "<I", r << red | g << green | b << blue)

    bar, background = pixel(0x3B, 0x4B, 0x6B), pixel(0x10, 0x16, 0x24)
    rows = bar * width * 24 + background * width * (height - 24)
    return struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, width, height, 0) + rows


class RfbStream:
    """RFB bytes over websocket frames, which may split or join its messages anywhere."""

    def __init__(self, ws) -> None:
        self.ws, self.buffer = ws, b""

    async def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            frame = await self.ws.receive()
            if frame.type != aiohttp.WSMsgType.BINARY:
                raise ConnectionError("the client went away")
            self.buffer += frame.data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data
