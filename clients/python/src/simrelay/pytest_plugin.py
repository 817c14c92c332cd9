"""pytest fixtures for QA teams (loaded by pytest through the `pytest11` entry point).

`simrelay_client`: a `Client` for the relay named by `SIMRELAY_URL` / `SIMRELAY_KEY` (one per
session). `wait_for_sms`: a callable `wait_for_sms(contains=..., from_=..., timeout=...)`
that returns the `InboxSms` or raises `simrelay.WaitTimeout` (a `TimeoutError`) when none
came in time.
Override `simrelay_client` in a conftest.py to point the fixtures elsewhere.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional, Protocol

import pytest

from .client import Client, Time
from .types import InboxSms


class WaitForSms(Protocol):
    """The type of the `wait_for_sms` fixture."""

    def __call__(
        self,
        contains: Optional[str] = None,
        from_: Optional[str] = None,
        timeout: float = 60.0,
        *,
        since: Optional[Time] = None,
    ) -> InboxSms: ...


@pytest.fixture(scope="session")
def simrelay_client() -> Iterator[Client]:
    """A `Client` from `SIMRELAY_URL` and `SIMRELAY_KEY`."""
    missing = [v for v in ("SIMRELAY_URL", "SIMRELAY_KEY") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"simrelay fixtures need {' and '.join(missing)} in the environment", pytrace=False)
    with Client() as c:
        yield c


@pytest.fixture
def wait_for_sms(simrelay_client: Client) -> WaitForSms:
    """`wait_for_sms(contains=None, from_=None, timeout=60, since=None) -> InboxSms`.

    The newest received SMS matching the filters, stored at or after `since` (default: a
    minute before the call, the relay's look-back). Raises `simrelay.WaitTimeout` (a
    `TimeoutError`) when none arrived within `timeout` seconds, which fails the test.
    """

    def wait(
        contains: Optional[str] = None,
        from_: Optional[str] = None,
        timeout: float = 60.0,
        *,
        since: Optional[Time] = None,
    ) -> InboxSms:
        return simrelay_client.wait_for_sms(contains=contains, from_=from_, timeout=timeout, since=since)

    return wait
