"""The error every framing decoder raises for bytes it cannot accept.

Decoders in :mod:`lbtx.protocols` (box frames, the legacy interlogger frame, the
DGLOG frame, the first-bytes sniffer) raise :class:`FrameError` or a subclass,
and nothing else, whatever bytes they are fed. After a :class:`FrameError` the
stream is out of step: the decoder refuses further input and the connection
must be closed. Whatever the same call completed before the bad bytes is kept in
:attr:`FrameError.decoded`, so a peer's well-formed requests ahead of the
garbage can still be served.
"""

from __future__ import annotations

__all__ = ["FrameError"]


class FrameError(ValueError):
    """Bytes that are not a well-formed frame: malformed, oversized or out of step.

    :ivar reason: what is wrong, in words (also the exception's message).
    :ivar offset: the stream offset of the offending frame, if known.
    :ivar decoded: the values the failing ``feed`` call completed before the bad
        bytes, in stream order (empty when raised again by a later call).
    """

    def __init__(self, reason: str, *, offset: int | None = None):
        self.reason = reason
        self.offset = offset
        self.decoded: list = []
        super().__init__(reason if offset is None else f"{reason} (stream offset {offset})")
