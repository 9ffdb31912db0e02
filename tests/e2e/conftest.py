"""Browser tests: Debian's Chromium driven by pytest-playwright against pytest-django's live_server.

The `page` fixture here replaces pytest-playwright's: the same page, but the test fails when the
browser reports a console error, an uncaught exception or a Content-Security-Policy violation.
Those are exactly the breakages (a missing nonce, an inline style, a 404 asset) that server-side
tests cannot see.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from playwright.sync_api import ConsoleMessage, Error, Page, Playwright, Request

from portal.celery import app as celery_app

ALLOW_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
# A request still running this long after the test (a long poll) is not waited for.
SETTLE_TIMEOUT_SECONDS = 5
E2E_DIR = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # No calls home: the tests must not depend on, or wait for, anything but the live server.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

# Runs in every document before the page's own scripts; init scripts are not subject to the
# page's CSP. Routing violations through console.error puts them in the same list as every other
# browser error, and survives navigations (a window-level list would be reset by each new page).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(
    `CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`
  );
}, true);
"""


def pytest_collection_modifyitems(config, items):
    """Mark the browser tests and run them after all others.

    Once Playwright has started, its event loop counts as running in the main thread until the
    session ends (see the `playwright` fixture below), so the tests that follow it would need
    Django's async-safety check switched off too. Running last keeps that switch away from them.
    Conftest hooks see the whole session's items, not just this directory's.
    """
    e2e = [item for item in items if E2E_DIR in item.path.parents]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    others = [item for item in items if E2E_DIR not in item.path.parents]
    items[:] = others + e2e


@pytest.fixture(scope="session")
def playwright(playwright: Playwright) -> Iterator[Playwright]:
    # Playwright's sync API keeps an asyncio loop marked as running in this thread, and Django
    # then refuses every ORM call from it (SynchronousOnlyOperation): the test's own setup, and
    # pytest-django's flush after each live_server test. Those calls are plain synchronous code
    # that merely shares the thread with the idle loop, so the check is relaxed, but only while
    # Playwright runs: set at import time it would leak into every test of the session and into
    # the subprocesses they start (`check --deploy` rejects it as async.E001).
    previous = os.environ.get(ALLOW_ASYNC_UNSAFE)
    os.environ[ALLOW_ASYNC_UNSAFE] = "true"
    yield playwright
    if previous is None:
        del os.environ[ALLOW_ASYNC_UNSAFE]
    else:
        os.environ[ALLOW_ASYNC_UNSAFE] = previous


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    # Never `playwright install`: the system Chromium is the browser under test. Built on
    # pytest-playwright's own value so --headed and --slowmo still work when debugging locally.
    return {
        "headless": True,
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def page(page: Page) -> Iterator[Page]:
    errors: list[str] = []
    in_flight: set[Request] = set()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            url = message.location.get("url")
            errors.append(f"console error: {message.text}" + (f" ({url})" if url else ""))

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught exception: {error.message}")

    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    # Playwright wants Python functions as handlers, not bound builtins like set.add.
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))

    yield page

    _let_pending_events_arrive(page, in_flight)
    if errors:
        listing = "\n".join(f"  - {error}" for error in errors)
        pytest.fail(f"the browser reported {len(errors)} error(s):\n{listing}", pytrace=False)


def _let_pending_events_arrive(page: Page, in_flight: set[Request]) -> None:
    """Give errors caused by the test's last action the chance to be reported.

    A subresource the last action started (a stylesheet, an htmx request) reports its 404 only
    once its response is in, and securitypolicyviolation is dispatched as a queued task.
    """
    if page.is_closed():
        return
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while in_flight and time.monotonic() < deadline:
        # Unlike time.sleep, this lets Playwright deliver the events that empty the set.
        page.wait_for_timeout(20)
    # One trip through the page's task queue, behind any violation event queued before it. If the
    # page is mid-navigation, whatever the old document reported has already arrived.
    with contextlib.suppress(Error):
        page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")


@pytest.fixture
def worker(live_server, stripe_settings, world, settings) -> Iterator[None]:
    """A Celery worker for the test, and the sandbox's webhooks pointed at the live server."""
    settings.SITE_URL = live_server.url
    # What settings derive from STRIPE_API_BASE at start-up: the pages paying redirects to.
    csp = dict(settings.SECURE_CSP)
    csp["form-action"] = [*csp["form-action"], stripe_settings.url]
    settings.SECURE_CSP = csp
    settings.OPERATION_POLL = 0.1
    stripe_settings.set_webhook(f"{live_server.url}/billing/stripe/webhook/", "whsec_test_portal")
    celery_app.control.purge()  # messages other tests queued for nobody
    with start_worker(
        celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ):
        yield
    connections.close_all()
