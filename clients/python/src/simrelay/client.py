"""`Client` (sync) and `AsyncClient` (asyncio) of the relay's `/v1` HTTP API, on httpx.

Both build the same requests and read the same answers; only the I/O differs. The log
(logger `simrelay`, debug level) names the method, the path and the status, never a query,
a body, a phone number or a text.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import time
from datetime import datetime, timedelta, timezone
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import httpx

from .errors import SimrelayError, WaitTimeout
from .types import (
    FINAL_STATES,
    ApiKey,
    Attempt,
    HistoryItem,
    InboxSms,
    Message,
    PairingCode,
    Page,
    Phone,
    PhoneRemoval,
    Ping,
    Pool,
    PrefixRule,
    Redelivery,
    SimLimits,
    SimRef,
    SimReport,
    Webhook,
)

log = logging.getLogger("simrelay")

T = TypeVar("T")

Time = Union[str, datetime]
"""An RFC 3339 string, or a datetime (a naive one is taken as UTC)."""

WAIT_MAX_SECS = 300
"""The longest single `GET /v1/inbox/wait` the relay accepts; longer waits are chained."""

WAIT_LOOKBACK = timedelta(seconds=60)
"""How far back `wait_for_sms` matches without `since` (the relay's own default)."""


def rfc3339(t: Time) -> str:
    """`t` as the relay's RFC 3339 form (UTC, milliseconds, `Z`)."""
    if isinstance(t, str):
        return t
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _settings(url: Optional[str], key: Optional[str]) -> Tuple[str, str]:
    url = url or os.environ.get("SIMRELAY_URL")
    key = key or os.environ.get("SIMRELAY_KEY")
    if not url:
        raise ValueError("no relay URL: pass url= or set SIMRELAY_URL")
    if not key:
        raise ValueError("no API key: pass key= or set SIMRELAY_KEY")
    return url.rstrip("/"), key


def _params(**kw: Any) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for k, v in kw.items():
        if v is None:
            continue
        name = k.rstrip("_")
        if isinstance(v, datetime):
            out[name] = rfc3339(v)
        else:
            out[name] = str(v)
    return out


def _send_body(
    to: Union[str, Sequence[str]],
    text: str,
    id: Optional[str],
    priority: Optional[int],
    valid_until: Optional[Time],
    schedule_at: Optional[Time],
    phone: Optional[str],
    sim: Optional[int],
    pool: Optional[str],
    delivery_report: Optional[bool],
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"to": [to] if isinstance(to, str) else list(to), "text": text}
    extra: Dict[str, Any] = {
        "id": id,
        "priority": priority,
        "valid_until": None if valid_until is None else rfc3339(valid_until),
        "schedule_at": None if schedule_at is None else rfc3339(schedule_at),
        "phone": phone,
        "sim": sim,
        "pool": pool,
        "delivery_report": delivery_report,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _error(r: httpx.Response) -> SimrelayError:
    try:
        e = r.json()["error"]
        return SimrelayError(r.status_code, str(e["code"]), str(e["message"]))
    except (ValueError, KeyError, TypeError):
        return SimrelayError(r.status_code, f"http_{r.status_code}", "the answer is not the relay's JSON error")


def _checked(r: httpx.Response) -> Any:
    log.debug("%s %s -> %d", r.request.method, r.request.url.path, r.status_code)
    if r.is_error:
        raise _error(r)
    return r.json() if r.content else None


def _transport(e: httpx.TransportError) -> SimrelayError:
    return SimrelayError(None, "transport_error", f"{type(e).__name__}: {e}")


def _states(states: Union[str, Iterable[str]]) -> frozenset[str]:
    return frozenset([states] if isinstance(states, str) else states)


def _check_state(m: Message, want: frozenset[str]) -> bool:
    """Whether `m` reached one of `want`; raises when it is final in another state."""
    if m.state in want:
        return True
    if m.state in FINAL_STATES:
        raise SimrelayError(None, "final_state", f"message {m.id} ended {m.state}, not {'/'.join(sorted(want))}")
    return False


class Keep(enum.Enum):
    """The type of `KEEP`."""

    KEEP = "keep"


KEEP = Keep.KEEP
"""`set_sim`'s default for a setting: leave it as it is (`None` clears it)."""

SimLike = Union[SimRef, Tuple[str, int]]
"""A SIM as a `SimRef` or a `(phone id, sub_id)` pair."""

PrefixLike = Union[PrefixRule, Tuple[str, Sequence[SimLike]]]
"""A prefix preference as a `PrefixRule` or a `(prefix, SIMs)` pair."""


def _sim_json(s: SimLike) -> Dict[str, Any]:
    if isinstance(s, SimRef):
        return s.to_json()
    phone, sub_id = s
    return {"phone": phone, "sub_id": sub_id}


def _pool_body(
    name: str, members: Sequence[SimLike], prefixes: Optional[Sequence[PrefixLike]], sticky: Optional[bool]
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"name": name, "members": [_sim_json(m) for m in members]}
    if prefixes is not None:
        rules: List[Dict[str, Any]] = []
        for p in prefixes:
            if isinstance(p, PrefixRule):
                rules.append(p.to_json())
            else:
                rules.append({"prefix": p[0], "sims": [_sim_json(s) for s in p[1]]})
        body["prefixes"] = rules
    if sticky is not None:
        body["sticky"] = sticky
    return body


def _sim_patch(
    daily_cap: Union[int, None, Keep], hours: Union[str, None, Keep], utc_offset_min: Optional[int]
) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if daily_cap is not KEEP:
        body["daily_cap"] = daily_cap
    if hours is not KEEP:
        body["hours"] = hours
    if utc_offset_min is not None:
        body["utc_offset_min"] = utc_offset_min
    return body


def _webhook_body(url: str, events: Union[str, Sequence[str]], secret: Optional[str]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"url": url, "events": [events] if isinstance(events, str) else list(events)}
    if secret is not None:
        body["secret"] = secret
    return body


def _items(d: Any, parse: Callable[[Any], T]) -> List[T]:
    """The items of a list answer (an unpaged one: its `next_cursor` is always null)."""
    return [parse(i) for i in d["items"]]


class _WaitPlan:
    """The chain of `GET /v1/inbox/wait` requests of one `wait_for_sms`.

    The first request uses the relay's look-back (a minute before the call, on the relay's
    clock) unless `since` is given; later ones (for a timeout above the relay's maximum)
    look back to a minute before the call on this machine's clock, so an SMS that arrived
    between two requests still matches. The same rule as `simrelay wait-sms`.
    """

    def __init__(self, contains: Optional[str], from_: Optional[str], since: Optional[Time], timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.base = _params(contains=contains, from_=from_)
        self.since = None if since is None else rfc3339(since)
        self.later_since = self.since or rfc3339(datetime.now(timezone.utc) - WAIT_LOOKBACK)
        self.first = True
        self.last = False

    def next(self) -> Dict[str, str]:
        left = max(0.0, self.deadline - time.monotonic())
        secs = min(WAIT_MAX_SECS, math.ceil(left))
        self.last = left <= WAIT_MAX_SECS
        q = dict(self.base, timeout=str(secs))
        since = self.since if self.first else self.later_since
        if since is not None:
            q["since"] = since
        self.first = False
        return q

    def timed_out(self, e: SimrelayError) -> WaitTimeout:
        return WaitTimeout(e.status, e.code, f"no matching SMS arrived within {self.timeout:g} s")


class _Base:
    def __init__(self, url: Optional[str], key: Optional[str], timeout: float) -> None:
        self.url, self._key = _settings(url, key)
        self.timeout = timeout

    def _wait_timeout(self, secs: str) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, read=float(secs) + self.timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Client(_Base):
    """A synchronous client. `url` and `key` default to `SIMRELAY_URL` and `SIMRELAY_KEY`.

    `verify=False` accepts a self-signed certificate (like `simrelay --insecure`); a path to
    the relay's certificate is better. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        verify: Union[bool, str] = True,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        super().__init__(url, key, timeout)
        self._http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {self._key}", "user-agent": "simrelay-python/0.1"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise _transport(e) from e
        return _checked(r)

    def send(
        self,
        to: Union[str, Sequence[str]],
        text: str,
        id: Optional[str] = None,
        *,
        priority: Optional[int] = None,
        valid_until: Optional[Time] = None,
        schedule_at: Optional[Time] = None,
        phone: Optional[str] = None,
        sim: Optional[int] = None,
        pool: Optional[str] = None,
        delivery_report: Optional[bool] = None,
    ) -> Message:
        """`POST /v1/messages`. `id` is the idempotency key: the same id and body answer the
        stored message again; the same id with another body raises `id_conflict`."""
        body = _send_body(to, text, id, priority, valid_until, schedule_at, phone, sim, pool, delivery_report)
        return Message.from_json(self._call("POST", "/v1/messages", json=body))

    def get_message(self, id: str) -> Message:
        """`GET /v1/messages/{id}`; `not_found` (404) for an unknown id."""
        return Message.from_json(self._call("GET", f"/v1/messages/{_seg(id)}"))

    def list_messages(
        self,
        *,
        state: Optional[str] = None,
        since: Optional[Time] = None,
        to: Optional[str] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Page[Message]:
        """`GET /v1/messages`: oldest first, one page."""
        p = _params(state=state, since=since, to=to, cursor=cursor, limit=limit)
        d = self._call("GET", "/v1/messages", params=p)
        return Page([Message.from_json(m) for m in d["items"]], d.get("next_cursor"))

    def cancel(self, id: str) -> Message:
        """`DELETE /v1/messages/{id}`; `not_cancellable` (409) once every recipient is with a
        radio or final."""
        return Message.from_json(self._call("DELETE", f"/v1/messages/{_seg(id)}"))

    def wait_for_state(
        self,
        id: str,
        states: Union[str, Iterable[str]] = ("delivered",),
        timeout: float = 60.0,
        *,
        interval: float = 0.2,
    ) -> Message:
        """Polls the message until its state is one of `states`. Raises `WaitTimeout` after
        `timeout` seconds, and `SimrelayError` (`final_state`) when it ends in another state."""
        want = _states(states)
        deadline = time.monotonic() + timeout
        while True:
            m = self.get_message(id)
            if _check_state(m, want):
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(None, "wait_timeout", f"message {id} is {m.state} after {timeout:g} s")
            time.sleep(min(interval, left))

    def list_inbox(
        self,
        *,
        from_: Optional[str] = None,
        contains: Optional[str] = None,
        since: Optional[Time] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Page[InboxSms]:
        """`GET /v1/inbox`: received SMS, oldest first, one page."""
        p = _params(from_=from_, contains=contains, since=since, cursor=cursor, limit=limit)
        d = self._call("GET", "/v1/inbox", params=p)
        return Page([InboxSms.from_json(m) for m in d["items"]], d.get("next_cursor"))

    def wait_for_sms(
        self,
        contains: Optional[str] = None,
        from_: Optional[str] = None,
        timeout: float = 60.0,
        *,
        since: Optional[Time] = None,
    ) -> InboxSms:
        """The newest received SMS whose text contains `contains` (and from `from_`), stored
        at or after `since` (default: a minute before the call); waits up to `timeout`
        seconds for one with `GET /v1/inbox/wait`. Raises `WaitTimeout` when none came."""
        plan = _WaitPlan(contains, from_, since, timeout)
        while True:
            q = plan.next()
            try:
                d = self._call("GET", "/v1/inbox/wait", params=q, timeout=self._wait_timeout(q["timeout"]))
                return InboxSms.from_json(d)
            except SimrelayError as e:
                if e.code != "wait_timeout":
                    raise
                if plan.last:
                    raise plan.timed_out(e) from None

    def phones(self) -> List[Phone]:
        """`GET /v1/phones`: the account's phones."""
        d = self._call("GET", "/v1/phones")
        return [Phone.from_json(p) for p in d["items"]]

    def message_history(self, id: str) -> List[HistoryItem]:
        """`GET /v1/messages/{id}/history`: every change of every recipient, by recipient,
        oldest first; `not_found` (404) for an unknown id."""
        return _items(self._call("GET", f"/v1/messages/{_seg(id)}/history"), HistoryItem.from_json)

    def iter_messages(
        self,
        *,
        state: Optional[str] = None,
        since: Optional[Time] = None,
        to: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Iterator[Message]:
        """Every message of `GET /v1/messages` that matches, oldest first, a page (of `limit`,
        the relay's default 50) at a time, following `next_cursor` to the end."""
        cursor: Optional[str] = None
        while True:
            page = self.list_messages(state=state, since=since, to=to, cursor=cursor, limit=limit)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_inbox(
        self,
        *,
        from_: Optional[str] = None,
        contains: Optional[str] = None,
        since: Optional[Time] = None,
        limit: Optional[int] = None,
    ) -> Iterator[InboxSms]:
        """Every received SMS of `GET /v1/inbox` that matches, oldest first, page by page
        (see `iter_messages`)."""
        cursor: Optional[str] = None
        while True:
            page = self.list_inbox(from_=from_, contains=contains, since=since, cursor=cursor, limit=limit)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def remove_phone(self, id: str) -> PhoneRemoval:
        """`DELETE /v1/phones/{id}`: its token stops working and its recipients end as
        docs/protocol.md says; `not_found` (404) for an unknown or removed phone."""
        return PhoneRemoval.from_json(self._call("DELETE", f"/v1/phones/{_seg(id)}"))

    def create_pairing_code(self) -> PairingCode:
        """`POST /v1/pairing-codes`: a code a phone can pair with once, for ten minutes."""
        return PairingCode.from_json(self._call("POST", "/v1/pairing-codes"))

    def create_pool(
        self,
        name: str,
        members: Sequence[SimLike],
        *,
        prefixes: Optional[Sequence[PrefixLike]] = None,
        sticky: Optional[bool] = None,
    ) -> Pool:
        """`POST /v1/pools`. `members` are SIMs (`SimRef` or `(phone id, sub_id)`);
        `prefixes` prefer some of them for destinations starting with a prefix. Errors:
        `invalid_pool`, `invalid_sim`, `unknown_sim`, `invalid_prefix`, `unknown_phone`,
        `pool_exists` (409)."""
        return Pool.from_json(self._call("POST", "/v1/pools", json=_pool_body(name, members, prefixes, sticky)))

    def pools(self) -> List[Pool]:
        """`GET /v1/pools`: the account's pools."""
        return _items(self._call("GET", "/v1/pools"), Pool.from_json)

    def delete_pool(self, name: str) -> None:
        """`DELETE /v1/pools/{name}`; messages that target it wait (or expire)."""
        self._call("DELETE", f"/v1/pools/{_seg(name)}")

    def pool_stats(self, name: str) -> SimReport:
        """`GET /v1/pools/{name}/stats`: the pool's SIMs and totals."""
        return SimReport.from_json(self._call("GET", f"/v1/pools/{_seg(name)}/stats"))

    def sims(self) -> SimReport:
        """`GET /v1/sims`: every SIM of the account's phones, with settings, state, figures."""
        return SimReport.from_json(self._call("GET", "/v1/sims"))

    def set_sim(
        self,
        phone: str,
        sub_id: int,
        *,
        daily_cap: Union[int, None, Keep] = KEEP,
        hours: Union[str, None, Keep] = KEEP,
        utc_offset_min: Optional[int] = None,
    ) -> SimLimits:
        """`PATCH /v1/sims/{phone}/{sub_id}`: a setting left at `KEEP` keeps its value,
        `None` clears it. `hours` is `"HH:MM-HH:MM"` local time; `utc_offset_min` local time
        minus UTC. Errors: `invalid_sim`, `invalid_hours`, `not_found`."""
        body = _sim_patch(daily_cap, hours, utc_offset_min)
        return SimLimits.from_json(self._call("PATCH", f"/v1/sims/{_seg(phone)}/{int(sub_id)}", json=body))

    def create_webhook(
        self, url: str, events: Union[str, Sequence[str]], *, secret: Optional[str] = None
    ) -> Webhook:
        """`POST /v1/webhooks`; the answer alone carries the signing `secret` (generated
        unless given, 16 to 256 bytes). Errors: `invalid_url`, `invalid_event`,
        `invalid_secret`, `webhook_url_forbidden`, `webhook_url_unresolvable`."""
        return Webhook.from_json(self._call("POST", "/v1/webhooks", json=_webhook_body(url, events, secret)))

    def webhooks(self) -> List[Webhook]:
        """`GET /v1/webhooks` (without secrets)."""
        return _items(self._call("GET", "/v1/webhooks"), Webhook.from_json)

    def delete_webhook(self, id: str) -> None:
        """`DELETE /v1/webhooks/{id}`: drops its pending deliveries and its log."""
        self._call("DELETE", f"/v1/webhooks/{_seg(id)}")

    def webhook_deliveries(self, id: str, *, limit: Optional[int] = None) -> List[Attempt]:
        """`GET /v1/webhooks/{id}/deliveries`: its last `limit` (1 to 50) attempts, newest first."""
        d = self._call("GET", f"/v1/webhooks/{_seg(id)}/deliveries", params=_params(limit=limit))
        return _items(d, Attempt.from_json)

    def ping_webhook(self, id: str) -> Ping:
        """`POST /v1/webhooks/{id}/ping`: sends a `webhook.ping` now; `ok` tells whether the
        receiver answered 2xx."""
        return Ping.from_json(self._call("POST", f"/v1/webhooks/{_seg(id)}/ping"))

    def redeliver(self, webhook_id: str, event_id: str) -> Redelivery:
        """`POST /v1/webhooks/{id}/deliveries/{event_id}/redeliver`: queues a dead delivery
        again; `not_dead` (409) when it is not dead, `not_found` for an unknown event."""
        path = f"/v1/webhooks/{_seg(webhook_id)}/deliveries/{_seg(event_id)}/redeliver"
        return Redelivery.from_json(self._call("POST", path))

    def create_key(self, name: str, scopes: Sequence[str]) -> ApiKey:
        """`POST /v1/keys`: a key of this account with some of this key's scopes (`send`,
        `read`, `phones`, `webhooks`, `admin`); the answer alone carries its `secret`."""
        return ApiKey.from_json(self._call("POST", "/v1/keys", json={"name": name, "scopes": list(scopes)}))

    def keys(self) -> List[ApiKey]:
        """`GET /v1/keys`: the account's keys, revoked ones included (without secrets)."""
        return _items(self._call("GET", "/v1/keys"), ApiKey.from_json)

    def revoke_key(self, id: str) -> ApiKey:
        """`DELETE /v1/keys/{id}`: the key, with `revoked_at` set."""
        return ApiKey.from_json(self._call("DELETE", f"/v1/keys/{_seg(id)}"))


class AsyncClient(_Base):
    """The asyncio twin of `Client`: the same methods, as coroutines.

    Use it as `async with AsyncClient() as c:`, or `await c.aclose()`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        verify: Union[bool, str] = True,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        super().__init__(url, key, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"authorization": f"Bearer {self._key}", "user-agent": "simrelay-python/0.1"},
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise _transport(e) from e
        return _checked(r)

    async def send(
        self,
        to: Union[str, Sequence[str]],
        text: str,
        id: Optional[str] = None,
        *,
        priority: Optional[int] = None,
        valid_until: Optional[Time] = None,
        schedule_at: Optional[Time] = None,
        phone: Optional[str] = None,
        sim: Optional[int] = None,
        pool: Optional[str] = None,
        delivery_report: Optional[bool] = None,
    ) -> Message:
        """See `Client.send`."""
        body = _send_body(to, text, id, priority, valid_until, schedule_at, phone, sim, pool, delivery_report)
        return Message.from_json(await self._call("POST", "/v1/messages", json=body))

    async def get_message(self, id: str) -> Message:
        """See `Client.get_message`."""
        return Message.from_json(await self._call("GET", f"/v1/messages/{_seg(id)}"))

    async def list_messages(
        self,
        *,
        state: Optional[str] = None,
        since: Optional[Time] = None,
        to: Optional[str] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Page[Message]:
        """See `Client.list_messages`."""
        p = _params(state=state, since=since, to=to, cursor=cursor, limit=limit)
        d = await self._call("GET", "/v1/messages", params=p)
        return Page([Message.from_json(m) for m in d["items"]], d.get("next_cursor"))

    async def cancel(self, id: str) -> Message:
        """See `Client.cancel`."""
        return Message.from_json(await self._call("DELETE", f"/v1/messages/{_seg(id)}"))

    async def wait_for_state(
        self,
        id: str,
        states: Union[str, Iterable[str]] = ("delivered",),
        timeout: float = 60.0,
        *,
        interval: float = 0.2,
    ) -> Message:
        """See `Client.wait_for_state`."""
        want = _states(states)
        deadline = time.monotonic() + timeout
        while True:
            m = await self.get_message(id)
            if _check_state(m, want):
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(None, "wait_timeout", f"message {id} is {m.state} after {timeout:g} s")
            await asyncio.sleep(min(interval, left))

    async def list_inbox(
        self,
        *,
        from_: Optional[str] = None,
        contains: Optional[str] = None,
        since: Optional[Time] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Page[InboxSms]:
        """See `Client.list_inbox`."""
        p = _params(from_=from_, contains=contains, since=since, cursor=cursor, limit=limit)
        d = await self._call("GET", "/v1/inbox", params=p)
        return Page([InboxSms.from_json(m) for m in d["items"]], d.get("next_cursor"))

    async def wait_for_sms(
        self,
        contains: Optional[str] = None,
        from_: Optional[str] = None,
        timeout: float = 60.0,
        *,
        since: Optional[Time] = None,
    ) -> InboxSms:
        """See `Client.wait_for_sms`."""
        plan = _WaitPlan(contains, from_, since, timeout)
        while True:
            q = plan.next()
            try:
                d = await self._call("GET", "/v1/inbox/wait", params=q, timeout=self._wait_timeout(q["timeout"]))
                return InboxSms.from_json(d)
            except SimrelayError as e:
                if e.code != "wait_timeout":
                    raise
                if plan.last:
                    raise plan.timed_out(e) from None

    async def phones(self) -> List[Phone]:
        """See `Client.phones`."""
        d = await self._call("GET", "/v1/phones")
        return [Phone.from_json(p) for p in d["items"]]

    async def message_history(self, id: str) -> List[HistoryItem]:
        """See `Client.message_history`."""
        return _items(await self._call("GET", f"/v1/messages/{_seg(id)}/history"), HistoryItem.from_json)

    async def iter_messages(
        self,
        *,
        state: Optional[str] = None,
        since: Optional[Time] = None,
        to: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[Message]:
        """See `Client.iter_messages`."""
        cursor: Optional[str] = None
        while True:
            page = await self.list_messages(state=state, since=since, to=to, cursor=cursor, limit=limit)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def iter_inbox(
        self,
        *,
        from_: Optional[str] = None,
        contains: Optional[str] = None,
        since: Optional[Time] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[InboxSms]:
        """See `Client.iter_inbox`."""
        cursor: Optional[str] = None
        while True:
            page = await self.list_inbox(from_=from_, contains=contains, since=since, cursor=cursor, limit=limit)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def remove_phone(self, id: str) -> PhoneRemoval:
        """See `Client.remove_phone`."""
        return PhoneRemoval.from_json(await self._call("DELETE", f"/v1/phones/{_seg(id)}"))

    async def create_pairing_code(self) -> PairingCode:
        """See `Client.create_pairing_code`."""
        return PairingCode.from_json(await self._call("POST", "/v1/pairing-codes"))

    async def create_pool(
        self,
        name: str,
        members: Sequence[SimLike],
        *,
        prefixes: Optional[Sequence[PrefixLike]] = None,
        sticky: Optional[bool] = None,
    ) -> Pool:
        """See `Client.create_pool`."""
        return Pool.from_json(await self._call("POST", "/v1/pools", json=_pool_body(name, members, prefixes, sticky)))

    async def pools(self) -> List[Pool]:
        """See `Client.pools`."""
        return _items(await self._call("GET", "/v1/pools"), Pool.from_json)

    async def delete_pool(self, name: str) -> None:
        """See `Client.delete_pool`."""
        await self._call("DELETE", f"/v1/pools/{_seg(name)}")

    async def pool_stats(self, name: str) -> SimReport:
        """See `Client.pool_stats`."""
        return SimReport.from_json(await self._call("GET", f"/v1/pools/{_seg(name)}/stats"))

    async def sims(self) -> SimReport:
        """See `Client.sims`."""
        return SimReport.from_json(await self._call("GET", "/v1/sims"))

    async def set_sim(
        self,
        phone: str,
        sub_id: int,
        *,
        daily_cap: Union[int, None, Keep] = KEEP,
        hours: Union[str, None, Keep] = KEEP,
        utc_offset_min: Optional[int] = None,
    ) -> SimLimits:
        """See `Client.set_sim`."""
        body = _sim_patch(daily_cap, hours, utc_offset_min)
        return SimLimits.from_json(await self._call("PATCH", f"/v1/sims/{_seg(phone)}/{int(sub_id)}", json=body))

    async def create_webhook(
        self, url: str, events: Union[str, Sequence[str]], *, secret: Optional[str] = None
    ) -> Webhook:
        """See `Client.create_webhook`."""
        return Webhook.from_json(await self._call("POST", "/v1/webhooks", json=_webhook_body(url, events, secret)))

    async def webhooks(self) -> List[Webhook]:
        """See `Client.webhooks`."""
        return _items(await self._call("GET", "/v1/webhooks"), Webhook.from_json)

    async def delete_webhook(self, id: str) -> None:
        """See `Client.delete_webhook`."""
        await self._call("DELETE", f"/v1/webhooks/{_seg(id)}")

    async def webhook_deliveries(self, id: str, *, limit: Optional[int] = None) -> List[Attempt]:
        """See `Client.webhook_deliveries`."""
        d = await self._call("GET", f"/v1/webhooks/{_seg(id)}/deliveries", params=_params(limit=limit))
        return _items(d, Attempt.from_json)

    async def ping_webhook(self, id: str) -> Ping:
        """See `Client.ping_webhook`."""
        return Ping.from_json(await self._call("POST", f"/v1/webhooks/{_seg(id)}/ping"))

    async def redeliver(self, webhook_id: str, event_id: str) -> Redelivery:
        """See `Client.redeliver`."""
        path = f"/v1/webhooks/{_seg(webhook_id)}/deliveries/{_seg(event_id)}/redeliver"
        return Redelivery.from_json(await self._call("POST", path))

    async def create_key(self, name: str, scopes: Sequence[str]) -> ApiKey:
        """See `Client.create_key`."""
        return ApiKey.from_json(await self._call("POST", "/v1/keys", json={"name": name, "scopes": list(scopes)}))

    async def keys(self) -> List[ApiKey]:
        """See `Client.keys`."""
        return _items(await self._call("GET", "/v1/keys"), ApiKey.from_json)

    async def revoke_key(self, id: str) -> ApiKey:
        """See `Client.revoke_key`."""
        return ApiKey.from_json(await self._call("DELETE", f"/v1/keys/{_seg(id)}"))


def _seg(id: str) -> str:
    """`id` as one path segment (client ids are `[A-Za-z0-9._:-]`, but never trust that)."""
    from urllib.parse import quote

    return quote(id, safe="")
