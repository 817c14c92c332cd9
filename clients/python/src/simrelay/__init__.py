"""A typed client of the simrelay SMS relay's HTTP API (`/v1`), sync and async.

    from simrelay import Client
    with Client() as c:                      # SIMRELAY_URL / SIMRELAY_KEY
        m = c.send("+15551230001", "hello", id="hello-1")
        c.wait_for_state(m.id, "delivered", timeout=30)
        otp = c.wait_for_sms(contains="code", timeout=60).text
"""

from .client import KEEP, AsyncClient, Client, Keep, PrefixLike, SimLike, Time, rfc3339
from .errors import SimrelayError, WaitTimeout
from .types import (
    FINAL_STATES,
    ApiKey,
    Attempt,
    HistoryItem,
    InboxSms,
    Message,
    Page,
    PairingCode,
    Phone,
    PhoneRemoval,
    Ping,
    Pool,
    PrefixRule,
    Recipient,
    Redelivery,
    RemovedRecipients,
    SimInfo,
    SimLimits,
    SimRef,
    SimReport,
    SimStat,
    SimTotals,
    State,
    Webhook,
)

__all__ = [
    "KEEP",
    "ApiKey",
    "AsyncClient",
    "Attempt",
    "Client",
    "FINAL_STATES",
    "HistoryItem",
    "InboxSms",
    "Keep",
    "Message",
    "Page",
    "PairingCode",
    "Phone",
    "PhoneRemoval",
    "Ping",
    "Pool",
    "PrefixLike",
    "PrefixRule",
    "Recipient",
    "Redelivery",
    "RemovedRecipients",
    "SimInfo",
    "SimLike",
    "SimLimits",
    "SimRef",
    "SimReport",
    "SimStat",
    "SimTotals",
    "SimrelayError",
    "State",
    "Time",
    "WaitTimeout",
    "Webhook",
    "rfc3339",
]
__version__ = "0.1.0"
