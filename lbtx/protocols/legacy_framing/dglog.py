"""The local logger's legacy input frame and answer (formats.md §4.2, §4.5). No I/O.

::

    frame  = "DGLOG" length:int32-LE payload      (length > 0)
    payload = the ULM record, its LF and a NUL byte (producers send strlen(line)+1)
    answer = code:int32-LE                          (0, an errno or an L&B error code)

:class:`DglogDecoder` yields the record with its trailing NUL and LF removed.
Anything but ``DGLOG`` at a frame start, or a length that is not positive, is a
:class:`DglogFrameError` whose :attr:`~DglogFrameError.answer` (``EINVAL``) the
logger sends before it closes the connection.

>>> frame = encode_dglog(b'DATE=20240301120000.000000 LVL=SYSTEM')
>>> frame[:5], int.from_bytes(frame[5:9], "little")
(b'DGLOG', 39)
>>> DglogDecoder().feed(frame)
[b'DATE=20240301120000.000000 LVL=SYSTEM']
"""

from __future__ import annotations

import errno
import struct

from lbtx.protocols.errors import FrameError

__all__ = ["DGLOG_MAGIC", "HEADER_SIZE", "DEFAULT_MAX_FRAME", "DglogFrameError", "DglogDecoder",
           "DglogAnswerDecoder", "encode_dglog", "encode_dglog_answer"]

DGLOG_MAGIC = b"DGLOG"
#: Magic word and length field.
HEADER_SIZE = 9
#: Largest payload accepted unless configured otherwise.
DEFAULT_MAX_FRAME = 16 * 1024 * 1024

_I32 = struct.Struct("<i")


class DglogFrameError(FrameError):
    """A frame the logger refuses; :attr:`answer` is the code to send back."""

    def __init__(self, reason: str, *, answer: int = errno.EINVAL, offset: int | None = None):
        self.answer = answer
        super().__init__(reason, offset=offset)


def encode_dglog(record: bytes) -> bytes:
    """The frame a producer sends for one ULM record (given with or without its LF)."""
    if record.endswith(b"\n"):
        record = record[:-1]
    payload = record + b"\n\0"
    return DGLOG_MAGIC + _I32.pack(len(payload)) + payload


def encode_dglog_answer(code: int) -> bytes:
    """The logger's answer: 0 for success, else an errno or L&B error code."""
    return _I32.pack(code)


class DglogDecoder:
    """DGLOG frames in, records out (each without its trailing NUL and LF)."""

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._length: int | None = None
        self._offset = 0
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the records of the frames it completes.

        :raises DglogFrameError: a bad magic word or length, now or earlier.
        """
        if self._error is not None:
            self._error.decoded = []
            raise self._error
        self._buffer += data
        out: list[bytes] = []
        try:
            while (record := self._next()) is not None:
                out.append(record)
        except FrameError as e:
            self._error = e
            self._buffer.clear()
            e.decoded = out
            raise
        return out

    def finish(self) -> None:
        """Declare the end of the stream.

        :raises FrameError: it ended inside a frame (a producer that hung up
            before its header was complete gets no answer, formats.md §4.2).
        """
        if self._error is None and self._buffer:
            raise FrameError(f"stream ended inside a frame after {len(self._buffer)} bytes",
                             offset=self._offset)

    def _next(self) -> bytes | None:
        buf = self._buffer
        if self._length is None:
            head = bytes(buf[:len(DGLOG_MAGIC)])
            if not DGLOG_MAGIC.startswith(head):
                raise DglogFrameError(f"frame does not start with DGLOG: {head!r}",
                                      offset=self._offset)
            if len(buf) < HEADER_SIZE:
                return None
            (length,) = _I32.unpack_from(buf, len(DGLOG_MAGIC))
            if length <= 0:
                raise DglogFrameError(f"frame length {length} is not positive",
                                      offset=self._offset)
            if length > self.max_frame:
                raise DglogFrameError(f"frame of {length} bytes exceeds the maximum frame "
                                      f"size of {self.max_frame}", offset=self._offset)
            self._length = length
        end = HEADER_SIZE + self._length
        if len(buf) < end:
            return None
        record = bytes(buf[HEADER_SIZE:end])
        del buf[:end]
        self._offset += end
        self._length = None
        if record.endswith(b"\0"):
            record = record[:-1]
        if record.endswith(b"\n"):
            record = record[:-1]
        return record


class DglogAnswerDecoder:
    """The producer's side: answer codes in, as they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[int]:
        """Add ``data``; return the answers it completes (never raises)."""
        self._buffer += data
        n = len(self._buffer) // _I32.size * _I32.size
        codes = [c for (c,) in _I32.iter_unpack(self._buffer[:n])]
        del self._buffer[:n]
        return codes

    def finish(self) -> None:
        """:raises FrameError: the stream ended inside an answer."""
        if self._buffer:
            raise FrameError(f"stream ended inside an answer after {len(self._buffer)} bytes")
