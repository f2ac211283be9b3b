"""``twistd lb-interlogger``: the interlogger alone, over a logger's spool.

One :class:`~lbtx.interlogger.service.DeliveryService` running a
:class:`~lbtx.interlogger.delivery.SpoolDelivery` over a
:class:`~lbtx.interlogger.box_channel.BoxDeliveryConnector`: one queue per
destination server (the store port of the job id), positions and quarantine as
docs/interlogger.md describes. It learns of new events by rescanning the spool
(``--rescan-period``) and, where the platform has inotify, from a watch of the
spool directory (:mod:`lbtx.interlogger.watch`); run inside ``twistd lb-logger``
it hears of each batch instead. Alone, it takes a logger's flushes and
confirmations on its control socket (``--control``, :mod:`lbtx.interlogger.control`).
"""

from __future__ import annotations

import os

from twisted.application import strports
from twisted.application.service import MultiService

from lbtx.interlogger.box_channel import BoxDeliveryConnector
from lbtx.interlogger.control import ControlHandler
from lbtx.interlogger.delivery import SpoolDelivery
from lbtx.interlogger.options import InterloggerOptions, delivery_config
from lbtx.interlogger.service import DeliveryService
from lbtx.interlogger.watch import SpoolWatch
from lbtx.logger.confirmations import Confirmations
from lbtx.protocols.box.server import BoxServerFactory, ServerLimits

Options = InterloggerOptions

__all__ = ["Options", "make_delivery_service", "makeService"]

#: The longest a logger's flush or confirmation may wait on the control socket, s.
CONTROL_MAX_WAIT = 600.0
#: Replies to synchronous lines kept for a logger that asks after the server answered.
REMEMBERED_REPLIES = 10000


def _default_reactor():
    from twisted.internet import reactor
    return reactor


def make_delivery_service(options, spool_dir: str, reactor) -> DeliveryService:
    """The delivery of ``spool_dir`` with the interlogger ``options`` (shared with
    ``twistd lb-logger``)."""
    config = delivery_config(options)
    connector = BoxDeliveryConnector(reactor, template=options["destination-template"],
                                     connect_timeout=options["connect-timeout"],
                                     request_timeout=options["ack-timeout"])
    delivery = SpoolDelivery(spool_dir, connector, clock=reactor, reactor=reactor, config=config)
    return DeliveryService(delivery, reactor, spool_dir)


def makeService(options, reactor=None) -> MultiService:
    """Build the interlogger from parsed :class:`InterloggerOptions`."""
    reactor = reactor or _default_reactor()
    os.makedirs(options["spool"], exist_ok=True)
    top = MultiService()
    service = make_delivery_service(options, options["spool"], reactor)
    service.setServiceParent(top)
    if not options["no-watch"]:
        SpoolWatch(service.delivery, options["spool"], reactor,
                   options["rescan-period"]).setServiceParent(top)
    if options["control"] is not None:
        _control_service(service.delivery, options["control"], reactor).setServiceParent(top)
    return top


def _control_service(delivery, path: str, reactor):
    """The control socket at ``path`` (owner only), for a logger of its own."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    confirmations = Confirmations(reactor, remember=REMEMBERED_REPLIES)
    delivery.add_reply_observer(confirmations.settle)
    handler = ControlHandler(delivery, confirmations, max_wait=CONTROL_MAX_WAIT)
    factory = BoxServerFactory(handler, clock=reactor,
                               limits=ServerLimits(request_timeout=CONTROL_MAX_WAIT + 30,
                                                   idle_timeout=CONTROL_MAX_WAIT + 60))
    description = f"unix:{path.replace(':', chr(92) + ':')}:mode=600:lockfile=1"
    return strports.service(description, factory, reactor=reactor)
