"""Errors of the client: every failure of the relay is a `SimrelayError`."""

from __future__ import annotations

from typing import Optional


class SimrelayError(Exception):
    """The relay refused a call, or could not be reached.

    `status` is the HTTP status (`None` when no answer came), `code` the relay's stable
    machine code (`invalid_number`, `unauthorized`, `not_found`, `wait_timeout`, ...; see
    docs/protocol.md, "Errors"), `message` its sentence naming the field or rule at fault.
    """

    def __init__(self, status: Optional[int], code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no answer"
        return f"{self.code} ({where}): {self.message}"


class WaitTimeout(SimrelayError, TimeoutError):
    """Nothing matching came before the timeout (`wait_for_sms`, `wait_for_state`).

    Also a `TimeoutError`, so `except TimeoutError` catches it.
    """
