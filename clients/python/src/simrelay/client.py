"""`Client` (sync) and `AsyncClient` (asyncio) of the relay's `/v1` HTTP API, on httpx.

Both build the same requests and read the same answers; only the I/O differs. The log
(logger `simrelay`, debug level) names the method, the path and the status, never a query,
a body, a phone number or a text.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import httpx

from .errors import SimrelayError, WaitTimeout
from .types import FINAL_STATES, InboxSms, Message, Page, Phone

log = logging.getLogger("simrelay")

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


def _seg(id: str) -> str:
    """`id` as one path segment (client ids are `[A-Za-z0-9._:-]`, but never trust that)."""
    from urllib.parse import quote

    return quote(id, safe="")
