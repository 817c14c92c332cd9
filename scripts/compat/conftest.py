"""A real relay with simulated phones for the published SMS Gateway for Android clients.

`simrelay serve` (SQLite in a temporary directory, a free loopback port) and `simrelay
sim-phones` (the real phone core on a simulated radio, with an end-to-end passphrase and an
echo number that answers every SMS sent to it) are started once per session. A webhook
receiver on 127.0.0.1 records what the relay posts. Nothing here sleeps: readiness comes from
the processes' own output, and deliveries are awaited on a condition variable.
"""

import http.server
import json
import os
import secrets
import subprocess
import threading
import urllib.request

import pytest

PASSPHRASE = "correct horse battery staple"
ECHO_PREFIX = "+1555019"
ECHO_NUMBER = ECHO_PREFIX + "0001"
PHONES = 3
TIMEOUT = 60


class Receiver:
    """Records webhook deliveries: (headers, raw body bytes)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.got = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                with receiver.cond:
                    receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.cond.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, pred, timeout=TIMEOUT):
        """The first delivery (headers, body, parsed JSON) for which `pred(json)` holds."""
        def find():
            for h, b in self.got:
                j = json.loads(b)
                if pred(j):
                    return h, b, j
            return None

        with self.cond:
            found = self.cond.wait_for(find, timeout=timeout)
        assert found, "no matching webhook delivery arrived"
        return found


class Relay:
    def __init__(self, url, key, login, password):
        self.url = url
        self.base = url + "/3rdparty/v1"
        self.key = key
        self.login = login
        self.password = password

    def native(self, method, path, body=None):
        """A call to the relay's own API with the account's key."""
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "authorization": f"Bearer {self.key}",
                "content-type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            text = r.read()
            return json.loads(text) if text else None


def _read_until(stream, marker):
    for line in stream:
        if marker in line:
            return line
    raise AssertionError(f"the process ended before printing {marker!r}")


@pytest.fixture(scope="session")
def relay(tmp_path_factory):
    binary = os.environ["SIMRELAY_BIN"]
    d = tmp_path_factory.mktemp("relay")
    cfg = d / "relay.toml"
    cfg.write_text('webhook_allow_cidrs = ["127.0.0.0/8"]\nwebhook_backoff_ms = 100\n')
    key = secrets.token_hex(32)
    logs = open(d / "relay.log", "w")
    serve = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data", str(d / "data"),
         "--api-key", key, "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=logs, text=True,
    )
    phones = None
    try:
        url = _read_until(serve.stdout, "listening on").split()[-1]
        threading.Thread(target=serve.stdout.read, daemon=True).start()
        r = Relay(url, key, "qa-user@example.com", "a-long-password-1234")
        r.native("POST", "/v1/users", {"login": r.login, "password": r.password})
        phones = subprocess.Popen(
            [binary, "sim-phones", "--relay", url, "--count", str(PHONES),
             "--data", str(d / "phones"), "--api-key", key,
             "--passphrase", PASSPHRASE, "--echo-prefix", ECHO_PREFIX],
            stdout=open(d / "phones.out", "w"), stderr=open(d / "phones.log", "w"),
        )
        yield r
    finally:
        for p in (phones, serve):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)
        logs.close()


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
