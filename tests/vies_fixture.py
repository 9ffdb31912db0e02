"""The VIES stand-in for the tests: one server per session, every test pointed at it.

No test may reach the real VIES, so `vies` is autouse: each test starts with the stand-in's
registry as shipped, every member state answering, and the demo seller as requester.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.vies import ViesSandbox

SELLER_VAT_ID = "DE123456788"  # registered in the stand-in


@pytest.fixture(scope="session")
def vies_sandbox() -> Iterator[ViesSandbox]:
    sandbox = ViesSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(autouse=True)
def vies(vies_sandbox: ViesSandbox, settings) -> Iterator[ViesSandbox]:
    vies_sandbox.reset()
    settings.VIES_API_BASE = vies_sandbox.url
    settings.SELLER_VAT_ID = SELLER_VAT_ID
    yield vies_sandbox
    vies_sandbox.reset()  # frees a request a test left hanging
