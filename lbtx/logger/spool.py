"""The logger's durable spool: one append-only file per job, group commit.

:class:`Spool` is the reactor-side front. :meth:`Spool.append` queues one line
and returns a Deferred that fires only when the line is durable on disk
(:meth:`Spool.append_many`: several lines, one Deferred for all). Lines are
written in batches by a :class:`~lbtx.logger.writer.SpoolWriter` in a dedicated
worker thread: while one batch is being written and flushed, new appends collect
in the next batch, which the writer takes as soon as it is done (it does not wait
for the reactor to hear of the finished flush), and covers with one flush. There
is no timer: a lone append is written at once, and under load the batches grow
by themselves, so the number of flushes per second stays near what the disk can
do while the events per flush rise.

Failures are the callers' to see: an append whose line could not be made durable
fails with :class:`~lbtx.logger.errors.SpoolFullError` (disk full, quota) or
:class:`~lbtx.logger.errors.SpoolWriteError` (read-only, I/O error ...), and the
line is not in the spool. Each batch is tried afresh, so appending works again as
soon as the disk does.

The layout on disk is in docs/spool.md and :mod:`lbtx.logger.layout`.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.jobid import JobId
from lbtx.logger import layout
from lbtx.logger.durable import DiskWorker, GroupSync, flush_tree, fsync_directory, sync_files
from lbtx.logger.journal import SEGMENT_BYTES
from lbtx.logger.errors import (SpoolClosedError, SpoolError, SpoolFullError, SpoolLockedError,
                                SpoolWriteError)
from lbtx.logger.writer import (Appended, Checkpoint, Cut, SpoolWriter, StartReport,
                                default_max_open_files)

__all__ = ["Appended", "Cut", "Spool", "StartReport", "SpoolClosedError", "SpoolError", "SpoolFullError",
           "SpoolLockedError", "SpoolWriteError"]

#: Most lines in one batch.
MAX_BATCH_LINES = 4096
#: Most bytes in one batch (a single longer line makes a batch of its own).
MAX_BATCH_BYTES = 8 * 1024 * 1024

Observer = Callable[[Sequence[Appended]], None]


class Spool:
    """The spool directory ``directory``, written through one disk worker.

    :param reactor: the reactor (for the worker thread's results).
    :param worker: anything with ``run(func, *args) -> Deferred`` that runs blocking
        calls in order; by default a dedicated :class:`DiskWorker` thread, which
        :meth:`close` stops.
    :param checkpoint_worker: where checkpoints run (flush the job files, drop old
        journal segments); by default a second thread, or ``worker`` if one is given.
    :param sync: the group sync function, called once per batch on the journal (see
        :mod:`lbtx.logger.durable`); ``sync_directory`` when the journal starts a
        segment; ``flush`` at checkpoints.
    :param check: the line check used to find torn tails at recovery.
    :param segment_bytes: journal segment size that triggers a checkpoint.
    :param lllid_start: the first DG.LLLID; by default the current time in
        microseconds, so that ids keep growing across restarts.
    """

    log = Logger()

    def __init__(self, directory: str, *, reactor, worker=None, checkpoint_worker=None,
                 sync: GroupSync = sync_files,
                 sync_directory: Callable[[str], None] = fsync_directory,
                 flush: Callable[[str], None] = flush_tree,
                 check: layout.LineCheck = layout.validate_line,
                 segment_bytes: int = SEGMENT_BYTES,
                 max_batch_lines: int = MAX_BATCH_LINES, max_batch_bytes: int = MAX_BATCH_BYTES,
                 max_open_files: int | None = None,
                 lllid_start: int | None = None):
        self.directory = directory
        self._own_workers: list[DiskWorker] = []
        if worker is None:
            worker = DiskWorker(reactor, "lbtx-spool-writer")
            self._own_workers.append(worker)
            if checkpoint_worker is None:
                checkpoint_worker = DiskWorker(reactor, "lbtx-spool-checkpoint")
                self._own_workers.append(checkpoint_worker)
        self._worker = worker
        self._checkpoint_worker = checkpoint_worker if checkpoint_worker is not None else worker
        self._checkpoints: list[Deferred] = []
        if max_open_files is None:
            max_open_files = default_max_open_files()
        self._writer = SpoolWriter(directory, sync=sync, sync_directory=sync_directory,
                                   flush=flush, check=check, max_open_files=max_open_files,
                                   segment_bytes=segment_bytes)
        self._max_lines = max_batch_lines
        self._max_bytes = max_batch_bytes
        self._next_lllid = time.time_ns() // 1000 if lllid_start is None else lllid_start
        self._lock = threading.Lock()  # guards the open batch against the writer's seal
        self._open: _Batch | None = None
        self._outstanding = 0  # batches handed to the writer and not yet answered
        self._state = "new"  # new, starting, running, closing, closing-writer, closed
        self._closed: list[Deferred[None]] = []
        self._observers: list[Observer] = []
        self._stems: dict[JobId, str] = {}
        #: Batches written and lines made durable so far (for statistics and benchmarks).
        self.batches = 0
        self.lines = 0

    # --- life cycle --------------------------------------------------------

    def start(self) -> Deferred[StartReport]:
        """Lock the directory, repair every job file and replay the journal (recovery
        after a crash).

        Fires with a :class:`StartReport`: the torn tails cut off (each saved to the
        quarantine folder and logged) and the lines replayed; fails with
        :class:`SpoolLockedError` if another logger owns the spool, or with the
        OSError that made the directory unusable. Appends are accepted once it has
        fired.
        """
        if self._state != "new":
            raise RuntimeError("the spool was started already")
        self._state = "starting"

        def started(report: StartReport) -> StartReport:
            if self._state == "starting":  # not closed meanwhile
                self._state = "running"
            self._next_lllid = max(self._next_lllid, report.max_lllid + 1)
            self._log_cuts(report.cuts)
            if report.replayed:
                self.log.info("replayed {count} journalled lines into {directory}",
                              count=report.replayed, directory=self.directory)
            return report

        def failed(failure: Failure) -> Failure:
            self._state = "closed"
            self._stop_workers()
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
        if self._state not in ("closing", "closing-writer"):
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
        stem = self._stem(jobid)
        lllid = self._next_lllid
        try:
            line = layout.format_line(lllid, record)
        except ValueError as e:
            return fail(e)
        self._next_lllid = lllid + 1
        d: Deferred[Appended] = Deferred()
        self._enqueue([(stem, line, lllid)], [(d, -1)], len(line))
        return d

    def append_many(self, entries: Sequence[tuple[JobId, bytes]]
                    ) -> "Deferred[list[Appended | Exception]]":
        """Append several ``(jobid, record)`` entries; one Deferred for all of them.

        It fires, once every line is durable or has failed, with one outcome per
        entry in order: the :class:`Appended` place of the line, or the exception
        that kept it out (:class:`SpoolWriteError`, ValueError for a record that is
        not one line). The lines join the same group commit as single appends (a
        long list may span two batches). Fails with :class:`SpoolClosedError` if
        the spool is not running.
        """
        if self._state != "running":
            return fail(SpoolClosedError(f"the spool {self.directory} is not running"))
        collector = _Collector(len(entries))
        stem_of = self._stem
        items, sinks = [], []
        lllid = self._next_lllid
        size = 0
        for i, (jobid, record) in enumerate(entries):
            try:
                line = layout.format_line(lllid, record)
            except ValueError as e:
                collector.put(i, e)
                continue
            items.append((stem_of(jobid), line, lllid))
            sinks.append((collector, i))
            size += len(line)
            lllid += 1
        self._next_lllid = lllid
        if items:
            self._enqueue(items, sinks, size)
        return collector.deferred

    def _stem(self, jobid: JobId) -> str:
        stem = self._stems.get(jobid)
        if stem is None:
            if len(self._stems) > 65536:
                self._stems.clear()
            stem = self._stems[jobid] = layout.spool_stem(jobid)
        return stem

    # --- group commit --------------------------------------------------------
    #
    # Lines go into the *open* batch, which is already queued at the writer. The
    # writer seals a batch (under the lock) when it starts on it, so the batch holds
    # every line that arrived until the writer was free: while one batch is on the
    # disk, the next collects what arrives and the writer takes it as soon as the
    # previous flush is done, without waiting for the reactor to hear of that flush
    # (which, under load, may be busy reading requests for a while). The reactor
    # answers the callers of each batch when it hears of it.

    def _enqueue(self, items: list, sinks: list, size: int) -> None:
        submit: list[_Batch] = []
        max_lines, max_bytes = self._max_lines, self._max_bytes
        with self._lock:
            batch = self._open
            if batch is None or batch.sealed:
                batch = self._open = _Batch()
                submit.append(batch)
            if (len(batch.items) + len(items) <= max_lines
                    and batch.size + size <= max_bytes):
                batch.items += items
                batch.sinks += sinks
                batch.size += size
            else:  # one line at a time, starting new batches as they fill up
                for item, sink in zip(items, sinks):
                    length = len(item[1])
                    if batch.items and (len(batch.items) >= max_lines
                                        or batch.size + length > max_bytes):
                        batch.sealed = True  # full: the writer takes it as it is
                        batch = self._open = _Batch()
                        submit.append(batch)
                    batch.items.append(item)
                    batch.sinks.append(sink)
                    batch.size += length
        for batch in submit:  # outside the lock: a synchronous worker runs it at once
            self._outstanding += 1
            self._worker.run(self._write, batch).addBoth(self._batch_done, batch)

    def _write(self, batch: "_Batch"):
        """In the writer thread: seal ``batch`` and write it."""
        with self._lock:
            batch.sealed = True
        return self._writer.write_batch(batch.items)

    def _batch_done(self, result, batch: "_Batch") -> None:
        self._outstanding -= 1
        self.batches += 1
        sinks = batch.sinks
        if isinstance(result, Failure):
            self.log.failure("the spool writer failed on a batch of {count} lines",
                             result, count=len(sinks))
            error = SpoolWriteError(None, f"spool writer failed: {result.value}", self.directory)
            outcomes, cuts, checkpoint = [error] * len(sinks), [], None
        else:
            outcomes, cuts, checkpoint = result
        if cuts:
            self._log_cuts(cuts)
        if checkpoint is not None:
            self._run_checkpoint(checkpoint)
        self._deliver(sinks, outcomes)
        self._maybe_finish_close()

    def _deliver(self, sinks: list[tuple], outcomes: list) -> None:
        """Fire the callers' Deferreds (and collectors), then tell the observers."""
        durable: list[Appended] = []
        failed: SpoolWriteError | None = None
        for (sink, index), outcome in zip(sinks, outcomes):
            if type(outcome) is Appended:
                durable.append(outcome)
                if index >= 0:
                    sink.put(index, outcome)
                elif not sink.called:
                    sink.callback(outcome)
            else:
                failed = outcome
                if index >= 0:
                    sink.put(index, outcome)
                elif not sink.called:
                    sink.errback(Failure(outcome))
        self.lines += len(durable)
        if failed is not None:
            self.log.error("{count} spool appends failed: {error}",
                           count=len(sinks) - len(durable), error=str(failed))
        if durable:
            for observer in self._observers:
                try:
                    observer(durable)
                except Exception:
                    self.log.failure("spool observer {observer!r} failed", observer=observer)

    # --- helpers -----------------------------------------------------------

    def _run_checkpoint(self, checkpoint: Checkpoint) -> None:
        def done(result):
            self._checkpoints.remove(d)
            if isinstance(result, Failure):
                self.log.failure("spool checkpoint failed; the journal is kept", result)
            self._maybe_finish_close()

        d = self._checkpoint_worker.run(checkpoint.run)
        self._checkpoints.append(d)
        d.addBoth(done)

    def _stop_workers(self) -> None:
        for worker in self._own_workers:
            worker.stop()

    def _maybe_finish_close(self) -> None:
        if self._state != "closing" or self._outstanding or self._checkpoints:
            return
        self._state = "closing-writer"

        def finished(result):
            self._state = "closed"
            self._stop_workers()
            if isinstance(result, Failure):
                self.log.failure("closing the spool failed", result)
            self.log.info("spool {directory} closed: {lines} lines made durable in {batches}"
                          " group commits", directory=self.directory, lines=self.lines,
                          batches=self.batches)
            waiting, self._closed = self._closed, []
            for d in waiting:
                d.callback(None)

        self._worker.run(self._writer.close).addBoth(finished)

    def _log_cuts(self, cuts: Sequence[Cut]) -> None:
        for cut in cuts:
            self.log.warn("cut {length} bytes off {path} at offset {offset} ({reason});"
                          " saved to {saved_to}", length=cut.length, path=cut.path,
                          offset=cut.offset, reason=cut.reason, saved_to=cut.saved_to)


class _Batch:
    """Lines for one group commit: ``(stem, line, lllid)`` items and, per item, its
    sink: ``(Deferred, -1)`` or ``(the _Collector of an append_many, index)``."""

    __slots__ = ("items", "sinks", "size", "sealed")

    def __init__(self):
        self.items: list[tuple[str, bytes, int]] = []
        self.sinks: list[tuple] = []
        self.size = 0
        self.sealed = False


class _Collector:
    """The outcomes of one :meth:`Spool.append_many`; fires ``deferred`` with all of them."""

    __slots__ = ("deferred", "outcomes", "_missing")

    def __init__(self, count: int):
        self.deferred: Deferred[list] = Deferred()
        self.outcomes: list = [None] * count
        self._missing = count
        if not count:
            self.deferred.callback(self.outcomes)

    def put(self, index: int, outcome) -> None:
        self.outcomes[index] = outcome
        self._missing -= 1
        if not self._missing:
            self.deferred.callback(self.outcomes)
