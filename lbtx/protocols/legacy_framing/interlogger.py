"""The legacy interlogger→server store frame and its reply (formats.md §5.12). No I/O.

::

    frame     = header body
    header    = the body length as 16 right-aligned decimal characters, then LF
    body      = string("michal") string(record)        (a request)
              | int(code) int(minor) string(message)   (a reply)
    string(s) = decimal(len(s)) SP s LF
    int(n)    = decimal(n) LF

The same frame is spoken on the server's store port, on the proxy's store socket
and by the notification interlogger. A malformed header is not answered (the
connection is dropped): :class:`FrameError`. A well-framed request whose body is
wrong (bad magic word, a string that does not match its length) is answered with
``LB_PROTO`` before the connection is closed: :class:`ILBodyError`.

>>> frame = encode_il_request(b'DATE=20240301120000.000000 ...')
>>> frame[:17]
b'              43\\n'
>>> ILRequestDecoder().feed(frame)
[b'DATE=20240301120000.000000 ...']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lbtx.protocols.errors import FrameError

__all__ = ["IL_MAGIC", "HEADER_SIZE", "DEFAULT_MAX_FRAME", "ILBodyError", "ILReply",
           "ILRequestDecoder", "ILReplyDecoder", "encode_il_request", "encode_il_reply"]

#: The magic word that opens every request body.
IL_MAGIC = b"michal"
#: 16 length characters and an LF.
HEADER_SIZE = 17
#: Largest body accepted unless configured otherwise (as for box frames).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024

_HEADER_RE = re.compile(rb" *([0-9]+)\n\Z")
_INT_RE = re.compile(rb"-?[0-9]{1,19}\n")
#: Longest decimal length prefix of a string (16 digits, as the frame header).
_MAX_DIGITS = 16


class ILBodyError(FrameError):
    """A well-framed body that is not a valid request (or reply); a request is
    answered with ``LB_PROTO``/0 before the connection is closed."""


@dataclass(frozen=True)
class ILReply:
    """A server's reply: major code (``LB_OK`` 0, ``LB_PROTO`` 400, ...), minor code
    (an errno or L&B error code) and the server's message."""

    code: int
    minor: int
    message: str


def _frame(body: bytes) -> bytes:
    return b"%16d\n" % len(body) + body


def _string(s: bytes) -> bytes:
    return b"%d " % len(s) + s + b"\n"


def encode_il_request(record: bytes) -> bytes:
    """The request frame carrying one ULM record (the spool line without its LF)."""
    return _frame(_string(IL_MAGIC) + _string(record))


def encode_il_reply(code: int, minor: int, message: str) -> bytes:
    """The reply frame; ``message`` is the server's description, or ``OK``."""
    return _frame(b"%d\n%d\n" % (code, minor) + _string(message.encode("utf-8", "replace")))


class _LengthFramed:
    """Reads ``header body`` frames and hands each body to :meth:`_parse_body`."""

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._body_length: int | None = None
        self._offset = 0
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list:
        """Add ``data``; return the values of the frames it completes.

        :raises FrameError: malformed or oversized header (now or earlier);
            :class:`ILBodyError` for a malformed body.
        """
        if self._error is not None:
            self._error.decoded = []
            raise self._error
        self._buffer += data
        out = []
        try:
            while True:
                value = self._next()
                if value is None:
                    return out
                out.append(value)
        except FrameError as e:
            self._error = e
            self._buffer.clear()
            e.decoded = out
            raise

    def finish(self) -> None:
        """Declare the end of the stream.

        :raises FrameError: it ended inside a frame.
        """
        if self._error is None and self._buffer:
            what = ("header" if self._body_length is None
                    else f"body ({len(self._buffer)} of {self._body_length} bytes)")
            raise FrameError(f"stream ended inside a frame {what}", offset=self._offset)

    def _next(self):
        buf = self._buffer
        if self._body_length is None:
            if len(buf) < HEADER_SIZE:
                return None
            header = bytes(buf[:HEADER_SIZE])
            m = _HEADER_RE.match(header)
            if m is None:
                raise FrameError(f"malformed frame header {header!r}: expected 16 "
                                 f"right-aligned digits and LF", offset=self._offset)
            length = int(m.group(1))
            if length <= 0:
                raise FrameError("frame header gives a body length of 0", offset=self._offset)
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the maximum frame size "
                                 f"of {self.max_frame}", offset=self._offset)
            self._body_length = length
        end = HEADER_SIZE + self._body_length
        if len(buf) < end:
            return None
        body = bytes(buf[HEADER_SIZE:end])
        offset = self._offset
        del buf[:end]
        self._offset += end
        self._body_length = None
        return self._parse_body(body, offset)

    def _parse_body(self, body: bytes, offset: int):
        raise NotImplementedError

    @staticmethod
    def _string(body: bytes, pos: int, what: str, offset: int) -> tuple[bytes, int]:
        """``decimal SP bytes LF`` at ``pos``: the bytes and the position after the LF."""
        sp = body.find(b" ", pos, pos + _MAX_DIGITS + 1)
        digits = body[pos:sp] if sp >= 0 else b""
        if not digits or not digits.isdigit():
            raise ILBodyError(f"{what}: expected a decimal length and a space at body "
                              f"offset {pos}, got {body[pos:pos + 20]!r}", offset=offset)
        start = sp + 1
        end = start + int(digits)
        if end >= len(body) or body[end] != 0x0A:
            raise ILBodyError(f"{what}: {int(digits)} bytes from body offset {start} are not "
                              f"followed by LF", offset=offset)
        return body[start:end], end + 1


class ILRequestDecoder(_LengthFramed):
    """Request frames in, records (bytes) out."""

    def _parse_body(self, body: bytes, offset: int) -> bytes:
        magic, pos = self._string(body, 0, "magic word", offset)
        if magic != IL_MAGIC:
            raise ILBodyError(f"wrong magic word {magic[:20]!r}", offset=offset)
        record, pos = self._string(body, pos, "record", offset)
        if pos != len(body):
            raise ILBodyError(f"{len(body) - pos} bytes after the record", offset=offset)
        return record


class ILReplyDecoder(_LengthFramed):
    """Reply frames in, :class:`ILReply` values out."""

    def _parse_body(self, body: bytes, offset: int) -> ILReply:
        numbers = []
        pos = 0
        for what in ("code", "minor"):
            m = _INT_RE.match(body, pos)
            if m is None:
                raise ILBodyError(f"reply {what}: expected a decimal number and LF at body "
                                  f"offset {pos}", offset=offset)
            numbers.append(int(m.group()[:-1]))
            pos = m.end()
        message, pos = self._string(body, pos, "reply message", offset)
        if pos != len(body):
            raise ILBodyError(f"{len(body) - pos} bytes after the reply message", offset=offset)
        return ILReply(numbers[0], numbers[1], message.decode("utf-8", "replace"))
