"""The thin Twisted adapter of the legacy query protocol (formats.md §7.1).

:class:`LegacyQueryProtocol` feeds received bytes to a
:class:`~.http.RequestDecoder`, hands each request to a
:class:`~.service.QueryService` and writes the answers back in request order, one
request at a time. Deadlines, all on the injected clock:

* a connection idle for ``idle_timeout`` (10 s; no request in progress) is closed,
  so a client that connects and sends nothing, or half a request, is dropped;
* a connection is closed once its ``budget`` (120 s) is used up, after the answer
  in progress if any;
* every backend call is bounded by the service's request timeout.

Bytes that cannot be framed (an over-long line, a bad ``Content-Length``, a body over
the limit) get ``400 Bad Request`` and the connection is closed.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.http import (DEFAULT_HTTP_LIMITS, HTTPFramingError, HTTPLimits,
                                              RequestDecoder, format_response)
from lbtx.protocols.legacy_query.service import API_HEADERS, QueryService
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.xml_out import error_document

__all__ = ["LegacyQueryProtocol", "LegacyQueryFactory", "IDLE_TIMEOUT", "CONNECTION_BUDGET",
           "MAX_PIPELINED"]

IDLE_TIMEOUT = 10.0        # seconds without a request before the server hangs up
CONNECTION_BUDGET = 120.0  # seconds a client may keep one connection
MAX_PIPELINED = 8          # requests read ahead of the one being answered


class LegacyQueryProtocol(Protocol, TimeoutMixin):
    """One client connection; ``caller`` is its authenticated identity (or None)."""

    log = Logger()

    def __init__(self, service: QueryService, clock, *, caller: str | None = None,
                 idle_timeout: float = IDLE_TIMEOUT, budget: float = CONNECTION_BUDGET,
                 limits: HTTPLimits = DEFAULT_HTTP_LIMITS, max_pipelined: int = MAX_PIPELINED):
        self._service = service
        self._clock = clock
        self.caller = caller
        self._idle = idle_timeout
        self._budget = budget
        self._decoder = RequestDecoder(limits)
        self._queue: deque = deque()
        self._pending = None
        self._budget_call = None
        self._closing = False
        self._lost = False
        self._rejection = None
        self._in_next = False
        self._paused = False
        self._max_pipelined = max_pipelined

    def callLater(self, period, func):  # TimeoutMixin's clock
        return self._clock.callLater(period, func)

    # --- connection life ----------------------------------------------------
    def connectionMade(self) -> None:
        self.setTimeout(self._idle)
        self._budget_call = self._clock.callLater(self._budget, self._budget_used)

    def connectionLost(self, reason=None) -> None:
        self._lost = True
        self.setTimeout(None)
        if self._budget_call is not None and self._budget_call.active():
            self._budget_call.cancel()
        self._budget_call = None
        self._queue.clear()
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()

    def timeoutConnection(self) -> None:
        self.log.info("closing idle query connection from {peer}", peer=self._peer())
        self.transport.loseConnection()

    def _budget_used(self) -> None:
        self._budget_call = None
        self.log.info("query connection from {peer} used up its {budget} s",
                      peer=self._peer(), budget=self._budget)
        self._closing = True
        if self._pending is None:
            self.transport.loseConnection()

    def _peer(self):
        try:
            return self.transport.getPeer()
        except Exception:  # pragma: no cover - transports without peers
            return None

    # --- input --------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.resetTimeout()
        try:
            requests = self._decoder.feed(data)
        except HTTPFramingError as e:
            self.log.warn("rejected query request from {peer}: {error}", peer=self._peer(),
                          error=e.reason)
            self._reject(e)
            return
        self._queue.extend(requests)
        if len(self._queue) > self._max_pipelined and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._next()

    def _reject(self, error: HTTPFramingError) -> None:
        """Answer 400 after the request in progress, if any, then close."""
        self._closing = True
        self._queue.clear()
        code = ErrorCode.E2BIG if error.too_big else ErrorCode.XML_PARSE
        self._rejection = (code, error.reason)
        if self._pending is None:
            self._send_error(*self._rejection)

    def _send_error(self, code, reason: str) -> None:
        body = to_wire(error_document("query_jobs", (int(code), reason)))
        self.transport.write(format_response(400, API_HEADERS, body))
        self.transport.loseConnection()

    # --- answering ----------------------------------------------------------
    def _next(self) -> None:
        """Start the next queued request unless one is in progress (no recursion)."""
        if self._in_next:
            return
        self._in_next = True
        try:
            while self._pending is None and self._queue and not self._lost:
                request = self._queue.popleft()
                if self._paused and len(self._queue) <= self._max_pipelined // 2:
                    self._paused = False
                    self.transport.resumeProducing()
                self.setTimeout(None)
                d = self._service.handle(request, self.caller)
                self._pending = d
                d.addCallbacks(self._answer, self._broken)
            if self._pending is None and not self._queue and not self._lost:
                if self._rejection is not None:
                    self._send_error(*self._rejection)
                elif self._closing:
                    self.transport.loseConnection()
                else:
                    self.setTimeout(self._idle)
        finally:
            self._in_next = False

    def _answer(self, response) -> None:
        if self._lost:
            return
        self._pending = None
        self.transport.write(format_response(response.status, response.headers, response.body))
        self._next()

    def _broken(self, failure) -> None:
        if self._lost:
            return None  # cancelled because the connection went away
        self._pending = None
        self.log.failure("query service failed", failure)
        self.transport.abortConnection()


class LegacyQueryFactory(Factory):
    """Builds :class:`LegacyQueryProtocol` instances for a listening endpoint.

    ``identify(address)`` gives the caller identity for a connection from ``address``
    (the peer's Unix user on a Unix socket, a configured identity on plain TCP).
    """

    def __init__(self, service: QueryService, clock, *,
                 identify: Callable[[object], str | None] = lambda address: None, **options):
        self.service = service
        self.clock = clock
        self.identify = identify
        self.options = options

    def buildProtocol(self, addr):
        p = LegacyQueryProtocol(self.service, self.clock, caller=self.identify(addr),
                                **self.options)
        p.factory = self
        return p
