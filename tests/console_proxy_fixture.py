"""The console proxy (portal/asgi.py) served by uvicorn in a thread, on a port of its own, the
way `make run` and production serve it next to the pages."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from asgiref.sync import sync_to_async
from django.db import connections


@dataclass(frozen=True)
class ConsoleProxyServer:
    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"ws://{self.host}:{self.port}"


@pytest.fixture
def console_proxy(settings, transactional_db) -> Iterator[ConsoleProxyServer]:
    """Serves the ASGI application; pages point their consoles at it (CONSOLE_WEBSOCKET_ORIGIN,
    and the CSP's connect-src, as portal/settings.py derives it)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = ConsoleProxyServer("localhost", listener.getsockname()[1])
    settings.CONSOLE_WEBSOCKET_ORIGIN = server.origin
    settings.CONSOLE_CHECK_INTERVAL = 0.2
    csp = dict(settings.SECURE_CSP)
    csp["connect-src"] = [*csp["connect-src"], server.origin]
    settings.SECURE_CSP = csp
    config = uvicorn.Config(
        "portal.asgi:application",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,  # a browser still connected does not hold the test up
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(
        target=uvicorn_server.run, kwargs={"sockets": [listener]}, name="console-proxy"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uvicorn_server.started, "the console proxy did not start"
    yield server
    uvicorn_server.should_exit = True
    thread.join(10)
    listener.close()
    # The proxy's ORM work ran in asgiref's thread for sync code; its connections close there.
    closing = threading.Thread(target=asyncio.run, args=(sync_to_async(connections.close_all)(),))
    closing.start()
    closing.join(10)
