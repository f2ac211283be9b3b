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
    ``not_owner``, ``exists``, or ``unknown_job``, which is retryable). For
    events sent together (``log_many``) it is the first refused one.

    :ivar code: the :class:`~lbtx.protocols.box.messages.ResultCode`.
    """

    def __init__(self, code, reason: str = "", *, index: int = 0, results=None):
        super().__init__(f"{code.value}: {reason}" if reason else code.value)
        self.code = code
        self.retryable = code.retryable
        #: the position of the refused event among those sent together (0 for one)
        self.index = index
        #: the :class:`~lbtx.protocols.box.messages.Result` of every event sent
        #: together, in order (the others may have been stored), or None
        self.results = results


class UnavailableError(LoggingError):
    """No acknowledgement: cannot connect, timed out, connection lost, or the
    receiver failed as a whole (a full disk: ``internal``). Retryable."""

    retryable = True

    def __init__(self, message: str, *, code=None):
        super().__init__(message)
        #: the :class:`~lbtx.protocols.box.messages.ErrorCode` of an error box, if any
        self.code = code
