"""A service whose children run only while a resource is open.

The server's job store and the logger's spool are opened (connected, migrated,
recovered) before anything listens or delivers; on stop the children go first,
then the resource finishes its work and closes. A resource that cannot be opened
is logged and stops the reactor.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["GatedService"]


class GatedService(MultiService):
    """Subclasses say how to open and close their resource and what to log."""

    log = Logger()
    #: what the resource is called in log lines
    what = "resource"

    def __init__(self, reactor):
        super().__init__()
        self._reactor = reactor
        #: fires once the resource is open and the children started
        self.ready: defer.Deferred = defer.Deferred()

    def open(self):
        """Open the resource; may return a Deferred."""
        raise NotImplementedError

    def close(self):
        """Close the resource; may return a Deferred."""
        raise NotImplementedError

    def opened(self, result) -> None:
        """Log that the resource is open (``result`` is what :meth:`open` fired with)."""
        self.log.info("{what} open", what=self.what)

    def privilegedStartService(self):
        # Listeners bind in their startService, once the resource is open (so a
        # port below 1024 needs the daemon to keep its privileges).
        pass

    def startService(self):
        # the children are started once the resource is open, not now
        self.running = 1
        d = defer.maybeDeferred(self.open)
        d.addCallbacks(self._opened, self._failed)

    def _opened(self, result):
        self.opened(result)
        MultiService.startService(self)
        self.ready.callback(None)

    def _failed(self, failure):
        self.log.failure("cannot open the {what}", failure, what=self.what)
        self.ready.errback(failure)
        if self._reactor.running:
            self._reactor.stop()

    def stopService(self):
        d = defer.maybeDeferred(MultiService.stopService, self)
        d.addCallback(lambda _: self.close())
        return d
