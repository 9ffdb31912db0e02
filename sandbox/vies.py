"""A stand-in for VIES, the EU's VAT ID service, speaking its REST interface (dev and tests).

    python -m sandbox.vies serve --port 12112

The portal reaches it through `accounts/vies.py` with `VIES_API_BASE` set to `url` (it serves
under `/rest-api`, as https://ec.europa.eu/taxation_customs/vies/rest-api does):

- `POST /rest-api/check-vat-number` `{"countryCode", "vatNumber", "requesterMemberStateCode",
  "requesterNumber"}` → `{"countryCode", "vatNumber", "requestDate", "valid",
  "requestIdentifier", "name", "address", "trader…"}`; the consultation number
  (`requestIdentifier`) only when a requester (itself registered) is named;
- `GET /rest-api/ms/{countryCode}/vat/{vatNumber}` → `{"isValid", "userError", ...}`;
- `GET /rest-api/check-status` → each member state's availability.

A VAT ID is valid when it is in the registry (`REGISTRY`, plus what `register` adds), invalid
otherwise. Errors come as VIES sends them: `{"actionSucceed": false, "errorWrappers":
[{"error": "MS_UNAVAILABLE", "message": ...}]}`, HTTP 400 for the caller's mistakes
(`INVALID_INPUT`, `INVALID_REQUESTER_INFO`), 200 for a member state or VIES being unavailable
or busy. Switches (methods, or `POST /_sandbox/...` with JSON): `fail` a member state (or `*`)
with an error code, `hang` every answer for some seconds (timeouts), `register`, `reset`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import secrets
import string
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/rest-api"
MEMBER_STATES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
    }
)  # fmt: skip
NOT_SHARED = "---"
MESSAGES = {
    "INVALID_INPUT": "The provided CountryCode is invalid or the VAT number is empty",
    "INVALID_REQUESTER_INFO": "The requester information is invalid",
    "SERVICE_UNAVAILABLE": "An error was encountered either at the network level or the Web "
    "application level",
    "MS_UNAVAILABLE": "The application at the Member State is not replying or not available",
    "TIMEOUT": "The application did not receive a reply within the allocated time period",
    "MS_MAX_CONCURRENT_REQ": "The maximum number of concurrent requests for this Member State "
    "has been reached",
    "GLOBAL_MAX_CONCURRENT_REQ": "The maximum number of concurrent requests has been reached",
}
CALLER_ERRORS = {"INVALID_INPUT", "INVALID_REQUESTER_INFO"}

# The registered traders (all made up; each number passes its country's check digits). German
# and Spanish registries do not share names and addresses through VIES, so neither does this.
REGISTRY: dict[str, tuple[str, str]] = {
    # The demo's seller (SELLER_VAT_ID under `make run`, and the tests' requester).
    "DE123456788": (NOT_SHARED, NOT_SHARED),
    # The demo's and the tests' French business.
    "FR44732829320": ("EXEMPLE SARL", "12 RUE DE LA PAIX\n75002 PARIS"),
    "NL123456782B01": ("VOORBEELD B.V.", "DAMRAK 1\n1012LG AMSTERDAM"),
    "ATU12345675": ("BEISPIEL GMBH", "RINGSTRASSE 1\nAT-1010 WIEN"),
    "IT01234560017": ("ESEMPIO S.R.L.", "VIA ROMA 1\n00184 ROMA RM"),
    "ESA12345674": (NOT_SHARED, NOT_SHARED),
}


class ViesSandbox:
    """One stand-in: its registry, switches and HTTP server on a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}{PREFIX}"
        self._release = threading.Event()
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.reset()

    def start(self) -> ViesSandbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- switches ------------------------------------------------------------------------

    def reset(self) -> None:
        """The registry as shipped, every member state answering at once, no requests seen."""
        with self.lock:
            self.registry = dict(REGISTRY)
            self.failing: dict[str, str] = {}
            self.hang_seconds = 0.0
            self.requests: list[dict] = []
            self._release.set()
            self._release = threading.Event()

    def register(self, vat_id: str, name: str = NOT_SHARED, address: str = NOT_SHARED) -> None:
        with self.lock:
            self.registry[vat_id.upper()] = (name, address)

    def fail(self, country: str, error: str | None = "MS_UNAVAILABLE") -> None:
        """Answer `error` for `country` (`*`: every one) until called with error None."""
        with self.lock:
            if error:
                self.failing[country.upper()] = error
            else:
                self.failing.pop(country.upper(), None)

    def hang(self, seconds: float) -> None:
        """Wait `seconds` before each answer (0 ends it, and frees those waiting now)."""
        with self.lock:
            self.hang_seconds = seconds
            if not seconds:
                self._release.set()
                self._release = threading.Event()

    # -- answers -------------------------------------------------------------------------

    def wait_if_hanging(self) -> None:
        with self.lock:
            seconds, release = self.hang_seconds, self._release
        if seconds:
            release.wait(seconds)

    def check(self, body: dict) -> tuple[int, dict]:
        """POST check-vat-number."""
        country = str(body.get("countryCode") or "").upper()
        number = _clean(body.get("vatNumber"))
        requester = (body.get("requesterMemberStateCode"), body.get("requesterNumber"))
        with self.lock:
            self.requests.append(dict(body))
            error = self._error(country, number)
            if not error and any(requester):
                requester_id = f"{str(requester[0] or '').upper()}{_clean(requester[1])}"
                if not all(requester) or requester_id not in self.registry:
                    error = "INVALID_REQUESTER_INFO"
            if error:
                status = HTTPStatus.BAD_REQUEST if error in CALLER_ERRORS else HTTPStatus.OK
                return status, _error_body(error)
            name, address = self.registry.get(country + number, (NOT_SHARED, NOT_SHARED))
            valid = country + number in self.registry
        return HTTPStatus.OK, {
            "countryCode": country,
            "vatNumber": number,
            "requestDate": _now(),
            "valid": valid,
            "requestIdentifier": _consultation_number() if any(requester) else "",
            "name": name,
            "address": address,
            "traderName": NOT_SHARED,
            "traderStreet": NOT_SHARED,
            "traderPostalCode": NOT_SHARED,
            "traderCity": NOT_SHARED,
            "traderCompanyType": NOT_SHARED,
            "traderNameMatch": "NOT_PROCESSED",
            "traderStreetMatch": "NOT_PROCESSED",
            "traderPostalCodeMatch": "NOT_PROCESSED",
            "traderCityMatch": "NOT_PROCESSED",
            "traderCompanyTypeMatch": "NOT_PROCESSED",
        }

    def lookup(self, country: str, number: str) -> tuple[int, dict]:
        """GET ms/{cc}/vat/{number}: the same answer in the shape of VIES's own web page."""
        country, number = country.upper(), _clean(number)
        with self.lock:
            self.requests.append({"countryCode": country, "vatNumber": number})
            error = self._error(country, number)
            valid = not error and country + number in self.registry
            name, address = self.registry.get(country + number, (NOT_SHARED, NOT_SHARED))
        if error in CALLER_ERRORS:
            return HTTPStatus.BAD_REQUEST, _error_body(error)
        return HTTPStatus.OK, {
            "isValid": valid,
            "requestDate": _now(),
            "userError": error or ("VALID" if valid else "INVALID"),
            "name": name if valid else NOT_SHARED,
            "address": address if valid else NOT_SHARED,
            "requestIdentifier": "",
            "originalVatNumber": number,
            "vatNumber": number,
            "viesApproximate": {
                "name": NOT_SHARED,
                "street": NOT_SHARED,
                "postalCode": NOT_SHARED,
                "city": NOT_SHARED,
                "companyType": NOT_SHARED,
                "matchName": 3,
                "matchStreet": 3,
                "matchPostalCode": 3,
                "matchCity": 3,
                "matchCompanyType": 3,
            },
        }

    def status(self) -> dict:
        with self.lock:
            down = set(self.failing)
        return {
            "vow": {"available": "*" not in down},
            "countries": [
                {
                    "countryCode": cc,
                    "availability": "Unavailable" if {cc, "*"} & down else "Available",
                }
                for cc in sorted(MEMBER_STATES)
            ],
        }

    def _error(self, country: str, number: str) -> str:
        if country not in MEMBER_STATES or not re.fullmatch(r"[0-9A-Z+*]{2,12}", number):
            return "INVALID_INPUT"
        return self.failing.get(country) or self.failing.get("*") or ""


def _clean(value: Any) -> str:
    return re.sub(r"[\s.\-]", "", str(value or "")).upper()


def _now() -> str:
    now = datetime.datetime.now(tz=datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _consultation_number() -> str:
    alphabet = string.ascii_letters + string.digits
    return "WAPI" + "".join(secrets.choice(alphabet) for _ in range(12))


def _error_body(error: str) -> dict:
    return {
        "actionSucceed": False,
        "errorWrappers": [{"error": error, "message": MESSAGES.get(error, error)}],
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "vies-sandbox/1"

    @property
    def sandbox(self) -> ViesSandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        if path == "/_sandbox/requests":
            with self.sandbox.lock:
                seen = list(self.sandbox.requests)
            return self._send(HTTPStatus.OK, seen)
        if path == f"{PREFIX}/check-status":
            self.sandbox.wait_if_hanging()
            return self._send(HTTPStatus.OK, self.sandbox.status())
        match = re.fullmatch(rf"{PREFIX}/ms/([^/]+)/vat/([^/]+)", path)
        if match:
            self.sandbox.wait_if_hanging()
            return self._send(*self.sandbox.lookup(match[1], match[2]))
        self._send(HTTPStatus.NOT_FOUND, {"error": f"no route for GET {path}"})

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._send(HTTPStatus.BAD_REQUEST, _error_body("INVALID_INPUT"))
        if path == f"{PREFIX}/check-vat-number":
            self.sandbox.wait_if_hanging()
            return self._send(*self.sandbox.check(body))
        controls = {
            "/_sandbox/reset": lambda: self.sandbox.reset(),
            "/_sandbox/register": lambda: self.sandbox.register(
                body["vat_id"], body.get("name", NOT_SHARED), body.get("address", NOT_SHARED)
            ),
            "/_sandbox/fail": lambda: self.sandbox.fail(
                body.get("country", "*"), body.get("error", "MS_UNAVAILABLE")
            ),
            "/_sandbox/hang": lambda: self.sandbox.hang(float(body.get("seconds", 0))),
        }
        if path in controls:
            try:
                controls[path]()
            except (KeyError, TypeError, ValueError) as error:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": f"bad control: {error}"})
            return self._send(HTTPStatus.OK, {"ok": True})
        self._send(HTTPStatus.NOT_FOUND, {"error": f"no route for POST {path}"})

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up waiting (a timeout test)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.vies")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the stand-in until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=12112)
    args = parser.parse_args()
    sandbox = ViesSandbox(args.host, args.port)
    print(f"[vies] VIES stand-in on {sandbox.url}", flush=True)
    try:
        sandbox.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.httpd.server_close()


if __name__ == "__main__":
    main()
