"""Browser tests: Debian's Chromium driven by pytest-playwright against pytest-django's live_server.

The `page` fixture here replaces pytest-playwright's: the same page, but the test fails when the
browser reports a console error, an uncaught exception or a Content-Security-Policy violation.
Those are exactly the breakages (a missing nonce, an inline style, a 404 asset) that server-side
tests cannot see.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page

# Playwright's sync API drives the browser from an asyncio loop running in this thread, and Django
# refuses ORM calls while a loop is running (SynchronousOnlyOperation). The test code itself is
# plain synchronous code that only shares the thread with that loop, so the check is relaxed.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

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
    # Conftest hooks see the whole session's items, not just this directory's.
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


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

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            errors.append(f"console error: {message.text} ({location.get('url', '?')})")

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught exception: {error.message}")

    page.add_init_script(REPORT_CSP_VIOLATIONS)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)

    yield page

    _let_pending_events_arrive(page)
    if errors:
        listing = "\n".join(f"  - {error}" for error in errors)
        pytest.fail(f"the browser reported {len(errors)} error(s):\n{listing}", pytrace=False)


def _let_pending_events_arrive(page: Page) -> None:
    # securitypolicyviolation is dispatched as a queued task, so a violation from the test's last
    # action may still be on its way. One trip through the page's task queue delivers it first.
    if page.is_closed():
        return
    # If the page is mid-navigation, whatever the old document reported has already arrived.
    with contextlib.suppress(Error):
        page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
