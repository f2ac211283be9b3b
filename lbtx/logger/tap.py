"""``twistd lb-logger``: the local logger as a twistd plug-in.

One :class:`~lbtx.logger.service.SpoolService` (the spool, recovered first) and
behind it a :class:`~lbtx.protocols.box.server.BoxServerFactory` with
:data:`~lbtx.protocols.box.server.LOGGER_PORT_FRAMINGS` (box protocol and legacy
``DGLOG``) on the Unix socket and every ``--listen`` endpoint, handing batches to
a :class:`~lbtx.logger.handler.SpoolingHandler`; and, unless
``--no-interlogger``, the interlogger over the same spool, told of each batch,
telling the handler the server's replies (for synchronous events) and carrying
out its flush commands; with ``--no-interlogger`` the handler asks the separate
``lb-interlogger`` for both on its control socket
(:class:`~lbtx.logger.interlogger_link.InterloggerLink`).
"""

from __future__ import annotations

import os

from twisted.application import strports
from twisted.application.service import MultiService

from lbtx.interlogger.tap import make_delivery_service
from lbtx.logger.confirmations import Confirmations
from lbtx.logger.handler import SpoolingHandler, peer_identifier
from lbtx.logger.interlogger_link import InterloggerLink
from lbtx.logger.options import LoggerOptions
from lbtx.logger.service import SpoolService
from lbtx.logger.spool import Spool
from lbtx.protocols.box.server import LOGGER_PORT_FRAMINGS, BoxServerFactory, ServerLimits

Options = LoggerOptions

__all__ = ["Options", "makeService"]


def _default_reactor():
    from twisted.internet import reactor
    return reactor


def makeService(options, reactor=None) -> MultiService:
    """Build the logger from parsed :class:`LoggerOptions`."""
    reactor = reactor or _default_reactor()
    os.makedirs(options["spool"], exist_ok=True)
    if options["socket"] is not None:
        os.makedirs(os.path.dirname(options["socket"]), exist_ok=True)
    top = MultiService()
    spool = Spool(options["spool"], reactor=reactor)
    spool_service = SpoolService(spool, reactor)
    spool_service.setServiceParent(top)
    limits = ServerLimits(max_frame=options["max-frame"], idle_timeout=options["idle-timeout"],
                          request_timeout=options["request-timeout"])
    confirmations = flush = None
    if not options["no-interlogger"]:
        delivery = make_delivery_service(options, options["spool"], reactor)
        spool.add_observer(delivery.delivery.notify)
        confirmations = Confirmations(reactor)
        delivery.delivery.add_reply_observer(confirmations.settle)
        flush = delivery.delivery.flush
        delivery.setServiceParent(spool_service)
    else:  # an lb-interlogger of its own, on its control socket
        link = InterloggerLink(reactor, options["interlogger-control"],
                               timeout=options["sync-timeout"])
        confirmations, flush = link, link.flush
    handler = SpoolingHandler(spool, max_line=options["max-frame"], confirmations=confirmations,
                              sync_timeout=options["sync-timeout"], flush=flush)
    factory = BoxServerFactory(handler, clock=reactor, limits=limits,
                               framings=LOGGER_PORT_FRAMINGS,
                               identify=peer_identifier(options["peer-identity"]))
    for description in options.endpoints():
        strports.service(description, factory, reactor=reactor).setServiceParent(spool_service)
    return top
