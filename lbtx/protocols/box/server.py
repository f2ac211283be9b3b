"""The server side of a store or logger port: a thin Twisted adapter over the sessions.

:class:`BoxServerProtocol` tells the framing from the first bytes
(:mod:`lbtx.protocols.sniff`), then feeds a sans-I/O session
(:class:`~.session.BoxServerSession`, or a legacy one) and performs its actions in
order: requests go to the injected :class:`~lbtx.protocols.interfaces.IBatchHandler`
one at a time, and every answer is written in request order. Deadlines:

* handshake: from connect until the hello is answered (a legacy peer: its first
  frame is complete); not extended by trickled bytes;
* idle: no request outstanding and no bytes for this long (TimeoutMixin);
* request: the handler gets this long per batch, then the peer gets a
  retryable ``timeout`` error;
* close: after the last answer, a peer that does not take it is aborted.

With ``ServerLimits.max_merged_events`` set (the server's store port), requests
that are already queued behind each other (a pipelining client) go to the
handler as one call, their lines in request order, up to that many events and
``max_merged_bytes`` bytes; every request is then answered from its own share
of the results, in order, once the whole call is done. When such a merged call
fails (other than by the request deadline), its requests are handed over again
one by one, so that one bad request fails alone. Off (0) by default: one call
per request.

A handler that cannot process any batch now (the server's database is down)
fails with :class:`TemporarilyUnavailable`: each request of the call is answered
with a retryable ``internal`` error carrying the exception's message, and logged
as one warning line (no traceback); a merged call is not handed over again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable, Collection

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from lbtx import __version__
from lbtx.protocols.actions import Close, Handle, Ready, Send
from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME
from lbtx.protocols.box.messages import DEFAULT_MAX_BATCH, ErrorCode, Result
from lbtx.protocols.box.session import BoxServerSession
from lbtx.protocols.errors import FrameError
from lbtx.protocols.interfaces import IBatchHandler, IServerSession
from lbtx.protocols.legacy_framing.sessions import DglogServerSession, ILServerSession
from lbtx.protocols.sniff import Framing, sniff

__all__ = ["ServerLimits", "BoxServerProtocol", "BoxServerFactory", "STORE_PORT_FRAMINGS",
           "LOGGER_PORT_FRAMINGS", "TemporarilyUnavailable", "anonymous_identity",
           "fixed_identity"]

#: What the server's store port accepts.
STORE_PORT_FRAMINGS = frozenset({Framing.BOX, Framing.LEGACY_INTERLOGGER})
#: What the local logger's port accepts.
LOGGER_PORT_FRAMINGS = frozenset({Framing.BOX, Framing.DGLOG})

SECONDS = 1.0


class TemporarilyUnavailable(Exception):
    """A batch handler's failure meaning "nothing can be processed now, send it
    again later" (its database is unavailable). Its message, which should say so,
    is the answer's; the server logs it as a warning, without a traceback.
    ``errno``, if given, is the code a legacy DGLOG producer gets (else ``EAGAIN``)."""

    def __init__(self, message: str = "", *, errno: int | None = None):
        super().__init__(message)
        self.errno = errno
_SNIFF_BYTES = 32


@dataclass(frozen=True)
class ServerLimits:
    """The limits of one listening port (every duration in seconds)."""

    max_frame: int = DEFAULT_MAX_FRAME          #: largest frame body, bytes
    max_batch: int = DEFAULT_MAX_BATCH          #: most events per batch
    max_pending: int = 8                        #: requests queued before reading pauses
    max_connections: int | None = None          #: open connections; more are refused
    handshake_timeout: float = 30 * SECONDS     #: connect → handshake done (at most idle_timeout)
    idle_timeout: float = 60 * SECONDS          #: nothing outstanding, nothing received
    request_timeout: float = 120 * SECONDS      #: one handler call
    close_timeout: float = 10 * SECONDS         #: our last bytes → abort
    max_merged_events: int = 0                  #: queued requests merged up to this (0: off)
    max_merged_bytes: int = DEFAULT_MAX_FRAME   #: ... and up to this many bytes of lines


def anonymous_identity(transport: ITransport) -> str:
    """The identity of a peer on a channel that authenticates nobody."""
    return "anonymous"


def fixed_identity(name: str) -> Callable[[ITransport], str]:
    """An ``identify`` callable giving every peer the configured identity ``name``."""
    return lambda transport: name


def _make_session(framing: Framing, limits: ServerLimits, agent: str) -> IServerSession:
    if framing is Framing.BOX:
        return BoxServerSession(max_frame=limits.max_frame, max_batch=limits.max_batch,
                                agent=agent)
    if framing is Framing.LEGACY_INTERLOGGER:
        return ILServerSession(max_frame=limits.max_frame)
    return DglogServerSession(max_frame=limits.max_frame)


class BoxServerProtocol(Protocol, TimeoutMixin):
    """One connection to a store (or logger) port. See the module docstring."""

    log = Logger()

    def __init__(self, handler: IBatchHandler, *, clock: IReactorTime,
                 limits: ServerLimits = ServerLimits(),
                 framings: Collection[Framing] = STORE_PORT_FRAMINGS,
                 identify: Callable[[ITransport], str] = anonymous_identity,
                 agent: str = f"lbtx/{__version__}"):
        self._handler = handler
        self._clock = clock
        self.callLater = clock.callLater  # TimeoutMixin schedules through this
        self._limits = limits
        self._framings = frozenset(framings)
        self._identify = identify
        self._agent = agent
        self.session: IServerSession | None = None
        self.peer_identity = ""
        self._sniffed = bytearray()
        self._queue: deque = deque()
        self._handling: list[Handle] | None = None
        self._alone: set[int] = set()  # request ids to hand over unmerged
        self._pumping = False
        self._idle_armed = False
        self._paused = False
        self._closing = False
        self._lost = False
        self._handshake_call = None
        self._abort_call = None

    # --- Twisted callbacks ------------------------------------------------------------

    def connectionMade(self) -> None:
        self._peer = self.transport.getPeer()
        self.peer_identity = self._identify(self.transport)
        self._handshake_call = self._clock.callLater(self._handshake_limit(),
                                                     self._handshake_expired)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.resetTimeout()
        if self.session is None:
            self._sniffed += data
            try:
                framing = sniff(bytes(self._sniffed[:_SNIFF_BYTES]), self._framings)
            except FrameError as e:
                self.log.warn("dropping connection from {peer}: {reason}", peer=self._peer,
                              reason=e.reason)
                self._close(b"")
                return
            if framing is None:
                return
            self.session = _make_session(framing, self._limits, self._agent)
            data, self._sniffed = bytes(self._sniffed), bytearray()
        self._queue.extend(self.session.feed(data))
        self._pump()

    def connectionLost(self, reason: Failure = None) -> None:
        self._lost = True
        self._closing = True
        self.setTimeout(None)
        for call in (self._handshake_call, self._abort_call):
            if call is not None and call.active():
                call.cancel()
        self._handshake_call = self._abort_call = None
        unfinished = self.session.end() if self.session is not None else None
        if unfinished is not None:
            self.log.info("connection from {peer} ended inside a frame: {reason}",
                          peer=self._peer, reason=unfinished)
        dropped = sum(isinstance(a, Handle) for a in self._queue) + len(self._handling or ())
        if dropped:
            self.log.info("connection from {peer} lost with {count} requests unanswered",
                          peer=self._peer, count=dropped)
        self._queue.clear()

    def timeoutConnection(self) -> None:
        self.log.info("closing connection from {peer}: idle for {timeout} s", peer=self._peer,
                      timeout=self._limits.idle_timeout)
        self._close(b"")

    # --- the action queue ---------------------------------------------------------------

    def _pump(self) -> None:
        """Perform queued actions in order until one waits for the handler."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue and self._handling is None and not self._closing:
                action = self._queue.popleft()
                if isinstance(action, Send):
                    self.transport.write(action.data)
                elif isinstance(action, Handle):
                    self._start(self._merge(action))
                elif isinstance(action, Ready):
                    self._ready(action)
                elif isinstance(action, Close):
                    self.log.warn("dropping connection from {peer}: {reason}",
                                  peer=self._peer, reason=action.reason)
                    self._close(action.data)
        finally:
            self._pumping = False
        self._update_flow()

    def _ready(self, action: Ready) -> None:
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        self._handshake_call = None
        self.log.debug("{framing} connection from {peer} as {identity}", framing=action.framing,
                       peer=self._peer, identity=self.peer_identity)

    def _merge(self, first: Handle) -> list[Handle]:
        """``first`` and the requests queued right behind it that may share its call."""
        group = [first]
        limit = self._limits.max_merged_events
        if not limit or first.request_id in self._alone:
            self._alone.discard(first.request_id)
            return group
        count = len(first.lines)
        size = sum(len(line) for line in first.lines)
        while self._queue and isinstance(self._queue[0], Handle):
            nxt = self._queue[0]
            more = sum(len(line) for line in nxt.lines)
            if (nxt.request_id in self._alone or count + len(nxt.lines) > limit
                    or size + more > self._limits.max_merged_bytes):
                break
            group.append(self._queue.popleft())
            count += len(nxt.lines)
            size += more
        return group

    def _start(self, group: list[Handle]) -> None:
        self._handling = group
        lines = [line for action in group for line in action.lines]
        d = defer.maybeDeferred(self._handler.handle_batch, self.peer_identity, lines)
        d.addTimeout(self._limits.request_timeout, self._clock)
        d.addCallbacks(self._handled, self._failed, callbackArgs=(group, lines),
                       errbackArgs=(group,))
        d.addErrback(self._unanswerable, group)

    def _unanswerable(self, failure: Failure, group: list[Handle]) -> None:
        """Answering failed (a bug, or an ack too large to encode): the answers can no
        longer be kept in order, so the connection goes."""
        self.log.failure("answering request {request_id} from {peer}", failure,
                         request_id=group[0].request_id, peer=self._peer)
        self._handling = None
        if not self._lost:
            self._close(b"")

    def _handled(self, results, group: list[Handle], lines: list) -> None:
        if not _results_match(results, lines):
            self.log.error("batch handler returned {results!r} for {count} events",
                           results=results, count=len(lines))
            return self._finish(b"".join(
                self.session.fail(action.request_id, ErrorCode.INTERNAL,
                                  "the server failed to process the batch") for action in group))
        results = list(results)
        answers, start = [], 0
        for action in group:
            end = start + len(action.lines)
            answers.append(self.session.ack(action.request_id, results[start:end]))
            start = end
        self._finish(b"".join(answers))

    def _failed(self, failure: Failure, group: list[Handle]) -> None:
        if failure.check(TemporarilyUnavailable):
            return self._refused(str(failure.value), group, failure.value.errno)
        if len(group) > 1 and not failure.check(defer.TimeoutError):
            self.log.info("a merged call of {count} requests from {peer} failed ({error}); "
                          "handing them over one by one", count=len(group), peer=self._peer,
                          error=failure.getErrorMessage())
            self._alone.update(action.request_id for action in group)
            self._queue.extendleft(reversed(group))
            self._handling = None
            if not self._lost:
                self._pump()
            return
        answers = []
        for action in group:
            if failure.check(defer.TimeoutError):
                self.log.warn("request {request_id} from {peer} timed out after {timeout} s",
                              request_id=action.request_id, peer=self._peer,
                              timeout=self._limits.request_timeout)
                answers.append(self.session.fail(action.request_id, ErrorCode.TIMEOUT,
                                                 "the server gave up on the request; retry later"))
            else:
                self.log.failure("batch handler failed for request {request_id} from {peer}",
                                 failure, request_id=action.request_id, peer=self._peer)
                answers.append(self.session.fail(
                    action.request_id, ErrorCode.INTERNAL,
                    "the server failed to process the batch; retry later",
                    getattr(failure.value, "errno", None)))
        self._finish(b"".join(answers))

    def _refused(self, why: str, group: list[Handle], errno_value: int | None = None) -> None:
        """Answer every request of ``group`` with the retryable refusal ``why``
        (``errno_value``: the DGLOG answer, if not ``EAGAIN``)."""
        why = why or "the server cannot process batches now; retry later"
        answers = []
        for action in group:
            self.log.warn("refused request {request_id} ({count} events) from {peer}: {why}",
                          request_id=action.request_id, count=len(action.lines),
                          peer=self._peer, why=why)
            answers.append(self.session.fail(action.request_id, ErrorCode.INTERNAL, why,
                                             errno_value))
        self._finish(b"".join(answers))

    def _finish(self, data: bytes) -> None:
        self._handling = None
        if self._lost:
            return
        self.transport.write(data)
        self._pump()

    # --- flow, timers, closing ------------------------------------------------------------

    def _update_flow(self) -> None:
        if self._closing:
            return
        pending = sum(isinstance(a, Handle) for a in self._queue) + len(self._handling or ())
        if pending >= self._limits.max_pending and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        elif self._paused and pending <= self._limits.max_pending // 2:
            self._paused = False
            self.transport.resumeProducing()
        idle = pending == 0 and self._handshake_call is None and self.session is not None
        if idle != self._idle_armed:
            self._idle_armed = idle
            self.setTimeout(self._limits.idle_timeout if idle else None)

    def _handshake_limit(self) -> float:
        """A peer that says nothing is idle too: the shorter of the two deadlines."""
        return min(self._limits.handshake_timeout, self._limits.idle_timeout)

    def _handshake_expired(self) -> None:
        self._handshake_call = None
        self.log.warn("dropping connection from {peer}: no handshake within {timeout} s",
                      peer=self._peer, timeout=self._handshake_limit())
        self._close(b"")

    def _close(self, data: bytes) -> None:
        """Write ``data``, close, and abort if the peer has not gone after close_timeout."""
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
        self.setTimeout(None)
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        self._handshake_call = None
        if data:
            self.transport.write(data)
        if self._paused:
            self.transport.resumeProducing()
        self.transport.loseConnection()
        self._abort_call = self._clock.callLater(self._limits.close_timeout, self._abort)

    def _abort(self) -> None:
        self._abort_call = None
        self.log.info("aborting connection from {peer}: it did not close", peer=self._peer)
        self.transport.abortConnection()


def _results_match(results, lines) -> bool:
    return (isinstance(results, (list, tuple)) and len(results) == len(lines)
            and all(isinstance(r, Result) for r in results))


class BoxServerFactory(Factory):
    """Builds :class:`BoxServerProtocol` for a listening port, counting connections.

    :param handler: stores the batches (:class:`~lbtx.protocols.interfaces.IBatchHandler`).
    :param clock: the reactor (or a :class:`~twisted.internet.task.Clock` in tests).
    :param limits: the port's limits.
    :param framings: what the port accepts (:data:`STORE_PORT_FRAMINGS`,
        :data:`LOGGER_PORT_FRAMINGS`).
    :param identify: ``transport -> identity`` of the peer.
    """

    log = Logger()

    def __init__(self, handler: IBatchHandler, *, clock: IReactorTime,
                 limits: ServerLimits = ServerLimits(),
                 framings: Collection[Framing] = STORE_PORT_FRAMINGS,
                 identify: Callable[[ITransport], str] = anonymous_identity,
                 agent: str = f"lbtx/{__version__}"):
        self.handler = handler
        self.clock = clock
        self.limits = limits
        self.framings = frozenset(framings)
        self.identify = identify
        self.agent = agent
        #: connections open now
        self.connections: set[BoxServerProtocol] = set()

    def buildProtocol(self, addr):
        limit = self.limits.max_connections
        if limit is not None and len(self.connections) >= limit:
            self.log.warn("refusing connection from {peer}: {count} connections open",
                          peer=addr, count=len(self.connections))
            return None
        proto = _CountedServerProtocol(self.handler, clock=self.clock, limits=self.limits,
                                       framings=self.framings, identify=self.identify,
                                       agent=self.agent)
        proto.factory = self
        return proto


class _CountedServerProtocol(BoxServerProtocol):
    """A server protocol that registers itself with its factory while connected."""

    def connectionMade(self) -> None:
        self.factory.connections.add(self)
        super().connectionMade()

    def connectionLost(self, reason: Failure = None) -> None:
        self.factory.connections.discard(self)
        super().connectionLost(reason)
