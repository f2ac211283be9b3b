"""The interlogger as a service: :class:`DeliveryService` starts and stops a
:class:`~lbtx.interlogger.delivery.SpoolDelivery`."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from lbtx.daemon_exit import stop_for_failure

__all__ = ["DeliveryService"]


class DeliveryService(Service):
    """Runs ``delivery`` (a :class:`SpoolDelivery`) while the service runs.

    A failed start (another interlogger owns the spool) is logged and stops the
    reactor, as a daemon that cannot do its one job should, with a failure status
    (:mod:`lbtx.daemon_exit`).
    """

    log = Logger()

    def __init__(self, delivery, reactor, spool_dir: str = ""):
        self.delivery = delivery
        self.spool_dir = spool_dir
        self._reactor = reactor
        self._started: defer.Deferred | None = None

    def startService(self):
        super().startService()
        self._started = defer.maybeDeferred(self.delivery.start)
        self._started.addCallbacks(self._running, self._failed)

    def _running(self, _):
        self.log.info("interlogger delivering {spool}", spool=self.spool_dir)

    def _failed(self, failure):
        self.log.failure("the interlogger cannot start", failure)
        stop_for_failure(self._reactor,
                         f"the interlogger cannot start: {failure.getErrorMessage()}")

    def stopService(self):
        super().stopService()
        started, self._started = self._started, None
        if started is None:
            return None
        return started.addBoth(lambda _: self.delivery.stop())
