"""The client against a live relay (see conftest.py)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timezone
from typing import Iterator

import pytest

from simrelay import AsyncClient, Client, InboxSms, Message, Phone, SimrelayError, WaitTimeout
from simrelay.pytest_plugin import WaitForSms

from conftest import ECHO_NUMBER, PHONES, Relay

TIMEOUT = 60


def token() -> str:
    return secrets.token_hex(6)


@pytest.fixture
def client(relay: Relay) -> Iterator[Client]:
    with Client(relay.url, relay.key) as c:
        yield c


def test_send_and_wait_until_delivered(client: Client) -> None:
    m = client.send("+15551230001", "hello", id=f"sync-{token()}")
    assert isinstance(m, Message)
    assert m.state == "pending" and m.recipients[0].to == "+15551230001"
    done = client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
    assert done.state == "delivered"
    assert (m.text, done.text, done.text_withheld) == ("hello", "hello", None)
    r = done.recipients[0]
    assert (r.state, r.parts, r.parts_delivered) == ("delivered", 1, 1)
    assert r.phone is not None


def test_async_send_and_wait_until_delivered(relay: Relay) -> None:
    async def run() -> Message:
        async with AsyncClient(relay.url, relay.key) as c:
            m = await c.send(["+15551230002", "+15551230003"], "hello async", id=f"async-{token()}")
            got = await c.get_message(m.id)
            assert got.id == m.id
            return await c.wait_for_state(m.id, ["delivered"], timeout=TIMEOUT)

    m = asyncio.run(run())
    assert m.state == "delivered"
    assert [r.state for r in m.recipients] == ["delivered", "delivered"]


def test_get_and_list(client: Client) -> None:
    since = datetime.now(timezone.utc)
    ids = [f"list-{token()}" for _ in range(3)]
    for i in ids:
        client.send("+15551230004", "listed", id=i)
    assert client.get_message(ids[1]).id == ids[1]
    first = client.list_messages(since=since, to="+15551230004", limit=2)
    assert [m.id for m in first.items] == ids[:2]
    assert first.next_cursor is not None
    rest = client.list_messages(since=since, to="+15551230004", cursor=first.next_cursor, limit=2)
    assert [m.id for m in rest.items] == ids[2:]
    assert rest.next_cursor is None


def test_the_id_is_an_idempotency_key(client: Client) -> None:
    i = f"idem-{token()}"
    a = client.send("+15551230005", "once", id=i)
    b = client.send("+15551230005", "once", id=i)
    assert (a.id, a.created_at) == (b.id, b.created_at)
    with pytest.raises(SimrelayError) as e:
        client.send("+15551230005", "another body", id=i)
    assert (e.value.status, e.value.code) == (409, "id_conflict")


def test_a_bad_request_names_its_code(client: Client) -> None:
    with pytest.raises(SimrelayError) as e:
        client.send("5551230001", "no plus")
    assert (e.value.status, e.value.code) == (400, "invalid_number")
    assert "to[0]" in e.value.message
    with pytest.raises(SimrelayError) as e:
        client.get_message(f"missing-{token()}")
    assert (e.value.status, e.value.code) == (404, "not_found")
    with pytest.raises(SimrelayError) as e:
        client.list_messages(limit=0)
    assert (e.value.status, e.value.code) == (400, "invalid_query")


def test_a_wrong_key_is_401(relay: Relay) -> None:
    with Client(relay.url, "wrong-" + token()) as c:
        with pytest.raises(SimrelayError) as e:
            c.phones()
    assert (e.value.status, e.value.code) == (401, "unauthorized")


def test_an_unreachable_relay_is_a_transport_error() -> None:
    with Client("http://127.0.0.1:9", "k") as c:
        with pytest.raises(SimrelayError) as e:
            c.phones()
    assert (e.value.status, e.value.code) == (None, "transport_error")


def test_url_and_key_come_from_the_environment(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client() as c:
        assert c.url == relay.url
    monkeypatch.delenv("SIMRELAY_KEY")
    with pytest.raises(ValueError, match="SIMRELAY_KEY"):
        Client()


def test_phones_are_listed(client: Client) -> None:
    # Phones pair as they start; the message above (or this wait) has them online.
    m = client.send("+15551230006", "wake", id=f"phones-{token()}")
    client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)
    phones = client.phones()
    assert len(phones) == PHONES and all(isinstance(p, Phone) for p in phones)
    assert any(p.online and p.sims for p in phones)


def test_wait_for_sms_receives_the_echo(client: Client) -> None:
    t = token()
    client.send(ECHO_NUMBER, f"ping {t}", id=f"echo-{t}")
    sms = client.wait_for_sms(contains=t, from_=ECHO_NUMBER, timeout=TIMEOUT)
    assert isinstance(sms, InboxSms)
    assert (sms.from_, sms.text) == (ECHO_NUMBER, f"echo: ping {t}")
    page = client.list_inbox(contains=t)
    assert [i.id for i in page.items] == [sms.id]


def test_async_wait_for_sms_receives_the_echo(relay: Relay) -> None:
    async def run(t: str) -> InboxSms:
        async with AsyncClient(relay.url, relay.key) as c:
            await c.send(ECHO_NUMBER, f"async ping {t}")
            return await c.wait_for_sms(contains=t, timeout=TIMEOUT)

    t = token()
    assert asyncio.run(run(t)).text == f"echo: async ping {t}"


def test_wait_for_sms_times_out(client: Client) -> None:
    with pytest.raises(WaitTimeout) as e:
        client.wait_for_sms(contains=f"never-{token()}", timeout=1)
    assert isinstance(e.value, TimeoutError)
    assert (e.value.status, e.value.code) == (408, "wait_timeout")
    assert "1 s" in str(e.value)


def test_async_wait_for_sms_times_out(relay: Relay) -> None:
    async def run() -> None:
        async with AsyncClient(relay.url, relay.key) as c:
            await c.wait_for_sms(contains=f"never-{token()}", timeout=1)

    with pytest.raises(TimeoutError):
        asyncio.run(run())


def test_cancel(client: Client) -> None:
    later = datetime(2099, 1, 1, tzinfo=timezone.utc)
    m = client.send("+15551230007", "scheduled", id=f"cancel-{token()}", schedule_at=later)
    assert m.schedule_at == "2099-01-01T00:00:00.000Z"
    c = client.cancel(m.id)
    # A scheduled message is routed at once (its phone holds it until schedule_at): a cancel
    # that comes after the routing is `cancelling` until the phone confirms it.
    assert c.state in ("cancelled", "cancelling")
    assert client.wait_for_state(m.id, "cancelled", timeout=TIMEOUT).state == "cancelled"
    with pytest.raises(SimrelayError, match="final_state"):
        client.wait_for_state(m.id, "delivered", timeout=TIMEOUT)


def test_the_fixtures(simrelay_client: Client, wait_for_sms: WaitForSms) -> None:
    t = token()
    simrelay_client.send(ECHO_NUMBER, f"fixture {t}")
    assert wait_for_sms(contains=t, timeout=TIMEOUT).text == f"echo: fixture {t}"
    with pytest.raises(TimeoutError):
        wait_for_sms(contains=f"never-{token()}", timeout=1)


def test_the_plugin_in_a_qa_suite(pytester: pytest.Pytester) -> None:
    """A QA team's suite gets the fixtures from the installed package alone."""
    t = token()
    pytester.makepyfile(
        f"""
        def test_otp(simrelay_client, wait_for_sms):
            simrelay_client.send("{ECHO_NUMBER}", "your code is 4711 {t}")
            sms = wait_for_sms(contains="{t}", timeout={TIMEOUT})
            assert "4711" in sms.text

        def test_no_sms(wait_for_sms):
            wait_for_sms(contains="never-{t}", timeout=1)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*WaitTimeout: wait_timeout (HTTP 408): no matching SMS arrived within 1 s*"])
