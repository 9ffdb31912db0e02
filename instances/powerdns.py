"""The one door to PowerDNS Authoritative: the only module that talks to its HTTP API.

Plain data in and out (zone and record names as strings, record contents as lists of strings),
and one error class, `PowerDnsError`, that says whether waiting helps (`transient`: PowerDNS is
down, slow or answered 5xx) or not (a zone that does not exist, a record it refuses, a wrong
API key). Every request has a timeout. `POWERDNS_API_URL` (e.g. `http://127.0.0.1:8081`) and
`POWERDNS_API_KEY` point it at a server; `make run` and the tests start a real one
(`sandbox/powerdns.py`).

Names here are absolute with their trailing dot, as PowerDNS writes them
(`10.113.0.203.in-addr.arpa.`).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests
from django.conf import settings

logger = logging.getLogger(__name__)


class PowerDnsError(Exception):
    """PowerDNS did not do what was asked; `status` is its HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient


class ZoneMissing(PowerDnsError):
    """PowerDNS serves no such zone (staff create it: manage.py reverse_dns_zones)."""


def absolute(name: str) -> str:
    """`mail.example.com` → `mail.example.com.`"""
    return name if name.endswith(".") else name + "."


class PowerDns:
    """A client for one PowerDNS server's API (`server_id` is `localhost` on a plain one)."""

    def __init__(
        self, api_url: str, api_key: str, *, server_id: str = "localhost", timeout: float = 5.0
    ) -> None:
        self.base = f"{api_url.rstrip('/')}/api/v1/servers/{quote(server_id, safe='')}"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})

    @classmethod
    def from_settings(cls) -> PowerDns:
        if not settings.POWERDNS_API_URL:
            raise PowerDnsError("POWERDNS_API_URL is not set.", transient=False)
        return cls(
            settings.POWERDNS_API_URL,
            settings.POWERDNS_API_KEY,
            server_id=settings.POWERDNS_SERVER_ID,
            timeout=settings.POWERDNS_TIMEOUT,
        )

    def close(self) -> None:
        self.session.close()

    # --- zones -----------------------------------------------------------------------------

    def zone_exists(self, zone: str) -> bool:
        try:
            self._call("GET", self._zone_path(zone), params={"rrsets": "false"})
        except ZoneMissing:
            return False
        return True

    def zone_create(self, zone: str, *, nameservers: list[str]) -> bool:
        """A native zone (PowerDNS writes its SOA); False when it existed already."""
        body = {
            "name": absolute(zone),
            "kind": "Native",
            "nameservers": [absolute(ns) for ns in nameservers],
        }
        try:
            self._call("POST", "/zones", json=body)
        except PowerDnsError as error:
            if error.status == 409:  # Conflict: the zone is there
                return False
            raise
        return True

    # --- records ---------------------------------------------------------------------------

    def records(self, zone: str, name: str, rtype: str) -> list[str]:
        """The contents of one record set (empty when there is none)."""
        data = self._call(
            "GET",
            self._zone_path(zone),
            params={"rrset_name": absolute(name), "rrset_type": rtype},
        )
        for rrset in (data or {}).get("rrsets", []):
            if rrset.get("name") == absolute(name) and rrset.get("type") == rtype:
                return [r["content"] for r in rrset.get("records", []) if not r.get("disabled")]
        return []

    def records_replace(
        self, zone: str, name: str, rtype: str, contents: list[str], *, ttl: int
    ) -> None:
        """Set one record set to exactly `contents` (created or replaced)."""
        rrset = {
            "name": absolute(name),
            "type": rtype,
            "ttl": ttl,
            "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False} for content in contents],
        }
        self._call("PATCH", self._zone_path(zone), json={"rrsets": [rrset]})

    def records_delete(self, zone: str, name: str, rtype: str) -> None:
        """Remove one record set (nothing happens when there is none)."""
        rrset = {"name": absolute(name), "type": rtype, "changetype": "DELETE"}
        self._call("PATCH", self._zone_path(zone), json={"rrsets": [rrset]})

    # --- HTTP ------------------------------------------------------------------------------

    @staticmethod
    def _zone_path(zone: str) -> str:
        return f"/zones/{quote(absolute(zone), safe='')}"

    def _call(self, method: str, path: str, **kwargs):
        url = self.base + path
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as error:
            raise PowerDnsError(
                f"PowerDNS did not answer within {self.timeout:g} s.", transient=True
            ) from error
        except requests.RequestException as error:
            raise PowerDnsError(
                f"PowerDNS could not be reached: {error}", transient=True
            ) from error
        if response.status_code < 300:
            return response.json() if response.content else None
        message = _error_text(response)
        logger.info("powerdns %s %s: HTTP %s %s", method, path, response.status_code, message)
        if response.status_code == 404 and path.startswith("/zones/"):
            raise ZoneMissing(
                f"PowerDNS has no zone {path.removeprefix('/zones/')}.",
                status=404,
                transient=False,
            )
        transient = response.status_code >= 500 or response.status_code == 429
        raise PowerDnsError(
            f"PowerDNS answered HTTP {response.status_code}: {message}",
            status=response.status_code,
            transient=transient,
        )


def _error_text(response: requests.Response) -> str:
    """PowerDNS's `{"error": "..."}`, or the start of whatever else came back."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return (response.text or response.reason or "").strip()[:200]
