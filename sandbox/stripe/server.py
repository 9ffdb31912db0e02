"""The HTTP side: `/v1` (Bearer key, form parameters, Idempotency-Key, Stripe error objects), the
pages a person sees, and `/_sandbox` controls (clock, webhook endpoint, deliveries, paying a
checkout session without a browser). `StripeSandbox` runs it all on a background thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import pages
from .api import Api, decode_params
from .billing import Billing
from .faults import BODIES, Faults
from .store import DEFAULT_SETTINGS, Store, StripeError
from .webhooks import Deliverer

CONTROL = "/_sandbox"


class StripeSandbox:
    """One sandbox: its objects, clock, webhook deliverer and HTTP server."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sk_test_sandbox",
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_sandbox",
        retry_base: float = 2.0,
        public_url: str | None = None,
        state_file: Path | None = None,
    ):
        self.api_key = api_key
        self.store = Store()
        # With a state file, objects survive a restart (the demo); tests keep it all in memory.
        self.state_file = state_file
        if state_file is not None:
            self.store.load(state_file)
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.sandbox = self  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.billing = Billing(self.store, public_url or self.url)
        self.api = Api(self.store, self.billing)
        self.faults = Faults()
        self.webhooks = Deliverer(webhook_url, webhook_secret, retry_base)
        self.store.on_event = self.webhooks.enqueue
        self.store.webhook_enabled = self.webhooks.enabled
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> StripeSandbox:
        self.webhooks.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.webhooks.stop()

    def serve_forever(self) -> None:
        self.webhooks.start()
        self.httpd.serve_forever()

    # -- controls (also over HTTP under /_sandbox) ---------------------------------------

    def now(self) -> int:
        return self.store.now()

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        self.webhooks.configure(url, secret)

    def advance(self, seconds: float) -> int:
        with self.store.lock:
            return self.billing.advance(seconds)

    def pay(
        self, session_id: str, card_number: str, *, authenticate: bool = True, **card: str
    ) -> dict:
        """Pay a checkout session as the hosted page would; card errors raise StripeError.
        `authenticate=False`: the customer leaves a 3-D Secure challenge unanswered."""
        with self.store.lock:
            session = self.store.get(session_id, "checkout.session")
            return self.billing.pay_checkout(
                session, card_number, authenticate=authenticate, **card
            )

    def pay_sepa(self, session_id: str, iban: str, name: str = "Test Account") -> dict:
        """Pay a checkout session by SEPA Direct Debit; it settles SEPA_SETTLE_SECONDS later
        on the sandbox clock (advance() to it)."""
        with self.store.lock:
            session = self.store.get(session_id, "checkout.session")
            return self.billing.pay_checkout_sepa(session, iban, name)

    def authenticate(self, session_id: str, complete: bool = True) -> dict:
        """Answer the 3-D Secure challenge of a session's card (False: it fails)."""
        with self.store.lock:
            session = self.store.get(session_id, "checkout.session")
            return self.billing.authenticate_checkout(session, complete=complete)

    def configure(self, **settings: object) -> dict:
        """Account settings (store.DEFAULT_SETTINGS): subscription_retries_end ("unpaid",
        "cancel", "past_due"), refund_outcome ("succeeded", "pending_succeeds",
        "pending_fails"), refund_delay (seconds)."""
        allowed = {
            "subscription_retries_end": ("unpaid", "cancel", "past_due"),
            "refund_outcome": ("succeeded", "pending_succeeds", "pending_fails"),
        }
        with self.store.lock:
            for name, value in settings.items():
                if name not in DEFAULT_SETTINGS:
                    raise StripeError(f"Unknown sandbox setting: {name}", param=name)
                if name in allowed and value not in allowed[name]:
                    raise StripeError(
                        f"{name} must be one of {', '.join(allowed[name])}", param=name
                    )
                self.store.settings[name] = int(value) if name == "refund_delay" else value
            return dict(self.store.settings)

    def set_delivery_order(
        self, shuffle: bool = False, concurrency: int = 1, seed: int | None = None
    ) -> None:
        """Webhook deliveries in random order and/or several at once, as Stripe may."""
        self.webhooks.configure_order(shuffle, concurrency, seed)

    def pay_invoice(self, invoice_id: str, card_number: str = "") -> dict:
        """Pay an open invoice as its hosted page would: with a new card, or (no number) the
        card on file with its 3-D Secure challenge completed. Card errors raise StripeError."""
        with self.store.lock:
            invoice = self.store.get(invoice_id, "invoice")
            self.billing.pay_on_page(invoice, card_number, "12 / 34" if card_number else "", "123")
            return invoice

    def dispute(self, charge_id: str, reason: str = "fraudulent") -> dict:
        """The cardholder disputes a charge: amount and dispute fee are withdrawn at once."""
        with self.store.lock:
            return self.billing.dispute(self.store.get(charge_id, "charge"), reason)

    def close_dispute(self, dispute_id: str, outcome: str) -> dict:
        """The dispute is decided: won (the amount comes back) or lost."""
        with self.store.lock:
            return self.billing.close_dispute(self.store.get(dispute_id, "dispute"), outcome)

    def fail_payout(self, payout_id: str, code: str = "account_closed") -> dict:
        """The bank returns a paid payout: it fails, and its amount is back in the balance."""
        with self.store.lock:
            return self.billing.fail_payout(self.store.get(payout_id, "payout"), code)

    def deliveries(self) -> list[dict]:
        return self.webhooks.deliveries()

    def wait_for_deliveries(self, timeout: float = 10) -> None:
        self.webhooks.wait_idle(timeout)

    def pause_deliveries(self) -> None:
        self.webhooks.pause(True)

    def resume_deliveries(self) -> None:
        self.webhooks.pause(False)

    def inject_fault(
        self,
        path: str,
        status: int = 500,
        count: int = 1,
        method: str | None = None,
        delay: float = 0.0,
        lose_answer: bool = False,
    ) -> None:
        """The next `count` requests to `path` (exact, or a prefix ending in "*") answer
        `status` (500, 503 or 429; 0: none), after `delay` seconds; `lose_answer` (status 0):
        they run, and the connection closes without an answer."""
        self.faults.inject(path, status, count, method, delay, lose_answer)

    def reset(self) -> None:
        self.faults.clear()
        self.webhooks.clear()
        self.webhooks.configure_order()
        with self.store.lock:
            self.store.clear()
            self.store.offset = 0.0
            self.store.last_payout_day = self.store.now() // 86400


class _Handler(BaseHTTPRequestHandler):
    server_version = "stripe-sandbox"
    protocol_version = "HTTP/1.1"

    @property
    def sandbox(self) -> StripeSandbox:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # quiet; the portal's own logs tell the story

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        query = "&".join(q for q in (parts.query, body) if q)
        path = parts.path
        try:
            if path.startswith("/v1/"):
                self._api(method, path, query)
            elif path.startswith(CONTROL + "/"):
                self._control(method, path, query, body)
            else:
                self._page(method, path, parse_qs(body))
        except StripeError as error:
            self._json(error.status, {"error": error.body})
        finally:
            if method != "GET" and self.sandbox.state_file is not None:
                self.sandbox.store.save(self.sandbox.state_file)

    def _send(self, status: int, content: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(content)

    def _json(self, status: int, body: Any, **headers: str) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", **headers)

    def _html(self, status: int, html: str) -> None:
        self._send(status, html.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", Location=location)

    def _authorised(self) -> None:
        header = self.headers.get("Authorization", "")
        key = header[7:] if header.startswith("Bearer ") else ""
        if key != self.sandbox.api_key:
            shown = (key[:8] + "*" * max(0, len(key) - 12) + key[-4:]) if key else ""
            raise StripeError(
                f"Invalid API Key provided: {shown}" if key else "You did not provide an API key.",
                status=401,
                type="invalid_request_error",
            )

    # -- /v1 -----------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str) -> None:
        self._authorised()
        request_id = "req_" + secrets.token_hex(7)
        fault = self.sandbox.faults.take(method, path)
        if fault and fault.status:
            time.sleep(fault.delay)
            headers = {"Stripe_Should_Retry": "true"}
            if fault.status == 429:
                headers["Retry_After"] = "1"
            self._json(
                fault.status,
                {"error": dict(BODIES[fault.status])},
                Request_Id=request_id,
                **headers,
            )
            return
        params = decode_params(query)
        store = self.sandbox.store
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = hashlib.sha256(f"{method} {path}?{query}".encode()).hexdigest()
        if key:
            with store.lock:
                seen = store.idempotency.get(key)
                running = key in store.in_flight
                if seen is None and not running:
                    store.in_flight.add(key)
            if running:
                # Stripe holds a key while its first request runs: a second one meanwhile
                # is refused (409), never run twice nor answered with a half-made result.
                raise StripeError(
                    "There is currently another in-progress request using this idempotency "
                    f"key ('{key}'); it probably means the request was sent twice and the "
                    "first is still running. Try again later.",
                    status=409,
                    type="idempotency_error",
                )
            if seen is not None:
                if seen[0] != fingerprint:
                    raise StripeError(
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                if not self._answer_lost(fault):
                    self._json(seen[1], seen[2], Request_Id=request_id, Idempotent_Replayed="true")
                return
        store.request.id, store.request.idempotency_key = request_id, key
        status, body = 500, {"error": dict(BODIES[500])}
        try:
            if fault and fault.delay:
                time.sleep(fault.delay)  # a slow request: its key stays in flight meanwhile
            status, body = self.sandbox.api.handle(method, path, params)
        except StripeError as error:
            status, body = error.status, {"error": error.body}
        finally:
            store.request.id = store.request.idempotency_key = None
            if key:
                with store.lock:
                    store.in_flight.discard(key)
                    # A request refused before it ran (400: parameters) is not kept under its
                    # key, as on Stripe; nor are server errors.
                    if status < 500 and status != 400:
                        store.idempotency[key] = (fingerprint, status, body)
        if not self._answer_lost(fault):
            self._json(status, body, Request_Id=request_id)

    def _answer_lost(self, fault: Any) -> bool:
        """The request ran, but its answer never reaches the client: the connection closes."""
        if fault is None or not fault.lose_answer:
            return False
        self.close_connection = True
        return True

    # -- pages ---------------------------------------------------------------------------

    def _page(self, method: str, path: str, form: dict[str, list[str]]) -> None:
        sandbox, store = self.sandbox, self.sandbox.store
        field = {name: values[0] for name, values in form.items()}
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if match := re.fullmatch(r"/c/pay/([\w]+)(/authenticate)?", path):
            with store.lock:
                session = store.get(match[1], "checkout.session")
                sandbox.billing.expire_if_due(session)
                challenged = pages.checkout_challenge(sandbox.billing, session)
                if method == "GET":
                    self._html(200, challenged or pages.checkout(sandbox.billing, session))
                    return
                try:
                    if match[2]:
                        sandbox.billing.authenticate_checkout(
                            session, complete=field.get("result") == "complete"
                        )
                    elif field.get("iban"):
                        sandbox.billing.pay_checkout_sepa(
                            session, field["iban"], field.get("name") or None
                        )
                    else:
                        sandbox.billing.pay_checkout(
                            session,
                            field.get("card_number", ""),
                            field.get("expiry", ""),
                            field.get("cvc", ""),
                            field.get("name") or None,
                            # A person at the page answers the bank's challenge next.
                            authenticate=False,
                        )
                    if session["status"] == "open":  # the bank's challenge comes next
                        self._redirect(f"/c/pay/{session['id']}/authenticate")
                        return
                except StripeError as error:
                    # The page answers 200 with the message, as Stripe's own page shows a
                    # decline in place (the API answers 402 for the same card).
                    in_place = error.body.get("type") == "card_error" or error.body.get("param")
                    status = 200 if in_place else 400
                    kept = {k: field.get(k, "") for k in ("expiry", "cvc", "name")}
                    html = pages.checkout(
                        sandbox.billing, session, error=error.body["message"], form=kept
                    )
                    self._html(status, html)
                    return
                target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
            self._redirect(target)
            return
        if (match := re.fullmatch(r"/i/([\w]+)/pay", path)) and method == "POST":
            with store.lock:
                invoice = store.get(match[1], "invoice")
                try:
                    sandbox.billing.pay_on_page(
                        invoice,
                        field.get("card_number", ""),
                        field.get("expiry", ""),
                        field.get("cvc", ""),
                    )
                except StripeError as error:
                    html = pages.invoice(sandbox.billing, invoice, error=error.body["message"])
                    self._html(200 if error.body.get("type") == "card_error" else 400, html)
                    return
            self._redirect(f"/i/{invoice['id']}")
            return
        if match := re.fullmatch(r"/i/([\w]+)(/pdf)?", path):
            with store.lock:
                invoice = store.get(match[1], "invoice")
                if match[2]:
                    self._send(200, pages.invoice_pdf(invoice), "application/pdf")
                else:
                    self._html(200, pages.invoice(sandbox.billing, invoice))
            return
        if match := re.fullmatch(r"/p/session/([\w]+)(/card)?", path):
            with store.lock:
                session = store.get(match[1], "billing_portal.session")
                if match[2] and method == "POST":
                    customer = store.get(session["customer"], "customer")
                    try:
                        sandbox.billing.replace_card(
                            customer,
                            field.get("card_number", ""),
                            field.get("expiry", ""),
                            field.get("cvc", ""),
                            None,
                        )
                    except StripeError as error:
                        html = pages.portal(sandbox.billing, session, error=error.body["message"])
                        self._html(200, html)
                        return
                    self._html(200, pages.portal(sandbox.billing, session, notice="Card saved."))
                    return
                self._html(200, pages.portal(sandbox.billing, session))
            return
        self._html(404, pages.document("Not found", "<h1>Not found</h1>"))

    # -- /_sandbox -----------------------------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: str) -> None:
        self._authorised()
        sandbox = self.sandbox
        params = json.loads(body) if body.lstrip().startswith("{") else decode_params(query)
        route = path[len(CONTROL) :]
        if route == "/clock" and method == "GET":
            self._json(200, {"now": sandbox.now()})
        elif route == "/clock/advance" and method == "POST":
            seconds = float(params.get("seconds") or 0) + float(params.get("days") or 0) * 86400
            if seconds <= 0:
                raise StripeError("Give seconds or days greater than 0.", param="seconds")
            self._json(200, {"now": sandbox.advance(seconds)})
        elif route == "/webhook_endpoint" and method == "POST":
            sandbox.set_webhook(params.get("url") or None, params.get("secret") or None)
            self._json(200, {"url": sandbox.webhooks.url})
        elif route == "/deliveries" and method == "GET":
            self._json(200, {"data": sandbox.deliveries()})
        elif (match := re.fullmatch(r"/checkout/([\w]+)/pay", route)) and method == "POST":
            if params.get("iban"):
                self._json(200, sandbox.pay_sepa(match[1], params["iban"]))
            else:
                authenticate = str(params.get("authenticate", "true")).lower() != "false"
                card = params.get("card_number", "")
                self._json(200, sandbox.pay(match[1], card, authenticate=authenticate))
        elif (match := re.fullmatch(r"/checkout/([\w]+)/authenticate", route)) and method == "POST":
            complete = str(params.get("result", "complete")) == "complete"
            self._json(200, sandbox.authenticate(match[1], complete))
        elif route == "/settings" and method in ("GET", "POST"):
            self._json(
                200, sandbox.configure(**params) if method == "POST" else sandbox.configure()
            )
        elif route == "/faults" and method == "POST":
            if not params.get("path"):
                raise StripeError("Give the path (exact, or a prefix ending in *).", param="path")
            try:
                sandbox.inject_fault(
                    params["path"],
                    int(params.get("status", 500)),
                    int(params.get("count", 1)),
                    params.get("method") or None,
                    float(params.get("delay", 0)),
                    str(params.get("lose_answer", "false")).lower() == "true",
                )
            except ValueError as error:
                raise StripeError(str(error), param="status") from None
            self._json(200, {"faults": len(sandbox.faults.pending)})
        elif route == "/webhook_order" and method == "POST":
            seed = params.get("seed")
            try:
                sandbox.set_delivery_order(
                    str(params.get("shuffle", "false")).lower() == "true",
                    int(params.get("concurrency", 1)),
                    None if seed in (None, "") else int(seed),
                )
            except ValueError as error:
                raise StripeError(str(error), param="concurrency") from None
            self._json(
                200,
                {"shuffle": sandbox.webhooks.shuffle, "concurrency": sandbox.webhooks.concurrency},
            )
        elif (match := re.fullmatch(r"/charges/([\w]+)/dispute", route)) and method == "POST":
            self._json(200, sandbox.dispute(match[1], params.get("reason") or "fraudulent"))
        elif (match := re.fullmatch(r"/disputes/([\w]+)/close", route)) and method == "POST":
            self._json(200, sandbox.close_dispute(match[1], params.get("status") or ""))
        elif (match := re.fullmatch(r"/payouts/([\w]+)/fail", route)) and method == "POST":
            self._json(200, sandbox.fail_payout(match[1], params.get("code") or "account_closed"))
        elif (match := re.fullmatch(r"/invoices/([\w]+)/pay", route)) and method == "POST":
            self._json(200, sandbox.pay_invoice(match[1], params.get("card_number", "")))
        else:
            raise StripeError(f"Unknown sandbox control: {method} {path}", status=404)
