"""The HTTP-like framing of the legacy query protocol, sans I/O (formats.md §7.1).

A message is a start line, header lines, an empty line and an optional body. Lines
end with CRLF; a bare LF is refused. The body length comes only from
``Content-Length:`` (case-insensitive); without it there is no body. Several
requests may follow one another on a connection.

:class:`RequestDecoder` turns bytes into :class:`HTTPRequest` values. Its buffer is
capped: a start or header line longer than ``max_line``, more than ``max_headers``
header lines, a body longer than ``max_body`` or a bad ``Content-Length`` raise
:class:`HTTPFramingError`, after which the decoder refuses further input (the stream
is out of step; the caller answers ``400`` and closes). :class:`ResponseDecoder` is
the client side; :func:`format_response` and :func:`format_request` write messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbtx.protocols.legacy_query.errors import REASONS

__all__ = ["HTTPLimits", "HTTPRequest", "HTTPResponse", "HTTPFramingError", "RequestDecoder",
           "ResponseDecoder", "format_response", "format_request", "DEFAULT_HTTP_LIMITS"]

CRLF = b"\r\n"
_CONTENT_LENGTH = "content-length:"


@dataclass(frozen=True)
class HTTPLimits:
    """Caps on one message: upstream's receive buffer holds about 8 KiB per line."""

    max_line: int = 8192
    max_headers: int = 100
    max_body: int = 1024 * 1024


DEFAULT_HTTP_LIMITS = HTTPLimits()


class HTTPFramingError(ValueError):
    """Bytes that cannot be framed as a message; the stream is out of step.

    :ivar reason: what is wrong.
    :ivar too_big: whether a size limit was exceeded (``E2BIG`` upstream).
    """

    def __init__(self, reason: str, *, too_big: bool = False):
        self.reason = reason
        self.too_big = too_big
        super().__init__(reason)


@dataclass(frozen=True)
class HTTPRequest:
    """One request: the start line and header lines as sent (ISO-8859-1 text)."""

    request_line: str
    headers: tuple[str, ...] = ()
    body: bytes | None = None

    @property
    def method(self) -> str:
        return self.request_line.split(" ", 1)[0]


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    headers: tuple[str, ...] = ()
    body: bytes | None = None

    def header(self, name: str) -> str | None:
        """The value of the first header called ``name`` (case-insensitive)."""
        prefix = name.lower() + ":"
        for line in self.headers:
            if line.lower().startswith(prefix):
                return line[len(prefix):].strip()
        return None


def _content_length(line: str, limit: int) -> int:
    text = line[len(_CONTENT_LENGTH):].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise HTTPFramingError(f"bad Content-Length {text[:40]!r}")
    value = int(text)
    if value > limit:
        raise HTTPFramingError(f"body of {value} bytes exceeds the limit of {limit}", too_big=True)
    return value


class _Decoder:
    """Shared framing of requests and responses."""

    def __init__(self, limits: HTTPLimits = DEFAULT_HTTP_LIMITS):
        self._limits = limits
        self._buf = bytearray()
        self._first: str | None = None
        self._headers: list[str] = []
        self._length: int | None = None
        self._failed: HTTPFramingError | None = None

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """Whether no part of a message has been received since the last one."""
        return not self._buf and self._first is None

    def _fail(self, reason: str, too_big: bool = False) -> HTTPFramingError:
        self._failed = HTTPFramingError(reason, too_big=too_big)
        self._buf.clear()
        return self._failed

    def _take_line(self) -> str | None:
        end = self._buf.find(CRLF)
        limit = self._limits.max_line
        if end < 0:
            if b"\n" in self._buf:
                raise self._fail("line ends with a bare LF")
            if len(self._buf) > limit:
                raise self._fail(f"line longer than {limit} bytes", too_big=True)
            return None
        if end > limit:
            raise self._fail(f"line longer than {limit} bytes", too_big=True)
        raw = bytes(self._buf[:end])
        if b"\n" in raw or b"\r" in raw:
            raise self._fail("line holds a bare CR or LF")
        del self._buf[:end + 2]
        return raw.decode("iso-8859-1")

    def _feed(self, data: bytes) -> list[tuple[str, tuple[str, ...], bytes | None]]:
        if self._failed is not None:
            raise self._failed
        self._buf += data
        out = []
        while True:
            if self._length is None:
                line = self._take_line()
                if line is None:
                    break
                if self._first is None:
                    if line == "":
                        continue  # tolerate blank lines between messages
                    self._first = line
                    continue
                if line != "":
                    if len(self._headers) >= self._limits.max_headers:
                        raise self._fail(f"more than {self._limits.max_headers} header lines",
                                         too_big=True)
                    self._headers.append(line)
                    continue
                length = 0
                try:
                    for h in self._headers:
                        if h.lower().startswith(_CONTENT_LENGTH):
                            value = _content_length(h, self._limits.max_body)
                            if length and value != length:
                                raise HTTPFramingError("conflicting Content-Length headers")
                            length = value
                except HTTPFramingError as e:
                    raise self._fail(e.reason, e.too_big) from None
                has_body = any(h.lower().startswith(_CONTENT_LENGTH) for h in self._headers)
                self._length = length if has_body else -1
            if self._length >= 0 and len(self._buf) < self._length:
                break
            body = None
            if self._length >= 0:
                body = bytes(self._buf[:self._length])
                del self._buf[:self._length]
            out.append((self._first, tuple(self._headers), body))
            self._first, self._headers, self._length = None, [], None
        return out


class RequestDecoder(_Decoder):
    """Bytes in, requests out."""

    def feed(self, data: bytes) -> list[HTTPRequest]:
        return [HTTPRequest(first, headers, body) for first, headers, body in self._feed(data)]


class ResponseDecoder(_Decoder):
    """Bytes in, responses out (the client side)."""

    def feed(self, data: bytes) -> list[HTTPResponse]:
        out = []
        for first, headers, body in self._feed(data):
            parts = first.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise self._fail(f"bad status line {first[:80]!r}")
            out.append(HTTPResponse(int(parts[1]), headers, body))
        return out


def format_response(status: int, headers: tuple[str, ...] | list[str] = (),
                    body: bytes | None = None) -> bytes:
    """A response; ``Content-Length`` is added when there is a body."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown error')}", *headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines).encode("iso-8859-1") + b"\r\n\r\n"
    return head + (body or b"")


def format_request(request_line: str, headers: tuple[str, ...] | list[str] = (),
                   body: bytes | None = None) -> bytes:
    """A request as the legacy client sends it."""
    lines = [request_line, *headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines).encode("iso-8859-1") + b"\r\n\r\n"
    return head + (body or b"")
