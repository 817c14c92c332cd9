"""A typed client of the simrelay SMS relay's HTTP API (`/v1`), sync and async.

    from simrelay import Client
    with Client() as c:                      # SIMRELAY_URL / SIMRELAY_KEY
        m = c.send("+15551230001", "hello", id="hello-1")
        c.wait_for_state(m.id, "delivered", timeout=30)
        otp = c.wait_for_sms(contains="code", timeout=60).text
"""

from .client import AsyncClient, Client, Time, rfc3339
from .errors import SimrelayError, WaitTimeout
from .types import FINAL_STATES, InboxSms, Message, Page, Phone, Recipient, SimInfo, State

__all__ = [
    "AsyncClient",
    "Client",
    "FINAL_STATES",
    "InboxSms",
    "Message",
    "Page",
    "Phone",
    "Recipient",
    "SimInfo",
    "SimrelayError",
    "State",
    "Time",
    "WaitTimeout",
    "rfc3339",
]
__version__ = "0.1.0"
