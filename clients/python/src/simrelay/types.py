"""The views the relay's `/v1` API answers (docs/protocol.md), as typed dataclasses.

Timestamps are kept as the RFC 3339 strings the relay sends (`2026-11-22T02:37:40.412Z`).
Fields a newer relay adds are ignored, so an older client keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Generic, List, Literal, Mapping, Optional, TypeVar

State = Literal[
    "pending",
    "cancelling",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "expired",
    "cancelled",
    "unknown",
    "suppressed",
]
"""The state of a message or of one recipient (the same eleven names)."""

FINAL_STATES: frozenset[str] = frozenset(
    {"delivered", "failed", "expired", "cancelled", "unknown", "suppressed"}
)
"""States a recipient never leaves."""

T = TypeVar("T")


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


def _opt_int(v: Any) -> Optional[int]:
    return None if v is None else int(v)


@dataclass(frozen=True)
class Recipient:
    """One recipient of a message; `error`, `code`, `phone`, `sim` only when known."""

    idx: int
    to: str
    state: State
    parts: int
    parts_sent: int
    parts_delivered: int
    updated_at: str
    error: Optional[str] = None
    code: Optional[int] = None
    phone: Optional[str] = None
    sim: Optional[int] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Recipient:
        return cls(
            idx=int(d["idx"]),
            to=str(d["to"]),
            state=d["state"],
            parts=int(d["parts"]),
            parts_sent=int(d["parts_sent"]),
            parts_delivered=int(d["parts_delivered"]),
            updated_at=str(d["updated_at"]),
            error=_opt_str(d.get("error")),
            code=_opt_int(d.get("code")),
            phone=_opt_str(d.get("phone")),
            sim=_opt_int(d.get("sim")),
        )


@dataclass(frozen=True)
class Message:
    """A message: the answer of send, get, cancel and the items of a message list."""

    id: str
    state: State
    priority: int
    delivery_report: bool
    created_at: str
    updated_at: str
    recipients: List[Recipient] = field(default_factory=list)
    valid_until: Optional[str] = None
    schedule_at: Optional[str] = None
    phone: Optional[str] = None
    sim: Optional[int] = None
    #: The text as given; None when the relay cannot show it (`text_withheld` says why:
    #: "end_to_end_encrypted" or "data_sms").
    text: Optional[str] = None
    text_withheld: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Message:
        return cls(
            id=str(d["id"]),
            state=d["state"],
            priority=int(d["priority"]),
            delivery_report=bool(d["delivery_report"]),
            created_at=str(d["created_at"]),
            updated_at=str(d["updated_at"]),
            recipients=[Recipient.from_json(r) for r in d.get("recipients", [])],
            valid_until=_opt_str(d.get("valid_until")),
            schedule_at=_opt_str(d.get("schedule_at")),
            phone=_opt_str(d.get("phone")),
            sim=_opt_int(d.get("sim")),
            text=_opt_str(d.get("text")),
            text_withheld=_opt_str(d.get("text_withheld")),
        )


@dataclass(frozen=True)
class InboxSms:
    """A received SMS: `GET /v1/inbox` items and the answer of `GET /v1/inbox/wait`.

    `from_` is the sender (`from` in the JSON); `stored_at` is when the relay stored it,
    which is what `since` filters on.
    """

    id: str
    phone: str
    from_: str
    text: str
    received_at: str
    stored_at: str
    sim: Optional[int] = None
    sent_at: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InboxSms:
        return cls(
            id=str(d["id"]),
            phone=str(d["phone"]),
            from_=str(d["from"]),
            text=str(d["text"]),
            received_at=str(d["received_at"]),
            stored_at=str(d["stored_at"]),
            sim=_opt_int(d.get("sim")),
            sent_at=_opt_str(d.get("sent_at")),
        )


@dataclass(frozen=True)
class SimInfo:
    """A SIM as its phone reports it."""

    sub_id: int
    slot: int
    parts_per_minute: int
    daily_cap: int
    sent_today: int = 0
    carrier: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimInfo:
        return cls(
            sub_id=int(d["sub_id"]),
            slot=int(d["slot"]),
            parts_per_minute=int(d["parts_per_minute"]),
            daily_cap=int(d["daily_cap"]),
            sent_today=int(d.get("sent_today", 0)),
            carrier=_opt_str(d.get("carrier")),
        )


@dataclass(frozen=True)
class Phone:
    """A phone of `GET /v1/phones`; what it reports is empty or `None` until it connects."""

    id: str
    online: bool
    outstanding: int
    created_at: str
    sims: List[SimInfo] = field(default_factory=list)
    name: Optional[str] = None
    last_seen: Optional[str] = None
    queue_depth: Optional[int] = None
    battery: Optional[int] = None
    charging: Optional[bool] = None
    app_version: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Phone:
        charging = d.get("charging")
        return cls(
            id=str(d["id"]),
            online=bool(d["online"]),
            outstanding=int(d["outstanding"]),
            created_at=str(d["created_at"]),
            sims=[SimInfo.from_json(s) for s in d.get("sims", [])],
            name=_opt_str(d.get("name")),
            last_seen=_opt_str(d.get("last_seen")),
            queue_depth=_opt_int(d.get("queue_depth")),
            battery=_opt_int(d.get("battery")),
            charging=None if charging is None else bool(charging),
            app_version=_opt_str(d.get("app_version")),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: pass `next_cursor` back as `cursor`; `None` at the end."""

    items: List[T]
    next_cursor: Optional[str] = None


def _opt_float(v: Any) -> Optional[float]:
    return None if v is None else float(v)


@dataclass(frozen=True)
class HistoryItem:
    """One change of a recipient: the items of `GET /v1/messages/{id}/history`, by
    recipient (`idx`), oldest first. Every change of state, phone, SIM or part counts is
    one item; `phone`, `sim`, `error`, `code` only when known."""

    idx: int
    at: str
    state: State
    parts_sent: int
    parts_delivered: int
    phone: Optional[str] = None
    sim: Optional[int] = None
    error: Optional[str] = None
    code: Optional[int] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HistoryItem:
        return cls(
            idx=int(d["idx"]),
            at=str(d["at"]),
            state=d["state"],
            parts_sent=int(d["parts_sent"]),
            parts_delivered=int(d["parts_delivered"]),
            phone=_opt_str(d.get("phone")),
            sim=_opt_int(d.get("sim")),
            error=_opt_str(d.get("error")),
            code=_opt_int(d.get("code")),
        )


@dataclass(frozen=True)
class SimRef:
    """A SIM named by its phone's id and its sub_id (pool members and prefix rules)."""

    phone: str
    sub_id: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimRef:
        return cls(phone=str(d["phone"]), sub_id=int(d["sub_id"]))

    def to_json(self) -> Dict[str, Any]:
        return {"phone": self.phone, "sub_id": self.sub_id}


@dataclass(frozen=True)
class PrefixRule:
    """SIMs of a pool preferred for destinations starting with `prefix` (`+` and digits)."""

    prefix: str
    sims: List[SimRef] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PrefixRule:
        return cls(prefix=str(d["prefix"]), sims=[SimRef.from_json(s) for s in d.get("sims", [])])

    def to_json(self) -> Dict[str, Any]:
        return {"prefix": self.prefix, "sims": [s.to_json() for s in self.sims]}


@dataclass(frozen=True)
class Pool:
    """A SIM pool: the answer of `POST /v1/pools` and the items of `GET /v1/pools`."""

    name: str
    members: List[SimRef]
    created_at: str
    prefixes: List[PrefixRule] = field(default_factory=list)
    sticky: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Pool:
        return cls(
            name=str(d["name"]),
            members=[SimRef.from_json(s) for s in d["members"]],
            created_at=str(d["created_at"]),
            prefixes=[PrefixRule.from_json(p) for p in d.get("prefixes", [])],
            sticky=bool(d.get("sticky", False)),
        )


@dataclass(frozen=True)
class SimStat:
    """One SIM of `GET /v1/sims` and `GET /v1/pools/{name}/stats`: its relay-side settings,
    health `state` (`healthy`, `cooldown`, `quarantined`, `probing`) and figures (`sent` and
    `failures` by reason count since the relay started)."""

    phone: str
    sub_id: int
    online: bool
    state: str
    parts_per_minute: int
    queue_parts: int
    routed_today: int
    utc_offset_min: int
    throughput_per_min: float
    pace_utilisation: float
    sent: int
    drain_seconds: float
    failures: Dict[str, int] = field(default_factory=dict)
    daily_cap: Optional[int] = None
    hours: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimStat:
        return cls(
            phone=str(d["phone"]),
            sub_id=int(d["sub_id"]),
            online=bool(d["online"]),
            state=str(d["state"]),
            parts_per_minute=int(d["parts_per_minute"]),
            queue_parts=int(d["queue_parts"]),
            routed_today=int(d["routed_today"]),
            utc_offset_min=int(d["utc_offset_min"]),
            throughput_per_min=float(d["throughput_per_min"]),
            pace_utilisation=float(d["pace_utilisation"]),
            sent=int(d["sent"]),
            drain_seconds=float(d["drain_seconds"]),
            failures={str(k): int(v) for k, v in (d.get("failures") or {}).items()},
            daily_cap=_opt_int(d.get("daily_cap")),
            hours=_opt_str(d.get("hours")),
        )


@dataclass(frozen=True)
class SimTotals:
    """The totals of a `SimReport`. `drain_seconds` is `None` when nothing can drain what is
    queued and waiting."""

    sims: int
    usable_sims: int
    parts_per_minute: int
    queue_parts: int
    waiting_recipients: int
    waiting_parts: int
    throughput_per_min: float
    pace_utilisation: float
    drain_seconds: Optional[float] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimTotals:
        return cls(
            sims=int(d["sims"]),
            usable_sims=int(d["usable_sims"]),
            parts_per_minute=int(d["parts_per_minute"]),
            queue_parts=int(d["queue_parts"]),
            waiting_recipients=int(d["waiting_recipients"]),
            waiting_parts=int(d["waiting_parts"]),
            throughput_per_min=float(d["throughput_per_min"]),
            pace_utilisation=float(d["pace_utilisation"]),
            drain_seconds=_opt_float(d.get("drain_seconds")),
        )


@dataclass(frozen=True)
class SimReport:
    """`GET /v1/sims` (`name` is `None`) and `GET /v1/pools/{name}/stats`."""

    sims: List[SimStat]
    totals: SimTotals
    name: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimReport:
        return cls(
            sims=[SimStat.from_json(s) for s in d["sims"]],
            totals=SimTotals.from_json(d["totals"]),
            name=_opt_str(d.get("name")),
        )


@dataclass(frozen=True)
class SimLimits:
    """A SIM's relay-side limits: the answer of `PATCH /v1/sims/{phone}/{sub_id}`. `hours`
    is `"HH:MM-HH:MM"` local time, `utc_offset_min` local time minus UTC."""

    phone: str
    sub_id: int
    utc_offset_min: int
    daily_cap: Optional[int] = None
    hours: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SimLimits:
        return cls(
            phone=str(d["phone"]),
            sub_id=int(d["sub_id"]),
            utc_offset_min=int(d["utc_offset_min"]),
            daily_cap=_opt_int(d.get("daily_cap")),
            hours=_opt_str(d.get("hours")),
        )


@dataclass(frozen=True)
class Webhook:
    """A webhook: `GET /v1/webhooks` items and the answer of `POST /v1/webhooks`, which
    alone carries the signing `secret`."""

    id: str
    url: str
    events: List[str]
    created_at: str
    secret: Optional[str] = field(default=None, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Webhook:
        return cls(
            id=str(d["id"]),
            url=str(d["url"]),
            events=[str(e) for e in d["events"]],
            created_at=str(d["created_at"]),
            secret=_opt_str(d.get("secret")),
        )


@dataclass(frozen=True)
class Attempt:
    """One attempt of `GET /v1/webhooks/{id}/deliveries`, newest first. `status` is the
    receiver's HTTP status (`None`: no answer), `error` why it failed (`None` for a 2xx),
    `delivery_state` the delivery's state now (`pending`, `delivered`, `dead`; `None` for
    a ping)."""

    event_id: str
    event: str
    at: str
    duration_ms: int
    status: Optional[int] = None
    error: Optional[str] = None
    delivery_state: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Attempt:
        return cls(
            event_id=str(d["event_id"]),
            event=str(d["event"]),
            at=str(d["at"]),
            duration_ms=int(d["duration_ms"]),
            status=_opt_int(d.get("status")),
            error=_opt_str(d.get("error")),
            delivery_state=_opt_str(d.get("delivery_state")),
        )


@dataclass(frozen=True)
class Ping:
    """The answer of `POST /v1/webhooks/{id}/ping`; `ok` when the receiver answered 2xx."""

    event_id: str
    ok: bool
    duration_ms: int
    status: Optional[int] = None
    error: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Ping:
        return cls(
            event_id=str(d["event_id"]),
            ok=bool(d["ok"]),
            duration_ms=int(d["duration_ms"]),
            status=_opt_int(d.get("status")),
            error=_opt_str(d.get("error")),
        )


@dataclass(frozen=True)
class Redelivery:
    """The answer of `POST /v1/webhooks/{id}/deliveries/{event_id}/redeliver` (202)."""

    event_id: str
    delivery_state: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Redelivery:
        return cls(event_id=str(d["event_id"]), delivery_state=str(d["delivery_state"]))


@dataclass(frozen=True)
class ApiKey:
    """An API key: `GET /v1/keys` items, `DELETE /v1/keys/{id}`, and the answer of
    `POST /v1/keys`, which alone carries the `secret`. `prefix` is the start of a generated
    secret (`None` for a configured key)."""

    id: str
    account: str
    name: str
    scopes: List[str]
    created_at: str
    prefix: Optional[str] = None
    last_used_at: Optional[str] = None
    revoked_at: Optional[str] = None
    secret: Optional[str] = field(default=None, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ApiKey:
        return cls(
            id=str(d["id"]),
            account=str(d["account"]),
            name=str(d["name"]),
            scopes=[str(s) for s in d["scopes"]],
            created_at=str(d["created_at"]),
            prefix=_opt_str(d.get("prefix")),
            last_used_at=_opt_str(d.get("last_used_at")),
            revoked_at=_opt_str(d.get("revoked_at")),
            secret=_opt_str(d.get("secret")),
        )


@dataclass(frozen=True)
class PairingCode:
    """The answer of `POST /v1/pairing-codes`: a code a phone exchanges once, within ten
    minutes (`expires_at`), for its device token over `link_url`. `tls_fingerprint` is the
    relay certificate's SHA-256 (`None` without TLS)."""

    code: str = field(repr=False)
    expires_at: str
    ws_url: str
    link_url: str
    tls_fingerprint: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PairingCode:
        return cls(
            code=str(d["code"]),
            expires_at=str(d["expires_at"]),
            ws_url=str(d["ws_url"]),
            link_url=str(d["link_url"]),
            tls_fingerprint=_opt_str(d.get("tls_fingerprint")),
        )


@dataclass(frozen=True)
class RemovedRecipients:
    """What removing a phone did to its recipients."""

    rerouted: int = 0
    failed: int = 0
    cancelled: int = 0
    unknown: int = 0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RemovedRecipients:
        return cls(
            rerouted=int(d["rerouted"]),
            failed=int(d["failed"]),
            cancelled=int(d["cancelled"]),
            unknown=int(d["unknown"]),
        )


@dataclass(frozen=True)
class PhoneRemoval:
    """The answer of `DELETE /v1/phones/{id}`."""

    id: str
    removed_at: str
    recipients: RemovedRecipients

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PhoneRemoval:
        return cls(
            id=str(d["id"]),
            removed_at=str(d["removed_at"]),
            recipients=RemovedRecipients.from_json(d["recipients"]),
        )
