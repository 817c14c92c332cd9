"""The client's calls beyond messages and the inbox (history, paging, pools, SIMs, webhooks,
keys, pairing codes, phone removal) against the live relay of conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from simrelay import (
    ApiKey,
    AsyncClient,
    Client,
    HistoryItem,
    InboxSms,
    Message,
    PairingCode,
    PhoneRemoval,
    Pool,
    PrefixRule,
    RemovedRecipients,
    SimLimits,
    SimRef,
    SimReport,
    SimrelayError,
    Webhook,
)

from conftest import ECHO_NUMBER, Relay, read_until

TIMEOUT = 60


def token() -> str:
    return secrets.token_hex(6)


def a_number() -> str:
    """A number no other test sends to (`to` filters find only this test's messages)."""
    return "+1555124" + "".join(secrets.choice("0123456789") for _ in range(4))


@pytest.fixture
def client(relay: Relay) -> Iterator[Client]:
    with Client(relay.url, relay.key) as c:
        yield c


def refused(status: int, code: str) -> Any:
    """`pytest.raises` for a refusal of the relay with this status and code."""
    return pytest.raises(SimrelayError, match=f"^{code} \\(HTTP {status}\\)")


def a_sim(client: Client) -> Tuple[str, int]:
    """A SIM (phone id, sub_id) of an online phone: a delivered message has one reporting."""
    m = client.send("+15551230010", "wake", id=f"wake-{token()}")
    client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
    phone = next(p for p in client.phones() if p.online and p.sims)
    return phone.id, phone.sims[0].sub_id


def test_message_history(client: Client) -> None:
    m = client.send("+15551230011", "history", id=f"history-{token()}")
    client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
    items = client.message_history(m.id)
    assert items and all(isinstance(h, HistoryItem) and h.idx == 0 for h in items)
    assert items[-1].state == "delivered"
    assert (items[-1].parts_sent, items[-1].parts_delivered) == (1, 1)
    assert [h.at for h in items] == sorted(h.at for h in items)
    with refused(404, "not_found"):
        client.message_history(f"missing-{token()}")


def test_iter_messages_follows_the_cursor(client: Client) -> None:
    since = datetime.now(timezone.utc)
    to = a_number()
    ids = [f"iter-{token()}" for _ in range(5)]
    for i in ids:
        client.send(to, "paged", id=i)
    got = list(client.iter_messages(since=since, to=to, limit=2))
    assert all(isinstance(m, Message) for m in got)
    assert [m.id for m in got] == ids
    assert [m.id for m in client.iter_messages(since=since, to=to)] == ids
    with refused(400, "invalid_query"):
        list(client.iter_messages(limit=0))


def test_iter_inbox_follows_the_cursor(client: Client) -> None:
    t = token()
    for i in range(3):
        client.send(ECHO_NUMBER, f"inbox {t} {i}")
    for i in range(3):
        client.wait_for_sms(contains=f"{t} {i}", timeout=TIMEOUT)
    got = list(client.iter_inbox(contains=t, limit=2))
    assert all(isinstance(s, InboxSms) for s in got)
    assert sorted(s.text for s in got) == [f"echo: inbox {t} {i}" for i in range(3)]
    assert [s.stored_at for s in got] == sorted(s.stored_at for s in got)


def test_async_iterators_follow_the_cursor(relay: Relay) -> None:
    since = datetime.now(timezone.utc)
    to = a_number()
    ids = [f"aiter-{token()}" for _ in range(3)]

    async def run() -> Tuple[List[str], List[str]]:
        async with AsyncClient(relay.url, relay.key) as c:
            for i in ids:
                await c.send(to, "paged async", id=i)
            got = [m.id async for m in c.iter_messages(since=since, to=to, limit=1)]
            inbox = [s.id async for s in c.iter_inbox(contains=f"never-{token()}", limit=1)]
            return got, inbox

    assert asyncio.run(run()) == (ids, [])


def test_pools(client: Client) -> None:
    phone, sub = a_sim(client)
    name = f"pool-{token()}"
    with refused(400, "invalid_pool"):
        client.create_pool("not a name!", [(phone, sub)])
    with refused(400, "unknown_sim"):
        client.create_pool(name, [(phone, sub + 100)])
    pool = client.create_pool(name, [(phone, sub)], prefixes=[("+1555", [SimRef(phone, sub)])], sticky=True)
    assert isinstance(pool, Pool)
    assert (pool.name, pool.members, pool.sticky) == (name, [SimRef(phone, sub)], True)
    assert pool.prefixes == [PrefixRule("+1555", [SimRef(phone, sub)])]
    assert name in [p.name for p in client.pools()]
    with refused(409, "pool_exists"):
        client.create_pool(name, [SimRef(phone, sub)])

    m = client.send("+15551230012", "pooled", id=f"pooled-{token()}", pool=name)
    done = client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
    assert (done.recipients[0].phone, done.recipients[0].sim) == (phone, sub)
    stats = client.pool_stats(name)
    assert isinstance(stats, SimReport) and stats.name == name
    assert [(s.phone, s.sub_id) for s in stats.sims] == [(phone, sub)]
    assert stats.totals.sims == 1 and stats.sims[0].online

    client.delete_pool(name)
    assert name not in [p.name for p in client.pools()]
    with refused(404, "not_found"):
        client.delete_pool(name)
    with refused(404, "not_found"):
        client.pool_stats(name)


def test_sims_and_their_limits(client: Client) -> None:
    phone, sub = a_sim(client)
    report = client.sims()
    assert report.name is None and report.totals.sims == len(report.sims)
    mine = next(s for s in report.sims if (s.phone, s.sub_id) == (phone, sub))
    assert mine.online and mine.state == "healthy"
    try:
        got = client.set_sim(phone, sub, daily_cap=500, hours="08:00-20:00", utc_offset_min=60)
        assert got == SimLimits(phone, sub, 60, daily_cap=500, hours="08:00-20:00")
        # Settings left out keep their value; None clears one.
        got = client.set_sim(phone, sub, hours=None)
        assert (got.daily_cap, got.hours, got.utc_offset_min) == (500, None, 60)
        mine = next(s for s in client.sims().sims if (s.phone, s.sub_id) == (phone, sub))
        assert (mine.daily_cap, mine.hours, mine.utc_offset_min) == (500, None, 60)
        with refused(400, "invalid_hours"):
            client.set_sim(phone, sub, hours="25:00-26:00")
        with refused(400, "invalid_sim"):
            client.set_sim(phone, sub + 100, daily_cap=1)
        with refused(404, "not_found"):
            client.set_sim(f"no-phone-{token()}", sub, daily_cap=1)
    finally:
        got = client.set_sim(phone, sub, daily_cap=None, hours=None, utc_offset_min=0)
    assert got == SimLimits(phone, sub, 0)


@pytest.fixture
def receiver() -> Iterator[Tuple[str, "queue.Queue[Dict[str, Any]]"]]:
    """A webhook receiver on 127.0.0.1 that answers 204 and queues each body it gets."""
    got: queue.Queue[Dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            got.put(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # nothing of a delivery in the test output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def next_delivery(got: "queue.Queue[Dict[str, Any]]", event: str, id: str) -> Dict[str, Any]:
    """The first delivery of `event` whose event id (a ping) or `data.message_id` is `id`,
    within TIMEOUT; other deliveries (of earlier tests' messages) are skipped."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            body = got.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            raise AssertionError(f"no {event} delivery within {TIMEOUT} s") from None
        if body["event"] == event and id in (body["id"], body["data"].get("message_id")):
            return body


def test_webhooks(client: Client, receiver: Tuple[str, "queue.Queue[Dict[str, Any]]"]) -> None:
    url, got = receiver
    with refused(400, "invalid_event"):
        client.create_webhook(url, ["message.nope"])
    with refused(400, "webhook_url_forbidden"):
        client.create_webhook("http://10.0.0.1/hook", "message.sent")
    secret = secrets.token_hex(16)
    hook = client.create_webhook(url, "message.sent", secret=secret)
    assert isinstance(hook, Webhook)
    assert (hook.url, hook.events, hook.secret) == (url, ["message.sent"], secret)
    listed = next(h for h in client.webhooks() if h.id == hook.id)
    assert (listed.url, listed.secret) == (url, None)
    try:
        ping = client.ping_webhook(hook.id)
        assert (ping.ok, ping.status, ping.error) == (True, 204, None)
        body = next_delivery(got, "webhook.ping", ping.event_id)
        assert (body["webhook_id"], body["data"]) == (hook.id, {})
        logged = next(a for a in client.webhook_deliveries(hook.id) if a.event_id == ping.event_id)
        assert (logged.event, logged.status, logged.delivery_state) == ("webhook.ping", 204, None)
        assert len(client.webhook_deliveries(hook.id, limit=1)) == 1
        with refused(400, "invalid_query"):
            client.webhook_deliveries(hook.id, limit=51)
        # A ping is not queued, so there is nothing to redeliver.
        with refused(404, "not_found"):
            client.redeliver(hook.id, ping.event_id)

        m = client.send("+15551230013", "hooked", id=f"hooked-{token()}")
        sent = next_delivery(got, "message.sent", m.id)
        # Its receiver answered 204: the delivery is pending or delivered, never dead.
        with refused(409, "not_dead"):
            client.redeliver(hook.id, sent["id"])
    finally:
        client.delete_webhook(hook.id)
    assert hook.id not in [h.id for h in client.webhooks()]
    with refused(404, "not_found"):
        client.delete_webhook(hook.id)
    with refused(404, "not_found"):
        client.ping_webhook(hook.id)


def test_keys(client: Client, relay: Relay) -> None:
    with refused(400, "invalid_scope"):
        client.create_key("qa", ["nope"])
    with refused(403, "insufficient_scope"):
        client.create_key("qa", ["admin"])
    name = f"qa-{token()}"
    key = client.create_key(name, ["read"])
    assert isinstance(key, ApiKey)
    assert key.secret is not None and key.prefix is not None and key.secret.startswith(key.prefix)
    assert (key.name, key.scopes, key.revoked_at) == (name, ["read"], None)
    assert key.secret not in repr(key)
    listed = next(k for k in client.keys() if k.id == key.id)
    assert (listed.name, listed.secret) == (name, None)
    with Client(relay.url, key.secret) as reader:
        reader.list_messages(limit=1)
        with refused(403, "insufficient_scope"):
            reader.send("+15551230014", "not allowed")
        revoked = client.revoke_key(key.id)
        assert revoked.id == key.id and revoked.revoked_at is not None
        with refused(401, "unauthorized"):
            reader.list_messages(limit=1)
    with refused(404, "not_found"):
        client.revoke_key(f"missing-{token()}")


def test_pairing_a_phone_and_removing_it(client: Client, relay: Relay, tmp_path: Path) -> None:
    before = {p.id for p in client.phones()}
    code = client.create_pairing_code()
    assert isinstance(code, PairingCode)
    assert len(code.code) == 8 and code.code not in repr(code)
    assert code.ws_url.startswith("ws://127.0.0.1:") and code.link_url == code.ws_url + "/v1/link"
    assert code.tls_fingerprint is None
    phone = subprocess.Popen(
        [relay.binary, "sim-phones", "--relay", relay.url, "--count", "1", "--data", str(tmp_path / "phone"),
         "--pairing-code", code.code],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "phone.log", "w"), text=True,
        env={k: v for k, v in os.environ.items() if k != "SIMRELAY_API_KEY"},
    )
    try:
        assert phone.stdout is not None
        read_until(phone.stdout, "phone 0 paired")
        new = [p.id for p in client.phones() if p.id not in before]
        assert len(new) == 1
        removal = client.remove_phone(new[0])
        assert isinstance(removal, PhoneRemoval)
        assert (removal.id, removal.recipients) == (new[0], RemovedRecipients())
        assert {p.id for p in client.phones()} == before
        with refused(404, "not_found"):
            client.remove_phone(new[0])
    finally:
        phone.terminate()
        phone.wait(timeout=30)


def test_async_calls(relay: Relay) -> None:
    """The asyncio client's twins of the calls above, and their refusals."""

    async def run() -> None:
        async with AsyncClient(relay.url, relay.key) as c:
            m = await c.send("+15551230015", "async history", id=f"ahistory-{token()}")
            await c.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
            assert (await c.message_history(m.id))[-1].state == "delivered"

            key = await c.create_key(f"aqa-{token()}", ["read", "send"])
            assert key.id in [k.id for k in await c.keys()]
            assert (await c.revoke_key(key.id)).revoked_at is not None

            assert isinstance(await c.sims(), SimReport)
            phones = [p for p in await c.phones() if p.online and p.sims]
            phone, sub = phones[0].id, phones[0].sims[0].sub_id
            assert (await c.set_sim(phone, sub, daily_cap=None)).daily_cap is None
            name = f"apool-{token()}"
            await c.create_pool(name, [(phone, sub)])
            assert name in [p.name for p in await c.pools()]
            assert (await c.pool_stats(name)).name == name
            await c.delete_pool(name)

            hook = await c.create_webhook("http://127.0.0.1:9/never", ["message.failed"])
            assert hook.secret is not None and len(hook.secret) >= 16
            assert hook.id in [h.id for h in await c.webhooks()]
            ping = await c.ping_webhook(hook.id)
            assert not ping.ok and ping.error is not None
            assert [a.event_id for a in await c.webhook_deliveries(hook.id)] == [ping.event_id]
            with refused(404, "not_found"):
                await c.redeliver(hook.id, ping.event_id)
            await c.delete_webhook(hook.id)

            assert len((await c.create_pairing_code()).code) == 8
            with refused(404, "not_found"):
                await c.remove_phone(f"no-phone-{token()}")
            with refused(400, "invalid_pool"):
                await c.create_pool("", [(phone, sub)])

    asyncio.run(run())
