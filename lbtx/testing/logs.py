"""Capturing what the code logs through :mod:`twisted.logger`, for tests."""

from __future__ import annotations

from twisted.logger import LogLevel, formatEvent, globalLogPublisher

__all__ = ["CapturedLogs"]


class CapturedLogs:
    """``with CapturedLogs() as logged:`` collects every event published meanwhile."""

    def __enter__(self) -> "CapturedLogs":
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        return self

    def __exit__(self, *exc) -> None:
        globalLogPublisher.removeObserver(self.events.append)

    def at(self, level: LogLevel) -> list[dict]:
        """The events logged at ``level``."""
        return [e for e in self.events if e.get("log_level") is level]

    def failures(self) -> list[dict]:
        """The events that carry a failure or are errors."""
        return [e for e in self.events if e.get("log_failure") is not None or e.get("isError")]

    def formatted(self) -> str:
        return "\n".join(formatEvent(e) for e in self.events)
