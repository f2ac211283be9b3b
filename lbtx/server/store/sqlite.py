"""The embedded job store: one SQLite file, WAL mode, all database work off the
reactor thread.

Writes go to one dedicated writer thread (a one-thread pool driven with
:func:`twisted.internet.threads.deferToThreadPool`) holding the only writing
connection, so SQLite's single writer is the per-job write lock; each batch is
one ``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous=FULL``, so an answered
event is on disk. Reads run on their own thread and connection, in a read
transaction, and see the last commit while the writer works (WAL).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any, Callable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.query.conditions import JobQuery
from lbtx.server.store import batch, reads, schema
from lbtx.server.store.conditions_sql import INDEXED_ATTRIBUTES
from lbtx.server.store.interfaces import IJobStore, INotificationStore, StoreUnavailableError
from lbtx.server.store.maintenance_store import MaintenanceStoreMixin
from lbtx.server.store.notify_store import NotificationStoreMixin
from lbtx.server.store.sql import SQLITE, Work, run_sync
from lbtx.timeval import Timeval

__all__ = ["SQLiteJobStore", "DEFAULT_FILENAME"]

DEFAULT_FILENAME = "lbtx.sqlite"
BUSY_TIMEOUT = 30.0  # seconds a connection waits for another's lock


def _daemon_thread(*args, **kwargs) -> threading.Thread:
    """Database threads do not keep the process alive: an unfinished transaction is
    rolled back by SQLite, as after kill -9."""
    return threading.Thread(*args, daemon=True, **kwargs)


class _ThreadPool(ThreadPool):
    threadFactory = staticmethod(_daemon_thread)


class _DatabaseThread:
    """One thread with its own connection; work runs there in submission order."""

    def __init__(self, reactor, name: str, opener: Callable[[], sqlite3.Connection]):
        self._reactor = reactor
        self._pool = _ThreadPool(1, 1, name=name)
        self._opener = opener
        self._conn: sqlite3.Connection | None = None
        self.running = False

    def start(self) -> None:
        self._pool.start()
        self.running = True

    def run(self, func: Callable[[sqlite3.Connection], Any]) -> Deferred:
        if not self.running:
            return fail(StoreUnavailableError("the store is stopped"))
        return deferToThreadPool(self._reactor, self._pool, self._call, func)

    def _call(self, func):
        if self._conn is None:
            self._conn = self._opener()
        return func(self._conn)

    def stop(self) -> Deferred:
        """Let the queued work finish, close the connection, stop the thread."""
        if not self.running:
            return succeed(None)
        d = self.run(self._close)
        self.running = False

        def joined(result):
            self._pool.stop()
            return result
        return d.addBoth(joined)

    def _close(self, conn) -> None:
        conn.close()
        self._conn = None


def _transaction(work: Work, begin: str) -> Callable[[sqlite3.Connection], Any]:
    def run(conn: sqlite3.Connection):
        cur = conn.cursor()
        cur.execute(begin)
        try:
            result = run_sync(cur, work)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return result
    return run


@implementer(IJobStore, INotificationStore)
class SQLiteJobStore(NotificationStoreMixin, MaintenanceStoreMixin):
    """:class:`IJobStore` over an SQLite file (created with its directory if needed).

    ``clock`` (an ``IReactorTime``; default: the reactor) gives arrival times;
    ``synchronous`` is SQLite's setting for the writer (``FULL``: every commit is
    flushed to disk). ``generated_at_clock`` stamps server-generated events with
    the clock instead of the causing event's timestamp (as the original server
    does; statuses then depend on when events arrive).
    """

    log = Logger()
    lock_slots = 1
    indexed_attributes = INDEXED_ATTRIBUTES

    def __init__(self, path: str, reactor, *, clock=None, synchronous: str = "FULL",
                 generated_at_clock: bool = False):
        self.path = path
        self._generated_at_clock = generated_at_clock
        self._reactor = reactor
        self._clock = clock or reactor
        self._synchronous = synchronous
        self._writer = _DatabaseThread(reactor, "lbtx-sqlite-writer", self._open_writer)
        self._reader = _DatabaseThread(reactor, "lbtx-sqlite-reader", self._open_reader)

    # --- connections (opened in their own threads) ---
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        conn = self._connect()
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            self.log.warn("SQLite store {path} runs in journal mode {mode}, not WAL",
                          path=self.path, mode=mode)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute("PRAGMA query_only = ON")
        return conn

    # --- life cycle ---
    def start(self) -> Deferred:
        self._writer.start()
        d = self._writer.run(_transaction(schema.upgrade(SQLITE), "BEGIN IMMEDIATE"))

        def upgraded(found: int) -> None:
            if found != schema.CURRENT_VERSION:
                self.log.info("SQLite store {path}: schema version {old} -> {new}",
                              path=self.path, old=found, new=schema.CURRENT_VERSION)
            self._reader.start()

        def failed(f):
            # the writer thread must not outlive a failed start (it would keep the
            # process from exiting)
            return self._writer.stop().addBoth(lambda _: f)
        return d.addCallbacks(upgraded, failed)

    def stop(self) -> Deferred:
        d = self._writer.stop()
        d.addBoth(lambda _: self._reader.stop())
        return d

    # --- writes ---
    def accept_events(self, events: Sequence[Event], lines: Sequence[str] | None = None
                      ) -> Deferred:
        events = list(events)
        lines = list(lines) if lines is not None else None
        try:
            batch.check_events(events)
        except ValueError:
            return fail()
        if not events:
            return self._writer.run(lambda conn: [])
        now = Timeval.from_float(self._clock.seconds())
        work = batch.accept_batch(SQLITE, events, lines, now,
                                  generated_at_clock=self._generated_at_clock,
                                  notify=self.read_policy, anonymizer=self.anonymizer)
        return self._writer.run(_transaction(work, "BEGIN IMMEDIATE"))

    # --- notifications (NotificationStoreMixin) ---

    _notify_dialect = SQLITE

    def _notify_write(self, factory) -> Deferred:
        return self._writer.run(lambda conn: _transaction(factory(), "BEGIN IMMEDIATE")(conn))

    def _notify_read(self, factory) -> Deferred:
        return self._reader.run(lambda conn: _transaction(factory(), "BEGIN")(conn))

    # --- reads ---
    def _read(self, work: Work) -> Deferred:
        return self._reader.run(_transaction(work, "BEGIN"))

    def job_status(self, job_id: JobId) -> Deferred:
        return self._read(reads.job_record(SQLITE, job_id))

    def job_events(self, job_id: JobId) -> Deferred:
        return self._read(reads.job_events(SQLITE, job_id))

    def query_jobs(self, query: JobQuery, *, limit: int | None) -> Deferred:
        return self._read(reads.query_jobs(SQLITE, query, limit))

    def user_jobs(self, owner: str, *, limit: int | None = None) -> Deferred:
        return self._read(reads.user_jobs(SQLITE, owner, limit))

    def user_job_ids(self, owner: str, *, limit: int | None = None) -> Deferred:
        return self._read(reads.user_job_ids(SQLITE, owner, limit))

    def children(self, parent_id: JobId) -> Deferred:
        return self._read(reads.children(SQLITE, parent_id))

    def last_seqcode(self, job_id: JobId) -> Deferred:
        return self._read(reads.last_seqcode(SQLITE, job_id))
