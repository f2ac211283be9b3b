"""The client side of the box protocol: :class:`BoxClient` sends batches, pipelined.

On connect the client writes the magic and its hello at once; batches may follow
without waiting for the welcome. Each :meth:`BoxClient.send_batch` gets its own
request id and Deferred, with its own deadline on the injected clock. Answers
come in request order; one that arrives after its request timed out is dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx import __version__
from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME, MAGIC, BoxDecoder
from lbtx.protocols.box.messages import (
    CONNECTION_ERROR_ID, DEFAULT_MAX_BATCH, EVENTS, HELLO, PROTOCOL_VERSIONS, BatchAck,
    ErrorCode, ErrorReply, EventBatch, Hello, MessageError, Welcome, decode_reply,
    encode_message, reply_id)
from lbtx.protocols.errors import FrameError

__all__ = ["BoxClient", "BoxClientFactory", "BoxRemoteError", "BoxProtocolError", "connect_box",
           "DEFAULT_REQUEST_TIMEOUT", "DEFAULT_HANDSHAKE_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT"]

SECONDS = 1.0
DEFAULT_REQUEST_TIMEOUT = 60 * SECONDS
DEFAULT_HANDSHAKE_TIMEOUT = 30 * SECONDS
DEFAULT_CONNECT_TIMEOUT = 30 * SECONDS


class BoxRemoteError(Exception):
    """The server answered a request (or the connection) with an error box.

    :ivar reply: the :class:`~lbtx.protocols.box.messages.ErrorReply`.
    """

    def __init__(self, reply: ErrorReply):
        self.reply = reply
        super().__init__(f"{reply.code.value}: {reply.message}")

    @property
    def code(self) -> ErrorCode:
        return self.reply.code

    @property
    def retryable(self) -> bool:
        """The same request may succeed later."""
        return self.reply.code.retryable


class BoxProtocolError(Exception):
    """The server's bytes or answers do not follow the protocol; the connection is
    closed."""


@dataclass
class _Pending:
    command: str
    deferred: defer.Deferred | None  # None once abandoned (timed out or cancelled)
    count: int = 0


class BoxClient(Protocol):
    """One connection to a box server.

    :param clock: for the handshake and request deadlines.
    :param request_timeout: default deadline of :meth:`send_batch`, seconds.
    :param handshake_timeout: deadline of the welcome, seconds; past it the
        connection is closed.
    """

    log = Logger()

    def __init__(self, *, clock: IReactorTime, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 versions: tuple[int, ...] = PROTOCOL_VERSIONS,
                 agent: str = f"lbtx/{__version__}", max_frame: int = DEFAULT_MAX_FRAME):
        self._clock = clock
        self.request_timeout = request_timeout
        self._handshake_timeout = handshake_timeout
        self._versions = versions
        self._agent = agent
        self._decoder = BoxDecoder(max_frame=max_frame, preamble=MAGIC)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ready_waiters: list[defer.Deferred] = []
        self._ready_result: Welcome | Failure | None = None
        self._lost: Failure | None = None
        #: the server's welcome, once it came
        self.welcome: Welcome | None = None

    # --- public -------------------------------------------------------------------------

    @property
    def max_batch(self) -> int:
        """Most events the server takes per batch (its welcome, or the default)."""
        return self.welcome.max_batch if self.welcome else DEFAULT_MAX_BATCH

    @property
    def max_frame(self) -> int:
        """Largest frame the server takes (its welcome, or the default)."""
        return self.welcome.max_frame if self.welcome else DEFAULT_MAX_FRAME

    @property
    def outstanding(self) -> int:
        """Requests sent and not answered (timed-out ones included until their answer)."""
        return len(self._pending)

    def when_ready(self) -> defer.Deferred:
        """A Deferred firing with the server's :class:`Welcome`; it fails with
        :class:`BoxRemoteError` (no common version), ``TimeoutError`` or the
        connection's loss."""
        d = defer.Deferred()
        if self._ready_result is None:
            self._ready_waiters.append(d)
        elif isinstance(self._ready_result, Welcome):
            d.callback(self._ready_result)
        else:
            d.errback(self._ready_result)
        return d

    def send_batch(self, lines: Sequence[bytes], timeout: float | None = None
                   ) -> defer.Deferred:
        """Send events (ULM lines without LF) as one request.

        :return: a Deferred firing with one
            :class:`~lbtx.protocols.box.messages.Result` per line, sent by the
            server once the accepted events are committed. It fails with
            ``TimeoutError`` after ``timeout`` seconds (default
            :attr:`request_timeout`; the answer is ignored if it comes later),
            :class:`BoxRemoteError` if the server refused the request,
            :class:`BoxProtocolError`, or the connection's loss. ``ValueError`` or
            :class:`FrameError` if the batch is empty or over the server's limits.
        """
        if self._lost is not None:
            return defer.fail(self._lost)
        lines = list(lines)
        if not lines or len(lines) > self.max_batch:
            return defer.fail(ValueError(f"a batch holds 1 to {self.max_batch} events, "
                                         f"not {len(lines)}"))
        request_id = next(self._ids)
        try:
            frame = encode_message(EventBatch(request_id, lines), max_frame=self.max_frame)
        except (ValueError, FrameError) as e:
            return defer.fail(e)
        d = defer.Deferred(lambda _: self._abandon(request_id))
        self._pending[request_id] = _Pending(EVENTS, d, len(lines))
        self.transport.write(frame)
        return d.addTimeout(self.request_timeout if timeout is None else timeout, self._clock)

    # --- Twisted callbacks ----------------------------------------------------------------

    def connectionMade(self) -> None:
        self._peer = self.transport.getPeer()
        hello = Hello(next(self._ids), self._versions, self._agent)
        d = defer.Deferred(lambda _: self._abandon(hello.request_id))
        self._pending[hello.request_id] = _Pending(HELLO, d)
        d.addTimeout(self._handshake_timeout, self._clock)
        d.addBoth(self._handshake_done)
        self.transport.write(MAGIC + encode_message(hello))

    def dataReceived(self, data: bytes) -> None:
        error = None
        try:
            boxes = self._decoder.feed(data)
        except FrameError as e:
            boxes, error = e.decoded, e
        for box in boxes:
            if self._lost is not None:
                return
            self._reply(box)
        if error is not None and self._lost is None:
            self._broken(f"malformed reply stream: {error}")

    def connectionLost(self, reason: Failure = None) -> None:
        self._lost = reason or Failure(ConnectionError("connection lost"))
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.deferred is not None:
                p.deferred.errback(self._lost)

    # --- internals --------------------------------------------------------------------------

    def _abandon(self, request_id: int) -> None:
        """The caller gave up (timeout or cancel): keep the id to drop its late answer."""
        p = self._pending.get(request_id)
        if p is not None:
            p.deferred = None

    def _handshake_done(self, result):
        if isinstance(result, Welcome):
            self.welcome = result
        else:
            if isinstance(result, Failure) and result.check(defer.TimeoutError):
                self.log.warn("no welcome from {peer} within {timeout} s", peer=self._peer,
                              timeout=self._handshake_timeout)
            if self._lost is None:
                self.transport.loseConnection()
        self._ready_result = result
        waiters, self._ready_waiters = self._ready_waiters, []
        for w in waiters:
            if isinstance(result, Welcome):
                w.callback(result)
            else:
                w.errback(result)
        return None

    def _reply(self, box) -> None:
        try:
            request_id = reply_id(box)
        except MessageError as e:
            return self._broken(f"bad reply: {e.reason}")
        if request_id == CONNECTION_ERROR_ID:
            try:
                reply = decode_reply(box, "")
            except MessageError as e:
                return self._broken(f"bad connection error box: {e.reason}")
            self.log.warn("{peer} reports {code}: {message}", peer=self._peer,
                          code=reply.code.value, message=reply.message)
            return self._fail_all(Failure(BoxRemoteError(reply)))
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return self._broken(f"answer to request {request_id}, which is not outstanding")
        try:
            reply = decode_reply(box, pending.command)
            problem = self._check(reply, pending)
        except MessageError as e:
            problem = e.reason
        if problem:
            if pending.deferred is not None:
                pending.deferred.errback(BoxProtocolError(problem))
            return self._broken(f"bad answer to request {request_id}: {problem}")
        if pending.deferred is None:
            self.log.debug("dropping the late answer to request {request_id} from {peer}",
                           request_id=request_id, peer=self._peer)
        elif isinstance(reply, ErrorReply):
            pending.deferred.errback(BoxRemoteError(reply))
        elif isinstance(reply, BatchAck):
            pending.deferred.callback(list(reply.results))
        else:
            pending.deferred.callback(reply)

    def _check(self, reply, pending: _Pending) -> str:
        if isinstance(reply, Welcome) and reply.version not in self._versions:
            return f"the server chose version {reply.version}, which was not offered"
        if isinstance(reply, BatchAck) and len(reply.results) != pending.count:
            return f"{len(reply.results)} results for {pending.count} events"
        return ""

    def _fail_all(self, failure: Failure) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.deferred is not None:
                p.deferred.errback(failure)
        self.transport.loseConnection()

    def _broken(self, reason: str) -> None:
        self.log.warn("closing connection to {peer}: {reason}", peer=self._peer, reason=reason)
        self._fail_all(Failure(BoxProtocolError(reason)))
        self.transport.abortConnection()


class BoxClientFactory(Factory):
    """Builds :class:`BoxClient` with the given keyword arguments."""

    def __init__(self, **client_kwargs):
        self.client_kwargs = client_kwargs

    def buildProtocol(self, addr) -> BoxClient:
        proto = BoxClient(**self.client_kwargs)
        proto.factory = self
        return proto


def connect_box(endpoint: IStreamClientEndpoint, *, clock: IReactorTime,
                connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, **client_kwargs
                ) -> defer.Deferred:
    """Connect and complete the handshake.

    :return: a Deferred firing with the ready :class:`BoxClient`, failing with
        ``TimeoutError`` (connect or welcome too slow), :class:`BoxRemoteError`
        (no common version) or the connection error.
    """
    factory = BoxClientFactory(clock=clock, **client_kwargs)
    d = endpoint.connect(factory).addTimeout(connect_timeout, clock)
    return d.addCallback(lambda proto: proto.when_ready().addCallback(lambda _: proto))
