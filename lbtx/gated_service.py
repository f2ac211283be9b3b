"""A service whose children run only while a resource is open.

The server's job store and the logger's spool are opened (connected, migrated,
recovered) before anything listens or delivers; on stop the children go first,
then the resource finishes its work and closes. A resource that cannot be opened,
or a listening port that cannot be bound (the children's ports are
``strports.service`` ones, which raise when they cannot listen), is logged and
stops the reactor; the daemon then exits with a failure status
(:mod:`lbtx.daemon_exit`).
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.daemon_exit import stop_for_failure

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
        try:
            MultiService.startService(self)   # listeners bind here (strports.service)
        except Exception:
            # a port that cannot be bound (in use, no permission): a daemon without
            # its ports must not run on half-deaf, so it stops like one whose
            # resource cannot be opened
            failure = Failure()
            error = failure.getErrorMessage().rstrip(".")
            self.log.critical("cannot listen: {error}; stopping", error=error)
            self.ready.errback(failure)
            stop_for_failure(self._reactor, f"cannot listen: {error}")
            return
        self.ready.callback(None)

    def _failed(self, failure):
        self.log.failure("cannot open the {what}", failure, what=self.what)
        self.ready.errback(failure)
        stop_for_failure(self._reactor,
                         f"cannot open the {self.what}: {failure.getErrorMessage()}")

    def stopService(self):
        # the children that were started, last first (after a port that could not be
        # bound, the ones after it never were)
        Service.stopService(self)
        started = [child for child in reversed(list(self)) if child.running]
        d = defer.DeferredList([defer.maybeDeferred(child.stopService) for child in started])
        d.addCallback(lambda _: self.close())
        return d
