"""``twistd lb-server``: the bookkeeping server as a twistd plug-in.

One :class:`~twisted.application.service.MultiService`: the job store, and behind
it a listener per ``--listen-store`` endpoint (event intake over the box protocol
or the legacy interlogger framing).
"""

from __future__ import annotations

import os

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString

from lbtx.protocols.box.server import STORE_PORT_FRAMINGS, BoxServerFactory, ServerLimits, fixed_identity
from lbtx.server.intake import IntakeHandler
from lbtx.server.options import ServerOptions
from lbtx.server.service import StoreService
from lbtx.server.store import open_store

Options = ServerOptions

__all__ = ["Options", "makeService"]


def _default_reactor():
    from twisted.internet import reactor
    return reactor


def makeService(options, reactor=None) -> MultiService:
    """Build the server from parsed :class:`ServerOptions`."""
    reactor = reactor or _default_reactor()
    os.makedirs(options["data-dir"], exist_ok=True)
    top = MultiService()
    store = open_store(options["db"], reactor, lock_slots=options["lock-slots"])
    store_service = StoreService(store, reactor)
    store_service.setServiceParent(top)
    limits = ServerLimits(max_frame=options["max-frame"],
                          max_connections=options["max-connections"],
                          idle_timeout=options["idle-timeout"],
                          request_timeout=options["request-timeout"])
    handler = IntakeHandler(store, max_line=options["max-frame"])
    factory = BoxServerFactory(handler, clock=reactor, limits=limits,
                               framings=STORE_PORT_FRAMINGS,
                               identify=fixed_identity(options["peer-identity"]))
    for description in options["listen-store"]:
        endpoint = serverFromString(reactor, description)
        StreamServerEndpointService(endpoint, factory).setServiceParent(store_service)
    return top
