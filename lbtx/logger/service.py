"""The spool as a service: recovered before anything listens or delivers.

:class:`SpoolService` starts its :class:`~lbtx.logger.spool.Spool` (lock, repair,
journal replay) and only then its children (the listeners, the in-process
interlogger); on stop the children go first, then the spool writes what it
accepted and closes.
"""

from __future__ import annotations

from lbtx.gated_service import GatedService

__all__ = ["SpoolService"]


class SpoolService(GatedService):
    """Owns a :class:`~lbtx.logger.spool.Spool`; its children run only while the
    spool is open. A spool that cannot start (locked by another logger,
    unusable directory) is logged and stops the reactor."""

    what = "spool"

    def __init__(self, spool, reactor):
        super().__init__(reactor)
        self.spool = spool

    def open(self):
        return self.spool.start()

    def close(self):
        return self.spool.close()

    def opened(self, report) -> None:
        self.log.info("spool {directory} open ({replayed} lines replayed, {cuts} torn tails cut)",
                      directory=self.spool.directory, replayed=report.replayed,
                      cuts=len(report.cuts))
