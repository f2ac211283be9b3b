"""The store as a service: the database is opened before anything listens.

:class:`StoreService` starts the job store, and only when it is ready starts its
children (the listeners); on stop, the listeners go first, then the store
finishes its work and closes.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["StoreService"]


class StoreService(MultiService):
    """Owns an :class:`~lbtx.server.store.interfaces.IJobStore`; its children (the
    listening services) run only while the store is open."""

    log = Logger()

    def __init__(self, store, reactor):
        super().__init__()
        self.store = store
        self._reactor = reactor
        self.ready: defer.Deferred = defer.Deferred()

    def privilegedStartService(self):
        # Listeners bind in their startService, once the store is open (so a port
        # below 1024 needs the server to keep its privileges).
        pass

    def startService(self):
        # children are started once the store is open, not now
        self.running = 1
        d = defer.maybeDeferred(self.store.start)
        d.addCallback(self._opened)
        d.addErrback(self._failed)

    def _opened(self, _):
        self.log.info("job store open")
        MultiService.startService(self)
        self.ready.callback(None)

    def _failed(self, failure):
        self.log.failure("cannot open the job store", failure)
        self.ready.errback(failure)
        if self._reactor.running:
            self._reactor.stop()

    def stopService(self):
        d = defer.maybeDeferred(MultiService.stopService, self)
        d.addCallback(lambda _: self.store.stop())
        return d
