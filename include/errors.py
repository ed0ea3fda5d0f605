"""The one base of the refusals a user reads: a report the door does not take, a workbook that fails whole."""

from __future__ import annotations

from include.masking import redact


class Refused(Exception):
    """Something a user sent is refused: ``reason`` is a stable English id, ``message`` Chinese and says what to
    do next. A message may quote what was sent: personal numbers in it are masked."""

    def __init__(self, reason: str, message: str) -> None:
        message = redact(message)
        super().__init__(message)
        self.reason = reason
        self.message = message
