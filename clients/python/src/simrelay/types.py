"""The views the relay's `/v1` API answers (docs/protocol.md), as typed dataclasses.

Timestamps are kept as the RFC 3339 strings the relay sends (`2026-11-22T02:37:40.412Z`).
Fields a newer relay adds are ignored, so an older client keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, List, Literal, Mapping, Optional, TypeVar

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
]
"""The state of a message or of one recipient (the same ten names)."""

FINAL_STATES: frozenset[str] = frozenset(
    {"delivered", "failed", "expired", "cancelled", "unknown"}
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
