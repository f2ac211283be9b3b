"""What a producer sees when an event is not acknowledged."""

from __future__ import annotations

__all__ = ["LoggingError", "RefusedError", "UnavailableError"]


class LoggingError(Exception):
    """An event was not acknowledged; nothing may be assumed stored.

    :ivar retryable: sending the same event later may succeed.
    """

    retryable = False


class RefusedError(LoggingError):
    """The logger or server answered and refused the event (``invalid``,
    ``not_owner``, ``exists``, or ``unknown_job``, which is retryable).

    :ivar code: the :class:`~lbtx.protocols.box.messages.ResultCode`.
    """

    def __init__(self, code, reason: str = ""):
        super().__init__(f"{code.value}: {reason}" if reason else code.value)
        self.code = code
        self.retryable = code.retryable


class UnavailableError(LoggingError):
    """No acknowledgement: cannot connect, timed out, connection lost, or the
    receiver failed as a whole (a full disk: ``internal``). Retryable."""

    retryable = True

    def __init__(self, message: str, *, code=None):
        super().__init__(message)
        #: the :class:`~lbtx.protocols.box.messages.ErrorCode` of an error box, if any
        self.code = code
