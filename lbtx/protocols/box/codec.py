"""Box frames (docs/protocol.md §2): bytes in, key/value boxes out. No I/O.

A stream starts with the 8-byte :data:`MAGIC`, then carries frames::

    frame = body-length:uint32-BE  body
    body  = entry+
    entry = key-length:uint16-BE key  value-length:uint32-BE value

A key is 1-255 visible ASCII bytes (0x21-0x7E), unique within its box; a value is
any bytes. The body must be exactly filled by its entries. A body longer than
the configured maximum (default :data:`DEFAULT_MAX_FRAME`, 16 MiB) is refused as
soon as its length field is read, so the decoder's buffer never holds more than
one frame beyond what the caller handed it in one call.

>>> frame = encode_box({"_command": b"hello"})
>>> BoxDecoder().feed(frame)
[{'_command': b'hello'}]
"""

from __future__ import annotations

import re
import struct
from typing import Mapping

from lbtx.protocols.errors import FrameError

__all__ = ["Box", "BoxDecoder", "FrameError", "MAGIC", "DEFAULT_MAX_FRAME", "MAX_KEY_LENGTH",
           "HEADER_SIZE", "encode_box", "frame_overhead"]

#: The first bytes of every box stream, in both directions. The high first byte
#: tells a box stream from the legacy framings (which start with a space, a digit
#: or ``D``) and from 7-bit channels; CR LF catches line-ending translation.
MAGIC = b"\x89LBTX\r\n\x1a"
#: Largest frame body accepted unless configured otherwise.
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
#: Longest key.
MAX_KEY_LENGTH = 255
#: Bytes before a frame's body (its length field).
HEADER_SIZE = 4

Box = dict[str, bytes]

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_KEY_RE = re.compile(rb"[!-~]{1,255}\Z")


def frame_overhead(key: str) -> int:
    """Bytes an entry with this key adds to a body besides its value."""
    return _U16.size + len(key) + _U32.size


def encode_box(box: Mapping[str, bytes], *, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """One frame holding ``box`` (entries in the mapping's order).

    :raises ValueError: a key is not 1-255 visible ASCII characters, a value is
        not bytes, or the box is empty.
    :raises FrameError: the body would exceed ``max_frame`` bytes.
    """
    if not box:
        raise ValueError("a box needs at least one key")
    parts = [b""]
    append = parts.append
    size = 0
    heads = _KEY_HEADS
    pack = _U32.pack
    for key, value in box.items():
        head = heads.get(key)
        if head is None:
            head = _key_head(key)
        if type(value) is not bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise ValueError(f"value of box key {key!r} is {type(value).__name__}, "
                                 f"not bytes")
            value = bytes(value)
        append(head)
        append(pack(len(value)))
        append(value)
        size += len(head) + 4 + len(value)
    if size > max_frame:
        raise FrameError(f"box of {size} bytes exceeds the maximum frame size of {max_frame}")
    parts[0] = _U32.pack(size)
    return b"".join(parts)


#: key -> its encoded length and bytes, for keys seen before (checked once)
_KEY_HEADS: dict[str, bytes] = {}
#: raw key bytes -> key, for keys decoded before (checked once)
_KEYS: dict[bytes, str] = {}
_KEY_CACHE_LIMIT = 16384


def _key_head(key) -> bytes:
    try:
        raw_key = key.encode("ascii")
    except (AttributeError, UnicodeEncodeError):
        raw_key = b""
    if not _KEY_RE.match(raw_key):
        raise ValueError(f"box key {key!r} is not 1-255 visible ASCII characters")
    head = _U16.pack(len(raw_key)) + raw_key
    if len(_KEY_HEADS) < _KEY_CACHE_LIMIT:
        _KEY_HEADS[key] = head
    return head


class BoxDecoder:
    """Turns a byte stream into boxes; knows nothing of sockets, clocks or peers.

    :param max_frame: largest body accepted; a longer length field is a
        :class:`FrameError` at once.
    :param preamble: bytes the stream must start with (:data:`MAGIC` on a
        connection; empty to decode bare frames).

    After a :class:`FrameError` the decoder is spent: every later :meth:`feed`
    raises the same error.
    """

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME, preamble: bytes = b""):
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self._preamble = preamble
        self._buffer = bytearray()
        self._offset = 0  # stream offset of the buffer's first byte
        self._error: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a complete box."""
        return len(self._buffer)

    @property
    def started(self) -> bool:
        """Whether the preamble (if any) has been seen in full."""
        return not self._preamble

    def feed(self, data: bytes) -> list[Box]:
        """Add ``data``; return the boxes it completes, in stream order.

        :raises FrameError: the stream is malformed (bad preamble, length field
            over the maximum, entries that do not fill the body, bad or duplicate
            key), now or earlier.
        """
        if self._error is not None:
            self._error.decoded = []
            raise self._error
        self._buffer += data
        boxes: list[Box] = []
        try:
            self._drain(boxes)
        except FrameError as e:
            self._error = e
            self._buffer.clear()
            e.decoded = boxes
            raise
        return boxes

    def finish(self) -> None:
        """Declare the end of the stream.

        :raises FrameError: it ended inside a frame (or inside the preamble).
        """
        if self._error is None and self._buffer:
            if self._preamble:
                raise FrameError(f"stream ended inside the preamble after "
                                 f"{len(self._buffer)} bytes", offset=self._offset)
            raise FrameError(f"stream ended inside a frame: {self._missing()}",
                             offset=self._offset)

    # --- internals ----------------------------------------------------------------

    def _missing(self) -> str:
        buf = self._buffer
        if len(buf) < HEADER_SIZE:
            return f"{len(buf)} of {HEADER_SIZE} length bytes"
        (length,) = _U32.unpack_from(buf)
        return f"{len(buf) - HEADER_SIZE} of {length} body bytes"

    def _drain(self, boxes: list[Box]) -> None:
        buf = self._buffer
        if self._preamble:
            want = self._preamble
            n = min(len(buf), len(want))
            if buf[:n] != want[:n]:
                raise FrameError(f"not a box stream: it starts with {bytes(buf[:n])!r}, "
                                 f"expected {want!r}", offset=0)
            if n < len(want):
                return
            del buf[:n]
            self._offset += n
            self._preamble = b""
        while len(buf) >= HEADER_SIZE:
            (length,) = _U32.unpack_from(buf)
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the maximum frame size "
                                 f"of {self.max_frame}", offset=self._offset)
            if length == 0:
                raise FrameError("empty frame: a box needs at least one key",
                                 offset=self._offset)
            end = HEADER_SIZE + length
            if len(buf) < end:
                break
            boxes.append(self._parse_body(memoryview(buf)[HEADER_SIZE:end]))
            del buf[:end]
            self._offset += end

    def _parse_body(self, body: memoryview) -> Box:
        box: Box = {}
        pos, end = 0, len(body)
        keys = _KEYS
        u16, u32 = _U16.unpack_from, _U32.unpack_from
        try:
            while pos < end:
                if end - pos < 2:
                    raise self._body_error("truncated key length", pos)
                (klen,) = u16(body, pos)
                pos += 2
                if not 1 <= klen <= MAX_KEY_LENGTH:
                    raise self._body_error(f"key length {klen} is outside 1-{MAX_KEY_LENGTH}",
                                           pos - 2)
                if end - pos < klen + 4:
                    raise self._body_error("entry runs past the end of the frame", pos)
                raw_key = body[pos:pos + klen].tobytes()
                key = keys.get(raw_key)
                if key is None:
                    if not _KEY_RE.match(raw_key):
                        raise self._body_error(f"key {raw_key!r} is not visible ASCII", pos)
                    key = raw_key.decode("ascii")
                    if len(keys) < _KEY_CACHE_LIMIT:
                        keys[raw_key] = key
                pos += klen
                (vlen,) = u32(body, pos)
                pos += 4
                if vlen > end - pos:
                    raise self._body_error(f"value of {key!r} claims {vlen} bytes, "
                                           f"{end - pos} left in the frame", pos - 4)
                if key in box:
                    raise self._body_error(f"duplicate key {key!r}", pos)
                box[key] = body[pos:pos + vlen].tobytes()
                pos += vlen
        finally:
            body.release()
        return box

    def _body_error(self, reason: str, pos: int) -> FrameError:
        return FrameError(f"malformed frame: {reason} at body offset {pos}", offset=self._offset)
