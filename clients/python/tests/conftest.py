"""A live relay for the client's tests: `simrelay serve` (SQLite in a temporary directory, a
free loopback port) and `simrelay sim-phones` (the real phone core on a simulated radio, with
an echo number that answers every SMS sent to it), started once per session from
`SIMRELAY_BIN`, as scripts/compat/conftest.py does. The relay's configuration lets webhooks
reach 127.0.0.1 (`webhook_allow_cidrs`), where the webhook tests' receiver listens. Nothing
sleeps: readiness comes from the
relay's own output, and the tests wait through the client's own waits.

The session sets `SIMRELAY_URL` and `SIMRELAY_KEY`, so the plugin's fixtures
(`simrelay_client`, `wait_for_sms`) point at this relay.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from dataclasses import dataclass
from typing import IO, Iterator

import pytest

pytest_plugins = ["pytester"]

ECHO_PREFIX = "+1555019"
ECHO_NUMBER = ECHO_PREFIX + "0001"
PHONES = 2


@dataclass(frozen=True)
class Relay:
    url: str
    key: str
    binary: str


def read_until(stream: IO[str], marker: str) -> str:
    for line in stream:
        if marker in line:
            return line
    raise AssertionError(f"the process ended before printing {marker!r}")


@pytest.fixture(scope="session", autouse=True)
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    binary = os.environ.get("SIMRELAY_BIN")
    if not binary:
        pytest.exit("set SIMRELAY_BIN to a simrelay binary (scripts/python-client.sh does)", 2)
    d = tmp_path_factory.mktemp("relay")
    key = secrets.token_hex(32)
    logs = open(d / "relay.log", "w")
    config = d / "relay.toml"
    config.write_text('webhook_allow_cidrs = ["127.0.0.1"]\n')
    serve = subprocess.Popen(
        [binary, "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--data", str(d / "data"),
         "--api-key", key],
        stdout=subprocess.PIPE, stderr=logs, text=True,
    )
    phones = None
    try:
        assert serve.stdout is not None
        url = read_until(serve.stdout, "listening on").split()[-1]
        threading.Thread(target=serve.stdout.read, daemon=True).start()
        phones = subprocess.Popen(
            [binary, "sim-phones", "--relay", url, "--count", str(PHONES),
             "--data", str(d / "phones"), "--api-key", key, "--echo-prefix", ECHO_PREFIX],
            stdout=open(d / "phones.out", "w"), stderr=open(d / "phones.log", "w"),
        )
        env = pytest.MonkeyPatch()
        env.setenv("SIMRELAY_URL", url)
        env.setenv("SIMRELAY_KEY", key)
        try:
            yield Relay(url, key, binary)
        finally:
            env.undo()
    finally:
        for p in (phones, serve):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
        logs.close()
