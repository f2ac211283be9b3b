"""The glue of the interlogger: spool files in, destination queues fed, positions out.

:class:`SpoolDelivery` keeps one *store* per spool file: the job it belongs to,
the durable position (what the server acknowledged), the read offset (what was
handed to a queue) and the events in flight, in file order. It

* learns of work from the in-process logger (:meth:`notify`, a spool observer)
  and from a periodic rescan of the spool directory (also the recovery at
  start-up: everything behind the stored positions is sent again);
* reads complete lines from the read offset (in a disk worker thread) and puts
  them on the queue of the job's destination (``JobId.store_address``), unless
  that queue holds ``queue_high`` events already (then the file waits, in the spool);
* on each batch's replies marks events done and advances the position over the
  done prefix: STORED, DUPLICATE and EXISTS are done; NOT_OWNER and INVALID, and
  UNKNOWN_JOB once ``unknown_job_window`` has passed since the job was first
  unknown, are written to the quarantine folder (with the reason, logged) and then
  done; an UNKNOWN_JOB within the window rewinds the file to its position and
  holds it for ``unknown_job_retry`` seconds (the registration may be on its way);
* removes a file (and its position) once everything in it is delivered, during
  the rescan, if the logger is not writing it.

Connection failures and timeouts never reach this module: the queue keeps its
events and retries, so the position stays where it was.
"""

from __future__ import annotations

import random as _random
from typing import Callable, Sequence

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.interlogger import reader
from lbtx.interlogger.interfaces import (DELIVERED, REFUSED, DeliveryResult, Destination,
                                         IDeliveryConnector, Reply)
from lbtx.interlogger.positions import Position, PositionStore, remove_position
from lbtx.interlogger.queue import DeliveryQueue
from lbtx.interlogger.stores import DeliveryConfig, SpoolEntry, SpoolStore
from lbtx.logger import layout
from lbtx.logger.durable import DiskWorker, GroupSync, sync_files
from lbtx.logger.quarantine import quarantine_lines

__all__ = ["DeliveryConfig", "SpoolDelivery"]  # DeliveryConfig lives in stores.py

class SpoolDelivery:
    """Delivers the spool in ``spool_dir`` through ``connector``.

    :param clock: time for deadlines, holds and the rescan.
    :param reactor: needed only to create the default disk worker threads.
    :param read_worker: runs the blocking reads (``run(func, *args) -> Deferred``);
    :param write_worker: runs position writes, quarantine writes and purges, in order.
    :param queue_factory: ``(destination, sink) -> queue``; by default a
        :class:`DeliveryQueue` over ``connector`` with ``config.queue_policy``.
    """

    log = Logger()

    def __init__(self, spool_dir: str, connector: IDeliveryConnector, *, clock: IReactorTime,
                 reactor=None, read_worker=None, write_worker=None,
                 config: DeliveryConfig = DeliveryConfig(), sync: GroupSync = sync_files,
                 random: Callable[[], float] = _random.random,
                 queue_factory: Callable | None = None):
        self._dir = spool_dir
        self._connector = connector
        self._clock = clock
        self._config = config
        self._random = random
        self._own_workers: list[DiskWorker] = []
        if read_worker is None:
            read_worker = DiskWorker(reactor, "lbtx-interlogger-read")
            self._own_workers.append(read_worker)
        if write_worker is None:
            write_worker = DiskWorker(reactor, "lbtx-interlogger-write")
            self._own_workers.append(write_worker)
        self._read_worker = read_worker
        self._write_worker = write_worker
        self._positions = PositionStore(spool_dir, write_worker, sync)
        self._queue_factory = queue_factory or self._make_queue
        self.stores: dict[str, SpoolStore] = {}
        self.queues: dict[Destination, DeliveryQueue] = {}
        self._opening: set[str] = set()
        self._starved: dict[Destination, set[SpoolStore]] = {}
        self._inflight: set[Deferred] = set()
        self._loop: LoopingCall | None = None
        self._lock_fd: int | None = None
        self._running = False
        self._reply_observers: list[Callable[[Sequence[SpoolEntry], Sequence[Reply]], None]] = []
        self._flushes: list[_Flush] = []
        self._scan_waiters: list[Deferred] | None = None  # flushes of every job, scanning

    def add_reply_observer(self, observer: Callable[[Sequence[SpoolEntry], Sequence[Reply]],
                                                    None]) -> None:
        """Call ``observer(entries, replies)`` with every server reply received: the
        lines sent (each with its ``lllid``, ``DG.LLLID``) and the server's answer for
        each (the logger's synchronous events wait on these,
        :mod:`lbtx.logger.confirmations`)."""
        self._reply_observers.append(observer)

    # --- flush ---------------------------------------------------------------

    def flush(self, jobid=None, *, timeout: float) -> Deferred[int]:
        """Deliver now what is in the spool for ``jobid`` (every job if None), and
        fire once it is all delivered (or quarantined) with 0, or after ``timeout``
        seconds with the number of spool files that still wait (formats.md §5.9).

        The spool is looked at afresh (the file of the job, or a rescan), queues
        backing off are tried at once, batches do not linger, and a job held
        because its server did not know it yet is sent again at once (if it is
        still unknown, its events wait). Only the lines in the spool when the flush
        began are waited for. Fails if the interlogger is not running.
        """
        if not self._running:
            return fail(RuntimeError("the interlogger is not running"))
        if jobid is None:
            d = self._flush_scan()
        else:
            stem = layout.spool_stem(jobid)
            d = self._run(self._read_worker, reader.spool_file_size, self._dir, stem)
            d.addCallback(lambda size: {} if size is None else {stem: size})
        return d.addCallback(self._flush_started, timeout, jobid is None)

    def _flush_scan(self) -> Deferred[dict[str, int]]:
        """The sizes of every spool file, from a rescan: one for all the flushes of
        every job that arrive while it runs (a producer sending many costs one)."""
        waiting: Deferred[dict[str, int]] = Deferred()
        if self._scan_waiters is not None:
            self._scan_waiters.append(waiting)
            return waiting
        self._scan_waiters = [waiting]

        def done(result):
            waiters, self._scan_waiters = self._scan_waiters, None
            if not isinstance(result, Failure):
                self._scanned(result)
                result = result[0]
            for d in waiters:
                if isinstance(result, Failure):
                    d.errback(result)
                else:
                    d.callback(dict(result))

        self._run(self._read_worker, reader.scan_spool, self._dir).addBoth(done)
        return waiting

    def _flush_started(self, sizes: dict[str, int], timeout: float, everything: bool):
        if not self._running:
            return len(sizes)
        flush = _Flush(sizes, Deferred())  # (sizes is this flush's own dict)
        if not everything:  # (the rescan did this for every file)
            self.hint(list(sizes))  # discover a new file, read what grew
        for stem in list(flush.remaining):
            store = self.stores.get(stem)
            if store is None:
                if stem not in self._opening:  # delivered and removed meanwhile
                    del flush.remaining[stem]
            elif store.committed.offset >= flush.remaining[stem]:
                del flush.remaining[stem]
        if not flush.remaining:
            return 0
        self._flushes.append(flush)
        flush.timer = self._clock.callLater(timeout, self._flush_over, flush)
        stems = None if everything else set(flush.remaining)
        for store in list(self.stores.values()):
            if stems is not None and store.stem not in stems:
                continue
            if store.hold is not None:  # an unknown job: ask again now
                self._cancel_hold(store)
                self._pump(store)
            if store.destination is not None and store.destination in self.queues:
                self.queues[store.destination].hurry()
        return flush.done

    def _flushing(self, stem: str) -> bool:
        return any(stem in flush.remaining for flush in self._flushes)

    def _flush_progress(self, stem: str, delivered: int | None = None) -> None:
        """``stem``'s file is delivered up to ``delivered`` (None: the file is gone, or
        was never there): settle the flushes this finishes."""
        for flush in list(self._flushes):
            target = flush.remaining.get(stem)
            if target is None or (delivered is not None and delivered < target):
                continue
            del flush.remaining[stem]
            if not flush.remaining:
                self._flush_over(flush)

    def _flush_over(self, flush: "_Flush") -> None:
        if flush in self._flushes:
            self._flushes.remove(flush)
        if flush.timer is not None and flush.timer.active():
            flush.timer.cancel()
        if not flush.done.called:
            flush.done.callback(len(flush.remaining))

    # --- life cycle --------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Take the spool's interlogger lock, then recover: scan the spool and send
        everything behind the stored positions; rescan every ``rescan_period``.
        Fails with :class:`~lbtx.logger.errors.SpoolLockedError` if another
        interlogger owns the spool."""

        def locked(fd: int):
            self._lock_fd = fd
            self._running = True
            self._loop = LoopingCall(self._periodic)
            self._loop.clock = self._clock
            self._loop.start(self._config.rescan_period, now=False)
            return self.rescan()

        d = self._write_worker.run(layout.acquire_directory_lock, self._dir,
                                   layout.INTERLOGGER_LOCK)
        return d.addCallback(locked)

    def stop(self) -> Deferred[None]:
        """Stop the queues and timers, finish the disk work under way, write the last
        positions and release the lock. Events in flight stay in the spool."""
        self._running = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for store in self.stores.values():
            self._cancel_hold(store)
        for queue in self.queues.values():
            queue.stop()
        for flush in list(self._flushes):
            self._flush_over(flush)

        def release(_):
            if self._lock_fd is None:
                return None
            fd, self._lock_fd = self._lock_fd, None
            return self._write_worker.run(layout.release_directory_lock, fd)

        def stop_workers(result):
            for worker in self._own_workers:
                worker.stop()
            return result

        d = DeferredList(list(self._inflight), consumeErrors=True)
        d.addCallback(lambda _: self._positions.flush())
        d.addCallback(release)
        d.addBoth(stop_workers)
        return d.addCallback(lambda _: None)

    # --- hints and scans ---------------------------------------------------

    def notify(self, appended: Sequence) -> None:
        """The in-process logger's hint (a spool observer): these lines are durable.

        A file whose delivery has read everything before them takes the lines as
        they are (:attr:`~lbtx.logger.spool.Appended.line`), without reading them
        back from the disk; any other is read from where its reading stands."""
        if not self._running:
            return
        by_stem: dict[str, list] = {}
        for a in appended:
            lines = by_stem.get(a.stem)
            if lines is None:
                by_stem[a.stem] = [a]
            else:
                lines.append(a)
        to_read = []
        for stem, lines in by_stem.items():
            store = self.stores.get(stem)
            if store is None or not self._take_appended(store, lines):
                to_read.append(stem)
        self.hint(to_read)

    def hint(self, stems) -> None:
        """Spool files named by their stems were created or grew (a file-system
        watch of an interlogger running on its own, or lines the logger's hint
        could not hand over as they are): read what is new in them."""
        if not self._running:
            return
        for stem in stems:
            store = self.stores.get(stem)
            if store is None:
                self._discover(stem)
            else:
                store.more = True
                self._pump(store)

    def _take_appended(self, store: SpoolStore, appended: list) -> bool:
        """Queue ``appended`` (lines just written to ``store``'s file) for delivery if
        they continue exactly where reading stands; False if the file must be read."""
        if (store.removed or store.reading or store.purging or store.hold is not None
                or store.destination is None or appended[0].offset != store.read_offset):
            return False
        queue = self._queue_for(store.destination)
        if queue.load >= self._config.queue_high:
            return False
        lines, offset = [], store.read_offset
        for a in appended:
            if a.line is None or a.offset != offset:
                return False
            lines.append((offset, a.line))
            offset = a.end
        store.size_seen = max(store.size_seen, offset)
        self._accept_lines(store, lines, offset)
        return True

    def rescan(self) -> Deferred[None]:
        """Scan the spool: find new files, read what grew, remove what is delivered.
        Fires when the scan's reads and removals have been started."""
        if not self._running:
            return succeed(None)
        return self._run(self._read_worker, reader.scan_spool, self._dir).addCallback(
            self._scanned)

    def _periodic(self) -> None:
        self.rescan().addErrback(lambda f: self.log.failure("spool rescan failed", f))

    def _scanned(self, found: tuple[dict[str, int], list[str]]) -> None:
        sizes, orphans = found
        if not self._running:
            return
        for stem, store in list(self.stores.items()):
            if stem not in sizes and not store.purging and not store.reading:
                self._drop(store, "its file is gone")
        for path in orphans:
            self._run(self._write_worker, remove_position, path)
        for stem, size in sizes.items():
            store = self.stores.get(stem)
            if store is None:
                self._discover(stem)
                continue
            store.size_seen = size
            if size > store.read_offset:
                self._pump(store)
            elif store.idle and store.committed.offset == size == store.read_offset:
                self._purge(store)

    def _discover(self, stem: str) -> None:
        if stem in self._opening or not self._running:
            return
        self._opening.add(stem)

        def opened(info: reader.StoreInfo | None):
            self._opening.discard(stem)
            if info is None:
                if self._flushes:
                    self._flush_progress(stem)
                return
            if not self._running or stem in self.stores:
                return
            if info.position_note is not None:
                self.log.warn("delivering {path} again from its start: {note}",
                              path=info.path, note=info.position_note)
            store = SpoolStore(info)
            self.stores[stem] = store
            if store.jobid is None and info.size == 0:
                self._purge(store)  # an empty file, left by a failed first append
                return
            self._pump(store)

        def failed(f: Failure):
            self._opening.discard(stem)
            self.log.failure("cannot open spool file {stem}", f, stem=stem)

        self._run(self._read_worker, reader.open_store, self._dir, stem).addCallbacks(
            opened, failed)

    # --- reading -----------------------------------------------------------

    def _queue_for(self, destination: Destination) -> DeliveryQueue:
        queue = self.queues.get(destination)
        if queue is None:
            queue = self.queues[destination] = self._queue_factory(
                destination, lambda items, replies: self._replied(destination, items, replies))
        return queue

    def _make_queue(self, destination: Destination, sink) -> DeliveryQueue:
        return DeliveryQueue(destination, self._connector, clock=self._clock, sink=sink,
                             policy=self._config.queue_policy, random=self._random)

    def _pump(self, store: SpoolStore) -> None:
        """Read more of ``store``'s file if it may and its queue has room."""
        if (not self._running or store.removed or store.reading or store.purging
                or store.hold is not None):
            return
        if store.destination is not None:
            queue = self._queue_for(store.destination)
            if queue.load >= self._config.queue_high:
                self._starved.setdefault(store.destination, set()).add(store)
                return
        store.reading = True
        store.more = False
        generation = store.generation
        d = self._run(self._read_worker, reader.read_lines, store.path, store.read_offset,
                      self._config.read_bytes)
        d.addCallback(self._read_done, store, generation)
        d.addErrback(self._read_failed, store)

    def _read_failed(self, f: Failure, store: SpoolStore) -> None:
        store.reading = False
        self.log.failure("reading {path} failed; it is read again at the next rescan", f,
                         path=store.path)

    def _read_done(self, result: reader.ReadResult | None, store: SpoolStore, generation: int) -> None:
        store.reading = False
        if not self._running or store.removed:
            return
        if result is None:
            self._drop(store, "its file is gone")
            return
        if generation != store.generation:  # rewound meanwhile: read from the new offset
            self._pump(store)
            return
        store.size_seen = result.size
        if result.size < store.read_offset:
            self.log.warn("{path} shrank below the delivered part; delivering it again from"
                          " its start", path=store.path)
            store.committed = Position()
            self._rewind(store)
            self._positions.commit(store.stem, store.jobid_text, store.committed)
            self._pump(store)
            return
        if store.jobid is None:  # found before its first line was complete
            jobid, raw = reader.job_of_lines((line for _, line in result.lines), store.stem)
            if jobid is not None:
                store.learn_job(jobid, raw)
        self._accept_lines(store, result.lines, result.end)
        if result.truncated or store.more:
            self._pump(store)

    def _accept_lines(self, store: SpoolStore, lines, end: int) -> None:
        """``(offset, line)`` pairs of ``store``'s file, read up to ``end``: each in
        flight from now; the good ones to the destination's queue, the others to
        the quarantine folder."""
        good: list[SpoolEntry] = []
        bad: dict[str, list[SpoolEntry]] = {}
        for offset, line in lines:
            entry = SpoolEntry(store, offset, line)
            store.outstanding.append(entry)
            reason = self._check(store, line)
            if reason is None:
                good.append(entry)
            else:
                bad.setdefault(reason, []).append(entry)
        store.read_offset = end
        for reason, entries in bad.items():
            self._quarantine(store, entries, "malformed spool line", reason)
        if good:
            queue = self._queue_for(store.destination)
            queue.put(good)
            if self._flushes and self._flushing(store.stem):
                queue.hurry()

    def _check(self, store: SpoolStore, line: bytes) -> str | None:
        reason, raw = layout.checked_jobid(line)
        if reason is not None:
            return reason
        if store.jobid is None:
            return "no line of this file names its job"
        if raw != store.raw_jobid:
            other = reader.jobid_of_line(line)
            if other is None or layout.spool_stem(other) != store.stem:
                return f"the line names another job ({raw[:200]!r})"
        return None

    # --- replies -----------------------------------------------------------

    def _replied(self, destination: Destination, items: Sequence[SpoolEntry],
                 replies: Sequence[Reply]) -> None:
        touched: set[SpoolStore] = set()
        refused: dict[tuple[SpoolStore, str], list[tuple[SpoolEntry, str]]] = {}
        now = self._clock.seconds()
        for observer in self._reply_observers:
            try:
                observer(items, replies)
            except Exception:
                self.log.failure("reply observer {observer!r} failed", observer=observer)
        for entry, reply in zip(items, replies):
            if not entry.current:
                continue
            store = entry.store
            result = reply.result
            if result in DELIVERED:
                entry.done = True
                store.unknown_since = None
                touched.add(store)
            elif result in REFUSED:
                refused.setdefault((store, f"server answered {result.value}"), []).append(
                    (entry, reply.detail))
            elif result is DeliveryResult.UNKNOWN_JOB:
                if store.unknown_since is None:
                    store.unknown_since = now
                waited = now - store.unknown_since
                if waited >= self._config.unknown_job_window:
                    refused.setdefault((store, "unknown job"), []).append(
                        (entry, f"still unknown after {waited:.0f} s: {reply.detail}"))
                else:
                    self._unknown_job(store, waited, reply)
        for (store, reason), pairs in refused.items():
            entries = [e for e, _ in pairs if e.current]
            if entries:
                details = sorted({d for _, d in pairs if d})
                self._quarantine(store, entries, reason, "; ".join(details))
        for store in touched:
            self._advance(store)
        self._feed(destination)

    def _unknown_job(self, store: SpoolStore, waited: float, reply: Reply) -> None:
        delay = self._config.unknown_job_retry
        self.log.info("{jobid} is unknown to {destination} ({detail}); its events are sent"
                      " again in {delay} s (quarantined after {left:.0f} s more)",
                      jobid=str(store.jobid), destination=store.destination,
                      detail=reply.detail, delay=delay,
                      left=self._config.unknown_job_window - waited)
        self._rewind(store, hold=delay)

    def _advance(self, store: SpoolStore) -> None:
        """Move the position over the done prefix of the events in flight."""
        moved = False
        outstanding = store.outstanding
        while outstanding and outstanding[0].done:
            entry = outstanding.popleft()
            store.committed = Position(entry.end, entry.lllid)
            moved = True
        if moved:
            self._positions.commit(store.stem, store.jobid_text, store.committed)
            if self._flushes:
                self._flush_progress(store.stem, store.committed.offset)

    def _rewind(self, store: SpoolStore, hold: float | None = None) -> None:
        """Forget what is in flight and read again from the position (after ``hold`` s)."""
        store.generation += 1
        store.outstanding.clear()
        store.read_offset = store.committed.offset
        if hold is not None and store.hold is None:
            def release():
                store.hold = None
                self._pump(store)
            store.hold = self._clock.callLater(hold, release)

    def _feed(self, destination: Destination) -> None:
        """Let files waiting for room on ``destination``'s queue read again."""
        starved = self._starved.get(destination)
        queue = self.queues.get(destination)
        while starved and queue is not None and queue.load < self._config.queue_high:
            self._pump(starved.pop())

    # --- quarantine and removal --------------------------------------------

    def _quarantine(self, store: SpoolStore, entries: list[SpoolEntry], reason: str, detail: str) -> None:
        """Write ``entries`` to the quarantine folder; once that is durable they are
        done. If it fails they are sent (and judged) again later."""
        data = b"".join(e.line + b"\n" for e in entries)
        generation = store.generation

        def written(path: str):
            self.log.warn("quarantined {count} events of {jobid} in {path}: {reason}"
                          " ({detail})", count=len(entries), jobid=str(store.jobid), path=path,
                          reason=reason, detail=detail)
            for entry in entries:
                if entry.current:
                    entry.done = True
            self._advance(store)

        def failed(f: Failure):
            self.log.failure("cannot quarantine {count} events of {jobid}; keeping them", f,
                             count=len(entries), jobid=str(store.jobid))
            if generation == store.generation and not store.removed:
                self._rewind(store, hold=self._config.unknown_job_retry)

        self._run(self._write_worker, quarantine_lines, self._dir, store.stem, data,
                  reason=reason, detail=detail, jobid=str(store.jobid) if store.jobid else None,
                  source=store.path, offset=entries[0].start,
                  now=self._clock.seconds()).addCallbacks(written, failed)

    def _purge(self, store: SpoolStore) -> None:
        store.purging = True
        self._positions.forget(store.stem)

        def done(removed: bool):
            store.purging = False
            if removed:
                self.log.debug("{path} is delivered and removed", path=store.path)
                more = store.more
                self._drop(store, None)
                if more:
                    self._discover(store.stem)
            else:
                self._pump(store)

        def failed(f: Failure):
            store.purging = False
            self.log.failure("removing {path} failed", f, path=store.path)

        self._run(self._write_worker, reader.purge_file, self._dir, store.stem,
                  store.committed.offset).addCallbacks(done, failed)

    def _drop(self, store: SpoolStore, why: str | None) -> None:
        if why is not None:
            self.log.info("forgetting {path}: {why}", path=store.path, why=why)
        store.removed = True
        self._cancel_hold(store)
        if self.stores.get(store.stem) is store:
            del self.stores[store.stem]
        for starved in self._starved.values():
            starved.discard(store)
        if self._flushes:
            self._flush_progress(store.stem)

    # --- helpers -----------------------------------------------------------

    @staticmethod
    def _cancel_hold(store: SpoolStore) -> None:
        hold, store.hold = store.hold, None
        if hold is not None and hold.active():
            hold.cancel()

    def _run(self, worker, func, *args, **kwargs) -> Deferred:
        d = worker.run(func, *args, **kwargs)
        if not d.called:
            self._inflight.add(d)

            def finished(result):
                self._inflight.discard(d)
                return result

            d.addBoth(finished)
        return d


class _Flush:
    """One flush under way: the files it waits for, with the offset each must be
    delivered up to, and its Deferred and deadline."""

    __slots__ = ("remaining", "done", "timer")

    def __init__(self, remaining: dict[str, int], done: Deferred):
        self.remaining = remaining
        self.done = done
        self.timer = None
