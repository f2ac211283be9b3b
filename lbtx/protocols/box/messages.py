"""The messages of the box protocol (docs/protocol.md §3-§5) and their boxes. No I/O.

A client sends requests (:class:`Hello`, :class:`EventBatch`); the server sends
one reply per request (:class:`Welcome`, :class:`BatchAck` or
:class:`ErrorReply`), in request order. Every box carries exactly one envelope
key: ``_ask`` (a request, with ``_command``), ``_answer`` (a successful reply)
or ``_error`` (a failed request, or with id 0 a connection-level error).

Decoding a box that is well framed but not a valid message raises
:class:`MessageError`, which says what is wrong and, when the box had a usable
request id, which request to answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME, Box, encode_box

__all__ = [
    "PROTOCOL_VERSIONS", "DEFAULT_MAX_BATCH", "MAX_REQUEST_ID", "CONNECTION_ERROR_ID",
    "ResultCode", "Result", "ErrorCode", "MessageError",
    "Hello", "Welcome", "EventBatch", "BatchAck", "ErrorReply", "Request", "Reply",
    "choose_version", "decode_request", "decode_reply", "reply_id", "encode_message",
]

#: Protocol versions this implementation speaks, oldest first.
PROTOCOL_VERSIONS: tuple[int, ...] = (1,)
#: Most events a server takes in one batch unless configured otherwise.
DEFAULT_MAX_BATCH = 1000
#: Request ids are 1 .. MAX_REQUEST_ID.
MAX_REQUEST_ID = 2**63 - 1
#: The request id of an error box that answers no particular request.
CONNECTION_ERROR_ID = 0

HELLO = "hello"
EVENTS = "events"

_ID_RE = re.compile(rb"[0-9]{1,19}\Z")
_COUNT_RE = re.compile(rb"[0-9]{1,9}\Z")


class ResultCode(str, enum.Enum):
    """What happened to one event of a batch (the ``r.<i>`` token on the wire)."""

    STORED = "stored"            #: committed now
    DUPLICATE = "duplicate"      #: committed before; no effect
    UNKNOWN_JOB = "unknown_job"  #: no such job (yet): keep the event, retry later
    NOT_OWNER = "not_owner"      #: the sender may not log this event for this job
    EXISTS = "exists"            #: exclusive registration of a job that exists
    INVALID = "invalid"          #: the line does not parse or validate

    @property
    def accepted(self) -> bool:
        """The sender may forget the event: it is committed (now or before)."""
        return self in (ResultCode.STORED, ResultCode.DUPLICATE)

    @property
    def retryable(self) -> bool:
        """Sending the same event again later may succeed."""
        return self is ResultCode.UNKNOWN_JOB


#: lbtx.acceptance.Delivery values -> result codes (by value, so this module does
#: not import the acceptance rules and the state machines behind them).
_FROM_DELIVERY = {
    "stored": ResultCode.STORED,
    "duplicate": ResultCode.DUPLICATE,
    "rejected_unregistered": ResultCode.UNKNOWN_JOB,
    "rejected_not_owner": ResultCode.NOT_OWNER,
    "rejected_not_allowed": ResultCode.NOT_OWNER,
    "rejected_exists": ResultCode.EXISTS,
}


@dataclass(frozen=True)
class Result:
    """The outcome of one event: a code, the reason in words, and for ``invalid``
    an optional machine-readable detail (an :class:`~lbtx.errors.LBFormatError`
    code such as ``KEY_DUPLICITY``)."""

    code: ResultCode
    reason: str = ""
    detail: str = ""

    @classmethod
    def from_delivery(cls, delivery, reason: str = "") -> "Result":
        """The result for an :class:`lbtx.acceptance.Delivery` outcome."""
        return cls(_FROM_DELIVERY[getattr(delivery, "value", delivery)], reason)

    @classmethod
    def invalid(cls, reason: str, detail: str = "") -> "Result":
        return cls(ResultCode.INVALID, reason, detail)

    @property
    def accepted(self) -> bool:
        return self.code.accepted


class ErrorCode(str, enum.Enum):
    """Why a request failed as a whole (the ``code`` of an error box)."""

    BAD_REQUEST = "bad_request"                  #: not a valid request; do not resend as is
    UNKNOWN_COMMAND = "unknown_command"          #: a command this server does not know
    UNSUPPORTED_VERSION = "unsupported_version"  #: no common protocol version; closes
    HANDSHAKE_REQUIRED = "handshake_required"    #: a request before the hello; closes
    TOO_LARGE = "too_large"                      #: more events than the server's max_batch
    FRAME_ERROR = "frame_error"                  #: the byte stream is malformed; closes
    INTERNAL = "internal"                        #: the server failed; nothing committed is lost
    TIMEOUT = "timeout"                          #: the server gave up on the request

    @property
    def retryable(self) -> bool:
        """The same request may succeed later (on this or a new connection)."""
        return self in (ErrorCode.INTERNAL, ErrorCode.TIMEOUT)


class MessageError(ValueError):
    """A well-framed box that is not a valid message.

    :ivar reason: what is wrong.
    :ivar code: the :class:`ErrorCode` to answer with.
    :ivar request_id: the request to answer, or None if the box had no usable id
        (then only a connection-level error can be sent).
    """

    def __init__(self, reason: str, *, code: ErrorCode = ErrorCode.BAD_REQUEST,
                 request_id: int | None = None):
        self.reason = reason
        self.code = code
        self.request_id = request_id
        super().__init__(reason)


# --- messages -----------------------------------------------------------------------

@dataclass(frozen=True)
class Hello:
    """The client's first request: the protocol versions it speaks."""

    request_id: int
    versions: tuple[int, ...] = PROTOCOL_VERSIONS
    agent: str = ""

    def to_box(self) -> Box:
        box = {"_ask": _int(self.request_id), "_command": HELLO.encode(),
               "versions": ",".join(str(v) for v in self.versions).encode()}
        if self.agent:
            box["agent"] = self.agent.encode()
        return box


@dataclass(frozen=True)
class Welcome:
    """The server's answer to :class:`Hello`: the version chosen and its limits."""

    request_id: int
    version: int
    agent: str = ""
    max_frame: int = DEFAULT_MAX_FRAME
    max_batch: int = DEFAULT_MAX_BATCH

    def to_box(self) -> Box:
        box = {"_answer": _int(self.request_id), "version": _int(self.version),
               "max_frame": _int(self.max_frame), "max_batch": _int(self.max_batch)}
        if self.agent:
            box["agent"] = self.agent.encode()
        return box


@dataclass(frozen=True)
class EventBatch:
    """Events to store: ULM lines without their line feed."""

    request_id: int
    lines: tuple[bytes, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))

    def to_box(self) -> Box:
        box = {"_ask": _int(self.request_id), "_command": EVENTS.encode(),
               "count": _int(len(self.lines))}
        for i, line in enumerate(self.lines):
            box[f"e.{i}"] = line
        return box


@dataclass(frozen=True)
class BatchAck:
    """The answer to :class:`EventBatch`: one result per event, in order. Sent only
    once every accepted event of the batch is committed."""

    request_id: int
    results: tuple[Result, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))

    def to_box(self) -> Box:
        box = {"_answer": _int(self.request_id), "count": _int(len(self.results))}
        for i, r in enumerate(self.results):
            box[f"r.{i}"] = r.code.value.encode()
            if r.reason:
                box[f"m.{i}"] = r.reason.encode("utf-8", "replace")
            if r.detail:
                box[f"d.{i}"] = r.detail.encode("utf-8", "replace")
        return box


@dataclass(frozen=True)
class ErrorReply:
    """A request that failed as a whole, or (request id 0) a connection-level error.

    ``versions`` lists the server's versions in an ``unsupported_version`` error.
    """

    request_id: int
    code: ErrorCode
    message: str
    versions: tuple[int, ...] = ()

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    def to_box(self) -> Box:
        box = {"_error": _int(self.request_id), "code": self.code.value.encode(),
               "message": self.message.encode("utf-8", "replace")}
        if self.versions:
            box["versions"] = ",".join(str(v) for v in self.versions).encode()
        return box


Request = Union[Hello, EventBatch]
Reply = Union[Welcome, BatchAck, ErrorReply]


def encode_message(message: Request | Reply, *, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """The frame of one message (see :func:`~lbtx.protocols.box.codec.encode_box`)."""
    return encode_box(message.to_box(), max_frame=max_frame)


def choose_version(offered: Iterable[int], supported: Iterable[int] = PROTOCOL_VERSIONS
                   ) -> int | None:
    """The highest version both sides speak, or None."""
    common = set(offered) & set(supported)
    return max(common) if common else None


# --- decoding -----------------------------------------------------------------------

def decode_request(box: Mapping[str, bytes], *, max_batch: int = DEFAULT_MAX_BATCH) -> Request:
    """The request a client sent.

    :raises MessageError: not a request box (``request_id`` None), an unknown
        command (``unknown_command``), a batch over ``max_batch`` events
        (``too_large``) or missing/malformed keys (``bad_request``).
    """
    if "_ask" not in box:
        keys = ", ".join(sorted(box)[:5])
        raise MessageError(f"not a request: no _ask key (keys: {keys})")
    request_id = _parse_id(box["_ask"], "_ask", minimum=1)
    command = box.get("_command")
    if command is None:
        raise MessageError("request without _command", request_id=request_id)
    if command == HELLO.encode():
        versions = _parse_int_list(box, "versions", request_id)
        return Hello(request_id, versions, _text(box.get("agent", b"")))
    if command == EVENTS.encode():
        count = _parse_count(box, request_id)
        if count > max_batch:
            raise MessageError(f"batch of {count} events exceeds the maximum of {max_batch}",
                               code=ErrorCode.TOO_LARGE, request_id=request_id)
        lines = _indexed(box, "e", count, request_id)
        if count == 0:
            raise MessageError("empty batch: count must be at least 1", request_id=request_id)
        return EventBatch(request_id, lines)
    raise MessageError(f"unknown command {_text(command[:64])!r}",
                       code=ErrorCode.UNKNOWN_COMMAND, request_id=request_id)


def reply_id(box: Mapping[str, bytes]) -> int:
    """The request id a reply box answers (0 for a connection-level error).

    :raises MessageError: neither ``_answer`` nor ``_error``, or a bad id.
    """
    if "_answer" in box:
        return _parse_id(box["_answer"], "_answer", minimum=1)
    if "_error" in box:
        return _parse_id(box["_error"], "_error", minimum=0)
    raise MessageError(f"not a reply: no _answer or _error key (keys: {', '.join(sorted(box)[:5])})")


def decode_reply(box: Mapping[str, bytes], command: str) -> Reply:
    """The reply a server sent to a request whose command was ``command``
    (``"hello"`` or ``"events"``; any text for a connection-level error).

    :raises MessageError: missing or malformed keys.
    """
    request_id = reply_id(box)
    if "_error" in box and "_answer" not in box:
        code_text = _text(_required(box, "code", request_id))
        try:
            code = ErrorCode(code_text)
        except ValueError:
            raise MessageError(f"unknown error code {code_text[:64]!r}",
                               request_id=request_id) from None
        versions = _parse_int_list(box, "versions", request_id) if "versions" in box else ()
        return ErrorReply(request_id, code, _text(box.get("message", b"")), versions)
    if command == HELLO:
        return Welcome(request_id, _parse_int(box, "version", request_id),
                       _text(box.get("agent", b"")),
                       _parse_int(box, "max_frame", request_id),
                       _parse_int(box, "max_batch", request_id))
    if command == EVENTS:
        count = _parse_count(box, request_id)
        codes = _indexed(box, "r", count, request_id)
        results = []
        for i, raw in enumerate(codes):
            try:
                code = ResultCode(raw.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                raise MessageError(f"r.{i}: unknown result {raw[:64]!r}",
                                   request_id=request_id) from None
            results.append(Result(code, _text(box.get(f"m.{i}", b"")),
                                  _text(box.get(f"d.{i}", b""))))
        return BatchAck(request_id, results)
    raise MessageError(f"answer to a request with unknown command {command!r}",
                       request_id=request_id)


# --- helpers ------------------------------------------------------------------------

def _int(n: int) -> bytes:
    return str(n).encode("ascii")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _required(box: Mapping[str, bytes], key: str, request_id: int | None) -> bytes:
    try:
        return box[key]
    except KeyError:
        raise MessageError(f"missing key {key!r}", request_id=request_id) from None


def _parse_id(raw: bytes, key: str, minimum: int) -> int:
    if not _ID_RE.match(raw) or not minimum <= int(raw) <= MAX_REQUEST_ID:
        raise MessageError(f"{key}: request id {raw[:32]!r} is not a decimal number in "
                           f"{minimum}..{MAX_REQUEST_ID}")
    return int(raw)


def _parse_int(box: Mapping[str, bytes], key: str, request_id: int | None) -> int:
    raw = _required(box, key, request_id)
    if not _ID_RE.match(raw):
        raise MessageError(f"{key}: {raw[:32]!r} is not a decimal number", request_id=request_id)
    return int(raw)


def _parse_count(box: Mapping[str, bytes], request_id: int) -> int:
    raw = _required(box, "count", request_id)
    if not _COUNT_RE.match(raw):
        raise MessageError(f"count: {raw[:32]!r} is not a decimal number", request_id=request_id)
    return int(raw)


def _parse_int_list(box: Mapping[str, bytes], key: str, request_id: int) -> tuple[int, ...]:
    raw = _required(box, key, request_id)
    items = raw.split(b",")
    if not raw or len(items) > 64 or not all(_COUNT_RE.match(i) for i in items):
        raise MessageError(f"{key}: {raw[:64]!r} is not a comma-separated list of numbers",
                           request_id=request_id)
    return tuple(int(i) for i in items)


def _indexed(box: Mapping[str, bytes], prefix: str, count: int, request_id: int
             ) -> list[bytes]:
    """The values of ``<prefix>.0`` .. ``<prefix>.<count-1>``; no other such key allowed."""
    try:
        values = [box[f"{prefix}.{i}"] for i in range(count)]
    except KeyError as e:
        raise MessageError(f"count is {count} but key {e.args[0]!r} is missing",
                           request_id=request_id) from None
    dotted = prefix + "."
    extra = sum(1 for k in box if k.startswith(dotted))
    if extra != count:
        raise MessageError(f"count is {count} but the box has {extra} {dotted}* keys",
                           request_id=request_id)
    return values
