"""The server ends of the legacy framings, sans-I/O (see :mod:`lbtx.protocols.actions`).

Each legacy frame carries one record and gets one answer, so every frame is a
:class:`~lbtx.protocols.actions.Handle` of one line, numbered by arrival. The
first complete frame counts as the handshake.

* :class:`ILServerSession`: the store port's legacy interlogger framing
  (formats.md §5.12, reply mapping §6.7);
* :class:`DglogServerSession`: the local logger's DGLOG framing (§4.2, §4.5).
"""

from __future__ import annotations

from zope.interface import implementer

from lbtx.protocols.actions import Action, Close, Handle, Ready
from lbtx.protocols.box.messages import ErrorCode, Result
from lbtx.protocols.errors import FrameError
from lbtx.protocols.interfaces import IServerSession
from lbtx.protocols.legacy_framing.codes import (
    LB_PROTO, dglog_answer_for, dglog_answer_for_error, il_reply_for, il_reply_for_error)
from lbtx.protocols.legacy_framing.dglog import (
    DEFAULT_MAX_FRAME, DglogDecoder, DglogFrameError, encode_dglog_answer)
from lbtx.protocols.legacy_framing.interlogger import (
    ILBodyError, ILRequestDecoder, encode_il_reply)
from lbtx.protocols.sniff import Framing

__all__ = ["ILServerSession", "DglogServerSession"]


class _OneRecordPerFrame:
    """Shared by both sessions: frames in, one ``Handle`` per frame out."""

    framing: Framing

    def __init__(self, decoder) -> None:
        self._decoder = decoder
        self._next_id = 1
        self._ready = False
        self._closed = False

    def feed(self, data: bytes) -> list[Action]:
        if self._closed:
            return []
        error = None
        try:
            records = self._decoder.feed(data)
        except FrameError as e:
            records, error = e.decoded, e
        actions: list[Action] = []
        for record in records:
            if not self._ready:
                self._ready = True
                actions.append(Ready(self.framing.value))
            actions.append(Handle(self._next_id, (record,)))
            self._next_id += 1
        if error is not None:
            self._closed = True
            actions.append(Close(self._refusal(error), f"malformed {self.framing.value} "
                                                       f"frame: {error}"))
        return actions

    def end(self) -> str | None:
        try:
            self._decoder.finish()
        except FrameError as e:
            return e.reason
        return None

    def _refusal(self, error: FrameError) -> bytes:
        raise NotImplementedError


@implementer(IServerSession)
class ILServerSession(_OneRecordPerFrame):
    """A legacy interlogger (or DIRECT producer) on the store port.

    A malformed header is not answered; a bad body is answered ``LB_PROTO``/0;
    either closes the connection (§5.12).
    """

    framing = Framing.LEGACY_INTERLOGGER

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME):
        super().__init__(ILRequestDecoder(max_frame=max_frame))

    def ack(self, request_id: int, results: list[Result]) -> bytes:
        return encode_il_reply(*il_reply_for(results[0]))

    def fail(self, request_id: int, code: ErrorCode, message: str,
             errno_value: int | None = None) -> bytes:
        return encode_il_reply(*il_reply_for_error(code, message))

    def _refusal(self, error: FrameError) -> bytes:
        if isinstance(error, ILBodyError):
            return encode_il_reply(LB_PROTO, 0, error.reason)
        return b""


@implementer(IServerSession)
class DglogServerSession(_OneRecordPerFrame):
    """A legacy producer on the local logger's port: each frame is answered with
    one integer; a bad frame start or length is answered ``EINVAL`` and closes."""

    framing = Framing.DGLOG

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME):
        super().__init__(DglogDecoder(max_frame=max_frame))

    def ack(self, request_id: int, results: list[Result]) -> bytes:
        return encode_dglog_answer(dglog_answer_for(results[0]))

    def fail(self, request_id: int, code: ErrorCode, message: str,
             errno_value: int | None = None) -> bytes:
        return encode_dglog_answer(dglog_answer_for_error(code, errno_value))

    def _refusal(self, error: FrameError) -> bytes:
        if isinstance(error, DglogFrameError):
            return encode_dglog_answer(error.answer)
        return b""
