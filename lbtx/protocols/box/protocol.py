"""The box protocol's Twisted adapters (docs/protocol.md), in one public place.

The conversation, client → server::

    MAGIC  Hello(versions)           → MAGIC  Welcome(version, max_frame, max_batch)
           EventBatch(id, lines)     → BatchAck(id, results)   after the commit
           EventBatch(id', lines')   → BatchAck(id', results') in request order
           (a bad request)           → ErrorReply(id, code, message)

Server side: :class:`BoxServerFactory` / :class:`BoxServerProtocol` for a store
or logger port (box plus a legacy framing, told apart by the first bytes), handing
batches to an :class:`~lbtx.protocols.interfaces.IBatchHandler`. Client side:
:class:`BoxClient` and :func:`connect_box`.
"""

from lbtx.protocols.box.client import (
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, BoxClient,
    BoxClientFactory, BoxProtocolError, BoxRemoteError, connect_box)
from lbtx.protocols.box.server import (
    LOGGER_PORT_FRAMINGS, STORE_PORT_FRAMINGS, BoxServerFactory, BoxServerProtocol,
    ServerLimits, anonymous_identity, fixed_identity)

__all__ = ["BoxClient", "BoxClientFactory", "BoxProtocolError", "BoxRemoteError", "connect_box",
           "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_HANDSHAKE_TIMEOUT", "DEFAULT_REQUEST_TIMEOUT",
           "BoxServerFactory", "BoxServerProtocol", "ServerLimits", "STORE_PORT_FRAMINGS",
           "LOGGER_PORT_FRAMINGS", "anonymous_identity", "fixed_identity"]
