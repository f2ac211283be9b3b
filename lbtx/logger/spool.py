"""The logger's durable spool: one append-only file per job, group commit.

:class:`Spool` is the reactor-side front. :meth:`Spool.append` queues one line
and returns a Deferred that fires only when the line is durable on disk. Lines are
written in batches by a :class:`~lbtx.logger.writer.SpoolWriter` in a dedicated
worker thread: while one batch is being written and flushed, new appends wait;
when it is done, everything that arrived meanwhile becomes the next batch,
written and covered by one flush. There is no timer: a lone append is written at
once, and under load the batches grow by themselves, so the number of flushes
per second stays near what the disk can do while the events per flush rise.

Failures are the callers' to see: an append whose line could not be made durable
fails with :class:`~lbtx.logger.errors.SpoolFullError` (disk full, quota) or
:class:`~lbtx.logger.errors.SpoolWriteError` (read-only, I/O error ...), and the
line is not in the spool. Each batch is tried afresh, so appending works again as
soon as the disk does.

The layout on disk is in docs/spool.md and :mod:`lbtx.logger.layout`.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.jobid import JobId
from lbtx.logger import layout
from lbtx.logger.durable import DiskWorker, GroupSync, fsync_directory, sync_files
from lbtx.logger.errors import (SpoolClosedError, SpoolError, SpoolFullError, SpoolLockedError,
                                SpoolWriteError)
from lbtx.logger.writer import Appended, Cut, SpoolWriter

__all__ = ["Appended", "Cut", "Spool", "SpoolClosedError", "SpoolError", "SpoolFullError",
           "SpoolLockedError", "SpoolWriteError"]

#: Most lines in one batch.
MAX_BATCH_LINES = 4096
#: Most bytes in one batch (a single longer line makes a batch of its own).
MAX_BATCH_BYTES = 8 * 1024 * 1024
#: Most distinct job files in one batch (each is open and locked while it is written).
MAX_BATCH_FILES = 128

Observer = Callable[[Sequence[Appended]], None]


class _Pending:
    __slots__ = ("stem", "line", "lllid", "deferred")

    def __init__(self, stem: str, line: bytes, lllid: int):
        self.stem = stem
        self.line = line
        self.lllid = lllid
        self.deferred: Deferred[Appended] = Deferred()


class Spool:
    """The spool directory ``directory``, written through one disk worker.

    :param reactor: the reactor (for the worker thread's results).
    :param worker: anything with ``run(func, *args) -> Deferred`` that runs blocking
        calls in order; by default a dedicated :class:`DiskWorker` thread, which
        :meth:`close` stops.
    :param sync: the group sync function (one call per batch; see
        :mod:`lbtx.logger.durable`). ``sync_directory`` is called once per batch that
        created files.
    :param check: the line check used to find torn tails at recovery.
    :param lllid_start: the first DG.LLLID; by default the current time in
        microseconds, so that ids keep growing across restarts.
    """

    log = Logger()

    def __init__(self, directory: str, *, reactor, worker=None, sync: GroupSync = sync_files,
                 sync_directory: Callable[[str], None] = fsync_directory,
                 check: layout.LineCheck = layout.validate_line,
                 max_batch_lines: int = MAX_BATCH_LINES, max_batch_bytes: int = MAX_BATCH_BYTES,
                 max_batch_files: int = MAX_BATCH_FILES, max_open_files: int = 256,
                 lllid_start: int | None = None):
        self.directory = directory
        self._own_worker = worker is None
        self._worker = worker if worker is not None else DiskWorker(reactor, "lbtx-spool-writer")
        self._writer = SpoolWriter(directory, sync=sync, sync_directory=sync_directory,
                                   check=check, max_open_files=max_open_files)
        self._max_lines = max_batch_lines
        self._max_bytes = max_batch_bytes
        self._max_files = max_batch_files
        self._next_lllid = time.time_ns() // 1000 if lllid_start is None else lllid_start
        self._pending: deque[_Pending] = deque()
        self._busy = False
        self._state = "new"  # new -> starting -> running -> closing -> closed
        self._closed: list[Deferred[None]] = []
        self._observers: list[Observer] = []
        self._stems: dict[JobId, str] = {}
        #: Batches written and lines made durable so far (for statistics and benchmarks).
        self.batches = 0
        self.lines = 0

    # --- life cycle --------------------------------------------------------

    def start(self) -> Deferred[list[Cut]]:
        """Lock the directory and repair every job file (recovery after a crash).

        Fires with the torn tails cut off (each saved to the quarantine folder and
        logged); fails with :class:`SpoolLockedError` if another logger owns the
        spool, or with the OSError that made the directory unusable. Appends are
        accepted once it has fired.
        """
        if self._state != "new":
            raise RuntimeError("the spool was started already")
        self._state = "starting"

        def started(cuts: list[Cut]) -> list[Cut]:
            if self._state == "starting":  # not closed meanwhile
                self._state = "running"
            self._log_cuts(cuts)
            return cuts

        def failed(failure: Failure) -> Failure:
            self._state = "closed"
            if self._own_worker:
                self._worker.stop()
            return failure

        return self._worker.run(self._writer.start).addCallbacks(started, failed)

    def close(self) -> Deferred[None]:
        """Stop accepting appends; fire once the accepted ones are written and the
        files and the directory lock are released."""
        d: Deferred[None] = Deferred()
        if self._state == "closed":
            d.callback(None)
            return d
        self._closed.append(d)
        if self._state != "closing":
            self._state = "closing"
            self._maybe_finish_close()
        return d

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(appended)`` on the reactor after each batch with the lines
        that became durable (the in-process interlogger's hint that there is work)."""
        self._observers.append(observer)

    # --- appending ---------------------------------------------------------

    def append(self, jobid: JobId, record: bytes) -> Deferred[Appended]:
        """Append ``record`` (one ULM record, without or with its LF) to ``jobid``'s file.

        Fires with the :class:`Appended` place of the line once it is durable; fails
        with :class:`SpoolWriteError` (:class:`SpoolFullError` when the disk is full)
        if it could not be made durable, with :class:`SpoolClosedError` if the spool
        is not running, and with ValueError if ``record`` is not one line.
        """
        if self._state != "running":
            return fail(SpoolClosedError(f"the spool {self.directory} is not running"))
        try:
            stem = self._stems[jobid]
        except KeyError:
            if len(self._stems) > 65536:
                self._stems.clear()
            stem = self._stems[jobid] = layout.spool_stem(jobid)
        lllid = self._next_lllid
        try:
            line = layout.format_line(lllid, record)
        except ValueError as e:
            return fail(e)
        self._next_lllid = lllid + 1
        item = _Pending(stem, line, lllid)
        self._pending.append(item)
        if not self._busy:
            self._start_batch()
        return item.deferred

    def _start_batch(self) -> None:
        batch: list[_Pending] = []
        size = 0
        stems: set[str] = set()
        pending = self._pending
        while pending and len(batch) < self._max_lines:
            item = pending[0]
            if batch and (size + len(item.line) > self._max_bytes
                          or (item.stem not in stems and len(stems) >= self._max_files)):
                break
            pending.popleft()
            batch.append(item)
            size += len(item.line)
            stems.add(item.stem)
        self._busy = True
        work = [(item.stem, item.line, item.lllid) for item in batch]
        self._worker.run(self._writer.write_batch, work).addBoth(self._batch_done, batch)

    def _batch_done(self, result, batch: list[_Pending]) -> None:
        # still busy while the callers' callbacks run: what they append meanwhile
        # joins the next batch instead of starting a batch of one
        self.batches += 1
        if isinstance(result, Failure):
            self.log.failure("the spool writer failed on a batch of {count} lines",
                             result, count=len(batch))
            error = SpoolWriteError(None, f"spool writer failed: {result.value}", self.directory)
            outcomes, cuts = [error] * len(batch), []
        else:
            outcomes, cuts = result
        self._log_cuts(cuts)
        durable: list[Appended] = []
        failed: SpoolWriteError | None = None
        for item, outcome in zip(batch, outcomes):
            if isinstance(outcome, Appended):
                durable.append(outcome)
                if not item.deferred.called:
                    item.deferred.callback(outcome)
            else:
                failed = outcome
                if not item.deferred.called:
                    item.deferred.errback(Failure(outcome))
        self.lines += len(durable)
        if failed is not None:
            self.log.error("{count} spool appends failed: {error}",
                           count=len(batch) - len(durable), error=str(failed))
        if durable:
            for observer in self._observers:
                try:
                    observer(durable)
                except Exception:
                    self.log.failure("spool observer {observer!r} failed", observer=observer)
        self._busy = False
        if self._pending:
            self._start_batch()
        else:
            self._maybe_finish_close()

    # --- helpers -----------------------------------------------------------

    def _maybe_finish_close(self) -> None:
        if self._state != "closing" or self._busy or self._pending:
            return

        def finished(result):
            self._state = "closed"
            if self._own_worker:
                self._worker.stop()
            if isinstance(result, Failure):
                self.log.failure("closing the spool failed", result)
            waiting, self._closed = self._closed, []
            for d in waiting:
                d.callback(None)

        self._worker.run(self._writer.close).addBoth(finished)

    def _log_cuts(self, cuts: Sequence[Cut]) -> None:
        for cut in cuts:
            self.log.warn("cut {length} bytes off {path} at offset {offset} ({reason});"
                          " saved to {saved_to}", length=cut.length, path=cut.path,
                          offset=cut.offset, reason=cut.reason, saved_to=cut.saved_to)
