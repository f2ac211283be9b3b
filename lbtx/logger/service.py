"""The spool as a service: recovered before anything listens or delivers.

:class:`SpoolService` starts its :class:`~lbtx.logger.spool.Spool` (lock, repair,
journal replay) and only then its children (the listeners, the in-process
interlogger); on stop the children go first, then the spool writes what it
accepted and closes.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["SpoolService"]


class SpoolService(MultiService):
    """Owns a :class:`~lbtx.logger.spool.Spool`; its children run only while the
    spool is open. A spool that cannot start (locked by another logger,
    unusable directory) is logged and stops the reactor."""

    log = Logger()

    def __init__(self, spool, reactor):
        super().__init__()
        self.spool = spool
        self._reactor = reactor
        #: fires once the spool is open and the children started
        self.ready: defer.Deferred = defer.Deferred()

    def privilegedStartService(self):
        # the listeners bind once the spool is open
        pass

    def startService(self):
        self.running = 1
        d = defer.maybeDeferred(self.spool.start)
        d.addCallbacks(self._opened, self._failed)

    def _opened(self, report):
        self.log.info("spool {directory} open ({replayed} lines replayed, {cuts} torn tails cut)",
                      directory=self.spool.directory, replayed=report.replayed,
                      cuts=len(report.cuts))
        MultiService.startService(self)
        self.ready.callback(None)

    def _failed(self, failure):
        self.log.failure("cannot open the spool", failure)
        self.ready.errback(failure)
        if self._reactor.running:
            self._reactor.stop()

    def stopService(self):
        d = defer.maybeDeferred(MultiService.stopService, self)
        d.addCallback(lambda _: self.spool.close())
        return d
