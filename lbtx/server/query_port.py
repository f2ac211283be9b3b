"""The server's query port: the legacy query protocol and the JSON API on one listener.

Both front ends share the legacy protocol's HTTP framing and deadlines
(:class:`~lbtx.protocols.legacy_query.protocol.LegacyQueryProtocol`: idle
timeout, connection budget, request timeout, size limits). That protocol hands
each request to an object with ``handle(request, caller) -> Deferred[HTTPResponse]``;
:class:`QueryPortHandler` is that object here: requests under ``/api/`` go to the
:class:`~lbtx.server.api.JsonApi`, all others to the legacy
:class:`~lbtx.protocols.legacy_query.service.QueryService`.

:class:`QueryPortFactory` names the caller of each connection once it exists
(:func:`lbtx.server.peers.transport_caller`): the identity a secure transport
proved (TLS, Kerberos, ``lbunix:``), the peer's Unix user on a plain UNIX socket
(``unix:NAME``, from SO_PEERCRED), else the configured identity of plaintext
peers (None: anonymous).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from lbtx.protocols.legacy_query.http import HTTPRequest
from lbtx.protocols.legacy_query.protocol import LegacyQueryFactory, LegacyQueryProtocol
from lbtx.server.api import is_api_request
from lbtx.server.authz import Caller
from lbtx.server.peers import transport_caller

__all__ = ["QueryPortHandler", "QueryPortFactory"]


class QueryPortHandler:
    """Routes each request of the query port to the JSON API or the legacy service."""

    def __init__(self, legacy, api):
        self.legacy = legacy
        self.api = api

    def handle(self, request: HTTPRequest, caller) -> Deferred:
        """The answer of the front end the request is for (see :meth:`QueryService.handle`)."""
        if is_api_request(request):
            return self.api.handle(request, caller)
        return self.legacy.handle(request, caller)


class _QueryPortProtocol(LegacyQueryProtocol):
    """The legacy query protocol, with its caller named from the connected transport."""

    def connectionMade(self) -> None:
        self.caller = self.factory.caller_of(self.transport)
        super().connectionMade()

    def connectionLost(self, reason=None) -> None:
        self.factory.open_connections -= 1
        super().connectionLost(reason)


class QueryPortFactory(LegacyQueryFactory):
    """Builds the query port's protocols.

    :param handler: the :class:`QueryPortHandler` (or anything with its ``handle``).
    :param plaintext_identity: the identity of peers nothing authenticates
        (``--peer-identity``; None or ``anonymous``: anonymous callers).
    :param max_connections: connections served at once (None: no limit); a
        connection over the limit is closed at once, with a log line.
    :param options: the deadlines and limits of
        :class:`~lbtx.protocols.legacy_query.protocol.LegacyQueryProtocol`.
    """

    log = Logger()

    def __init__(self, handler, clock, *, plaintext_identity: str | None = None,
                 max_connections: int | None = None, **options):
        super().__init__(handler, clock, **options)
        self.plaintext_identity = plaintext_identity
        self.max_connections = max_connections
        self.open_connections = 0

    def caller_of(self, transport) -> Caller | None:
        return transport_caller(transport, self.plaintext_identity)

    def buildProtocol(self, addr):
        if self.max_connections is not None and self.open_connections >= self.max_connections:
            self.log.warn("refusing query connection from {peer}: {count} connections open",
                          peer=addr, count=self.open_connections)
            return None
        self.open_connections += 1
        p = _QueryPortProtocol(self.service, self.clock, **self.options)
        p.factory = self
        return p
