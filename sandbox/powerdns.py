"""The real PowerDNS Authoritative server on local ports, for `make run` and the tests.

Not a stand-in: Debian's `pdns-server` with `pdns-backend-sqlite3` (`make powerdns` installs
them), started with a config file written here, its own SQLite database under a var dir, the
HTTP API on `api_port` and DNS (UDP and TCP) on `dns_port`, both on 127.0.0.1 only.

    python -m sandbox.powerdns serve --api-port 12113 --dns-port 12153   # make run does this

The caches are off, so an answer through DNS shows an API change at once (the API purges the
caches of a zone it changes anyway; with them off, a zone made a moment ago answers too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import requests

PDNS_SERVER = "pdns_server"
# Where Debian's pdns-backend-sqlite3 keeps the schema of the database it reads.
SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
DEFAULT_API_KEY = "pdns-sandbox-key"
DEFAULT_API_PORT = 12113
DEFAULT_DNS_PORT = 12153


class PowerDnsMissing(RuntimeError):
    """pdns_server or the sqlite3 backend's schema is not installed."""


def missing() -> str:
    """What is not installed ("" when PowerDNS can run here)."""
    if shutil.which(PDNS_SERVER) is None and not Path("/usr/sbin/pdns_server").exists():
        return "pdns_server (Debian: apt-get install pdns-server pdns-backend-sqlite3)"
    if not SCHEMA.exists():
        return f"{SCHEMA} (Debian: apt-get install pdns-backend-sqlite3)"
    return ""


def free_port() -> int:
    """A port nobody listens on right now, for TCP and UDP alike."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


class PowerDnsServer:
    """One pdns_server process with its config, socket dir and database under `directory`."""

    def __init__(
        self,
        directory: Path,
        *,
        api_port: int = 0,
        dns_port: int = 0,
        api_key: str = DEFAULT_API_KEY,
    ) -> None:
        self.directory = Path(directory)
        self.api_port = api_port or free_port()
        self.dns_port = dns_port or free_port()
        self.api_key = api_key
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database(self) -> Path:
        return self.directory / "pdns.sqlite3"

    def write_config(self) -> Path:
        """pdns.conf and an initialised database (kept across restarts: zones survive)."""
        problem = missing()
        if problem:
            raise PowerDnsMissing(f"PowerDNS is not installed here: {problem}. Try: make powerdns")
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.database.exists():
            with sqlite3.connect(self.database) as db:
                db.executescript(SCHEMA.read_text())
        config = self.directory / "pdns.conf"
        config.write_text(
            "\n".join(
                [
                    "launch=gsqlite3",
                    f"gsqlite3-database={self.database}",
                    "local-address=127.0.0.1",
                    f"local-port={self.dns_port}",
                    "api=yes",
                    f"api-key={self.api_key}",
                    "webserver=yes",
                    "webserver-address=127.0.0.1",
                    f"webserver-port={self.api_port}",
                    "webserver-allow-from=127.0.0.0/8,::1",
                    f"socket-dir={self.directory}",
                    "cache-ttl=0",
                    "query-cache-ttl=0",
                    "negquery-cache-ttl=0",
                    "zone-cache-refresh-interval=0",
                    "default-soa-content=ns1.example-hosting.net. hostmaster.@ 0 10800 3600 "
                    "604800 3600",
                    # No security-status lookups over the internet.
                    "security-poll-suffix=",
                    "loglevel=4",
                    "",
                ]
            )
        )
        config.chmod(0o600)  # it holds the API key
        return config

    def command(self) -> list[str]:
        return [
            shutil.which(PDNS_SERVER) or "/usr/sbin/pdns_server",
            f"--config-dir={self.directory}",
            "--daemon=no",
            "--guardian=no",
            "--disable-syslog",
            "--write-pid=no",
        ]

    def start(self, *, timeout: float = 15) -> PowerDnsServer:
        """Start pdns_server and wait until its API answers."""
        self.write_config()
        log = (self.directory / "pdns.log").open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.wait_ready(timeout=timeout)
        return self

    def wait_ready(self, *, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"pdns_server exited with {self.process.returncode}; see "
                    f"{self.directory / 'pdns.log'}"
                )
            try:
                response = requests.get(
                    f"{self.api_url}/api/v1/servers/localhost",
                    headers={"X-API-Key": self.api_key},
                    timeout=1,
                )
                if response.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"pdns_server did not answer on {self.api_url} within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def zones_delete(self) -> None:
        """Every zone gone (tests start each from an empty server)."""
        base = f"{self.api_url}/api/v1/servers/localhost/zones"
        headers = {"X-API-Key": self.api_key}
        for zone in requests.get(base, headers=headers, timeout=5).json():
            requests.delete(f"{base}/{zone['id']}", headers=headers, timeout=5).raise_for_status()


def serve(*, directory: Path, api_port: int, dns_port: int, api_key: str) -> int:
    """Run pdns_server in the foreground (make run's process); SIGTERM stops it."""
    server = PowerDnsServer(directory, api_port=api_port, dns_port=dns_port, api_key=api_key)
    server.write_config()
    process = subprocess.Popen(server.command())
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    signal.signal(signal.SIGINT, lambda *_: process.terminate())
    return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.powerdns")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run pdns_server in the foreground")
    var_dir = Path(os.environ.get("VAR_DIR", "var"))
    run.add_argument("--dir", type=Path, default=var_dir / "powerdns")
    run.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    run.add_argument("--dns-port", type=int, default=DEFAULT_DNS_PORT)
    run.add_argument("--api-key", default=os.environ.get("POWERDNS_API_KEY") or DEFAULT_API_KEY)
    sub.add_parser("check", help="say whether PowerDNS is installed (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.command == "check":
        problem = missing()
        if problem:
            print(f"PowerDNS is missing: {problem}", file=sys.stderr)
            return 1
        return 0
    return serve(
        directory=args.dir, api_port=args.api_port, dns_port=args.dns_port, api_key=args.api_key
    )


if __name__ == "__main__":
    sys.exit(main())
