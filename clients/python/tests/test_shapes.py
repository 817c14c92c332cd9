"""What the client sends and reads, against a stub relay (`httpx.MockTransport`), for what
the live relay cannot show on demand: a dead delivery's redelivery (202), and the exact
bodies of `set_sim` (a setting left out is absent, `None` is `null`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Tuple

import httpx

from simrelay import AsyncClient, Client, Redelivery, SimLimits

Seen = List[Tuple[str, str, Any]]


def stub(seen: Seen) -> httpx.MockTransport:
    def answer(req: httpx.Request) -> httpx.Response:
        body: Any = json.loads(req.content) if req.content else None
        seen.append((req.method, req.url.raw_path.decode(), body))
        if req.url.raw_path.endswith(b"/redeliver"):
            return httpx.Response(202, json={"event_id": "e1", "delivery_state": "pending"})
        if req.method == "PATCH":
            patch: Dict[str, Any] = body
            limits = {"phone": "p 1", "sub_id": 2, "daily_cap": None, "hours": None, "utc_offset_min": 0}
            limits.update(patch)
            return httpx.Response(200, json=limits)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such resource"}})

    return httpx.MockTransport(answer)


def test_redeliver_and_set_sim_bodies() -> None:
    seen: Seen = []
    with Client("http://relay.test", "k", transport=stub(seen)) as c:
        assert c.redeliver("w/1", "e1") == Redelivery("e1", "pending")
        assert c.set_sim("p 1", 2, daily_cap=300) == SimLimits("p 1", 2, 0, daily_cap=300)
        c.set_sim("p 1", 2, hours=None, utc_offset_min=-60)
    assert seen == [
        ("POST", "/v1/webhooks/w%2F1/deliveries/e1/redeliver", None),
        ("PATCH", "/v1/sims/p%201/2", {"daily_cap": 300}),
        ("PATCH", "/v1/sims/p%201/2", {"hours": None, "utc_offset_min": -60}),
    ]


def test_async_redeliver_and_set_sim_bodies() -> None:
    seen: Seen = []

    async def run() -> None:
        async with AsyncClient("http://relay.test", "k", transport=stub(seen)) as c:
            assert (await c.redeliver("w1", "e1")).delivery_state == "pending"
            assert (await c.set_sim("p 1", 2, daily_cap=None)).daily_cap is None

    asyncio.run(run())
    assert [s[2] for s in seen] == [None, {"daily_cap": None}]
