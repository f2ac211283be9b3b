"""A file-system watch of the spool for an interlogger running on its own.

Inside ``twistd lb-logger`` the interlogger hears of every batch from the spool.
Alone (``twistd lb-interlogger``) it has only its rescan, every
``--rescan-period`` seconds (60 by default), so an event could wait that long.
:class:`SpoolWatch` closes the gap where the platform can: on Linux it watches the
spool directory with inotify (:mod:`twisted.internet.inotify`) and hands the job
files that were created or grew to :meth:`SpoolDelivery.hint
<lbtx.interlogger.delivery.SpoolDelivery.hint>`, once per reactor turn for all the
changes of that turn (a busy logger appends to many files many times a second).

The rescan stays: it finds what a watch can miss (an overflowing inotify queue, a
spool on a network filesystem whose other clients' writes raise no events).
Where inotify is missing, the watch logs that the rescan alone finds new events.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python.filepath import FilePath

from lbtx.logger import layout

__all__ = ["SpoolWatch"]


class SpoolWatch(Service):
    """Watches ``spool_dir`` while running; tells ``delivery`` of changed job files.

    :param rescan_period: only for the log line when no watch is possible.
    """

    log = Logger()

    def __init__(self, delivery, spool_dir: str, reactor, rescan_period: float):
        self._delivery = delivery
        self._dir = spool_dir
        self._reactor = reactor
        self._rescan_period = rescan_period
        self._notifier = None
        self._changed: set[str] = set()
        self._call = None
        #: Hints handed over so far (statistics, tests).
        self.hints = 0

    def startService(self) -> None:
        super().startService()
        try:
            from twisted.internet import inotify
            notifier = inotify.INotify(self._reactor)
            notifier.startReading()
            notifier.watch(FilePath(self._dir),
                           mask=inotify.IN_CREATE | inotify.IN_MODIFY | inotify.IN_MOVED_TO,
                           callbacks=[self._event])
        except (ImportError, OSError) as e:
            self.log.info("no file-system watch of {spool} ({error}); new events are found "
                          "by the rescan every {period} s", spool=self._dir, error=e,
                          period=self._rescan_period)
            return
        self._notifier = notifier
        self.log.info("watching {spool} for new events", spool=self._dir)

    def stopService(self) -> None:
        super().stopService()
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.loseConnection()
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        self._changed.clear()

    def _event(self, _ignored, path: FilePath, _mask: int) -> None:
        name = path.basename()
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if not layout.is_event_file(name):
            return  # positions, the locks, the journal and quarantine folders
        self._changed.add(layout.stem_of(name))
        if self._call is None:
            self._call = self._reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._call = None
        changed, self._changed = self._changed, set()
        if changed and self._notifier is not None:
            self.hints += len(changed)
            self._delivery.hint(changed)
