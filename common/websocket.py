"""A websocket client over a stream the caller opened (and checked: TLS, a pinned certificate),
on the websockets package's sans-I/O protocol: the handshake with the caller's headers, then
whole messages in and out. The console proxy speaks to Proxmox with it (instances/proxmox.py).
"""

from __future__ import annotations

import asyncio

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

CHUNK = 64 * 1024
# The biggest message taken: a console's screen update in raw pixels (1920 x 1200 x 4 bytes).
MAX_MESSAGE = 16 * 1024 * 1024


class HandshakeRefused(Exception):
    """The server answered the upgrade with something else than 101 (status, reason phrase)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Closed(Exception):
    """The connection is closed (by either side, or it broke)."""


class WebSocketClient:
    """One websocket connection; `recv` and `send` may run in two tasks at once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str):
        self._reader, self._writer = reader, writer
        self._protocol = ClientProtocol(
            parse_uri(url), subprotocols=[Subprotocol("binary")], max_size=MAX_MESSAGE
        )
        self._events: list = []  # what the protocol parsed: the response, then frames
        self._parts: list[bytes] = []
        self._opcode: Opcode | None = None

    @classmethod
    async def open(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        url: str,
        *,
        headers: dict[str, str],
    ) -> WebSocketClient:
        """The upgrade of `url` (ws:// or wss://, only its host and path are sent) with these
        request headers; raises HandshakeRefused or Closed."""
        client = cls(reader, writer, url)
        request = client._protocol.connect()
        for name, value in headers.items():
            request.headers[name] = value
        client._protocol.send_request(request)
        await client._flush()
        while client._protocol.state is State.CONNECTING:
            await client._read()
        response = next((e for e in client._events if isinstance(e, Response)), None)
        client._events = [e for e in client._events if isinstance(e, Frame)]
        error = client._protocol.handshake_exc
        if isinstance(error, InvalidStatus):
            client.abort()
            raise HandshakeRefused(error.response.status_code, error.response.reason_phrase)
        if error is not None or response is None:
            client.abort()
            raise Closed(f"websocket handshake failed: {error}")
        return client

    async def recv(self) -> bytes | str:
        """The next whole message: bytes for a binary one, str for text. Raises Closed."""
        while True:
            while self._events:
                message = self._assemble(self._events.pop(0))
                if message is not None:
                    return message
            if self._protocol.state is State.CLOSED:
                raise Closed("closed")
            await self._read()

    async def send(self, message: bytes | str) -> None:
        if self._protocol.state is not State.OPEN:
            raise Closed("closed")
        if isinstance(message, str):
            self._protocol.send_text(message.encode())
        else:
            self._protocol.send_binary(message)
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Say goodbye if the connection is still open, then drop it."""
        try:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close(code, reason)
                await asyncio.wait_for(self._flush(), 2)
        except (OSError, TimeoutError):
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        self._writer.close()

    # --- the stream -------------------------------------------------------------------------

    def _assemble(self, frame: Frame) -> bytes | str | None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._opcode, self._parts = frame.opcode, [frame.data]
        elif frame.opcode is Opcode.CONT and self._opcode is not None:
            self._parts.append(frame.data)
        else:
            return None  # control frames: the protocol answers pings and closes itself
        if not frame.fin:
            return None
        data = b"".join(self._parts)
        opcode, self._opcode, self._parts = self._opcode, None, []
        return data.decode() if opcode is Opcode.TEXT else data

    async def _read(self) -> None:
        try:
            data = await self._reader.read(CHUNK)
        except OSError as exc:
            self.abort()
            raise Closed(str(exc)) from exc
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        self._events += self._protocol.events_received()
        await self._flush()  # pongs and the answer to a close
        if not data and self._protocol.state is not State.CLOSED:
            raise Closed("the connection ended")

    async def _flush(self) -> None:
        try:
            for data in self._protocol.data_to_send():
                if data:
                    self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self.abort()
            raise Closed(str(exc)) from exc
