"""The shared job store: PostgreSQL through txpostgres (psycopg2 in asynchronous
mode, no threads).

Any number of server processes may use one database. The per-job write lock is
a transaction-level advisory lock, ``pg_advisory_xact_lock(LOCK_CLASS, slot)``,
where ``slot`` is a hash of the job id onto ``lock_slots`` slots. A batch's
transaction reads the stored parents of its jobs, takes the locks of its jobs
and their parents in ascending slot order (so transactions never wait on each
other in a cycle), then reads and writes under them (see
:mod:`~lbtx.server.store.batch`); if it turns out to write a job it holds no
lock for, it rolls back and starts again with that lock too. Locks go with the
transaction, so a process that dies holds none. Transactions that the database
aborts (deadlock, serialization, a unique key taken meanwhile) are retried.

Every process sharing a database must hash onto the same number of slots, or
two of them could write one job at once under different locks. So each
connection holds a shared session-level advisory lock ``(LOCK_SLOTS_CLASS,
lock_slots)`` and, when it (re)connects, looks for such locks with another slot
count in the same database: if there is one, the store does not start
(:class:`LockSlotsMismatchError`) or the connection is not used.

Connections reconnect by themselves (:mod:`~lbtx.server.store.pgconnection`);
work that meets a lost connection fails with
:class:`~lbtx.server.store.interfaces.StoreUnavailableError`.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import psycopg2
from psycopg2 import extensions
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.query.conditions import JobQuery
from lbtx.server.store import batch, reads, schema
from lbtx.server.store.conditions_sql import INDEXED_ATTRIBUTES
from lbtx.server.store.interfaces import IJobStore, INotificationStore, StoreError
from lbtx.server.store.maintenance_store import MaintenanceStoreMixin
from lbtx.server.store.notify_store import PostgresNotifications
from lbtx.server.store.pgconnection import ConnectionPool
from lbtx.server.store.sql import POSTGRES, Work
from lbtx.timeval import Timeval

__all__ = ["PostgresJobStore", "DEFAULT_LOCK_SLOTS", "LOCK_CLASS", "LOCK_SLOTS_CLASS",
           "LockSlotsMismatchError", "lock_slot"]

DEFAULT_LOCK_SLOTS = 1024
DEFAULT_CONNECTIONS = 4
#: first key of every job lock ("LBTX"), so other users of advisory locks do not collide
LOCK_CLASS = 0x4C425458
#: first key of the shared lock each connection holds on its slot count ("LBSL")
LOCK_SLOTS_CLASS = 0x4C42534C
#: attempts for a transaction the database aborted (deadlock, serialization, unique key)
MAX_ATTEMPTS = 8


class LockSlotsMismatchError(StoreError):
    """Another server process uses this database with a different number of lock
    slots; its job locks would not exclude ours."""


def lock_slot(job_id: JobId, slots: int) -> int:
    """The lock slot of a job: the same in every process (not Python's ``hash``)."""
    digest = hashlib.md5(str(job_id).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "big") % slots


def _retryable(f: Failure) -> bool:
    return bool(f.check(extensions.TransactionRollbackError, psycopg2.errors.UniqueViolation))


@implementer(IJobStore, INotificationStore)
class PostgresJobStore(PostgresNotifications, MaintenanceStoreMixin):
    """:class:`IJobStore` over PostgreSQL.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL; ``connections``
    the size of the connection pool; ``clock`` (default: the reactor) gives
    arrival times and paces reconnection; ``generated_at_clock`` as for
    :class:`~lbtx.server.store.sqlite.SQLiteJobStore`.
    """

    log = Logger()
    indexed_attributes = INDEXED_ATTRIBUTES

    def __init__(self, dsn: str, reactor, *, lock_slots: int = DEFAULT_LOCK_SLOTS,
                 connections: int = DEFAULT_CONNECTIONS, clock=None,
                 generated_at_clock: bool = False):
        if lock_slots <= 0:
            raise ValueError("lock_slots must be positive")
        self.dsn = dsn
        self.lock_slots = lock_slots
        self._generated_at_clock = generated_at_clock
        self._reactor = reactor
        self._clock = clock or reactor
        self._pool = ConnectionPool(reactor, dsn, connections, clock=self._clock,
                                    session_setup=self._claim_lock_slots)

    # --- life cycle ---
    def start(self) -> Deferred:
        d = self._pool.start()
        d.addCallback(lambda _: self._pool.run(lambda: schema.upgrade(POSTGRES)))

        def upgraded(found: int) -> None:
            if found != schema.CURRENT_VERSION:
                self.log.info("PostgreSQL store: schema version {old} -> {new}", old=found,
                              new=schema.CURRENT_VERSION)

        def failed(f: Failure) -> Failure:
            self._pool.stop()
            return f
        return d.addCallbacks(upgraded, failed)

    def stop(self) -> Deferred:
        return self._pool.stop()

    def _claim_lock_slots(self) -> Work:
        """Hold the shared lock on our slot count; fail if another process holds
        one on a different count in this database."""
        yield POSTGRES.select("SELECT pg_advisory_lock_shared(?, ?)",
                              (LOCK_SLOTS_CLASS, self.lock_slots))
        rows = yield POSTGRES.select(
            "SELECT DISTINCT objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = ?::bigint::oid AND objsubid = 2 AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_SLOTS_CLASS,))
        others = sorted(int(r[0]) for r in rows if int(r[0]) != self.lock_slots)
        if others:
            raise LockSlotsMismatchError(
                f"another server process uses this database with --lock-slots "
                f"{', '.join(map(str, others))}, this one with {self.lock_slots}: every "
                f"process sharing a database must use the same number of lock slots")

    # --- writes ---
    def _slot(self, job_id: JobId) -> int:
        return lock_slot(job_id, self.lock_slots)

    def _lock(self, job_ids: set) -> Work:
        slots = sorted({self._slot(j) for j in job_ids})
        yield POSTGRES.select("SELECT pg_advisory_xact_lock(?, s) FROM unnest(?::int[]) AS s",
                              (LOCK_CLASS, slots))

    def accept_events(self, events: Sequence[Event], lines: Sequence[str] | None = None
                      ) -> Deferred:
        events = list(events)
        lines = list(lines) if lines is not None else None
        try:
            batch.check_events(events)
        except ValueError:
            return fail()
        if not events:
            return succeed([])
        now = Timeval.from_float(self._clock.seconds())
        result = Deferred()
        state = {"locked": set(), "attempts": 0}

        def attempt() -> None:
            d = self._pool.run(lambda: batch.accept_batch(
                POSTGRES, events, lines, now, lock=self._lock, locked=state["locked"],
                slot=self._slot, generated_at_clock=self._generated_at_clock,
                notify=self.read_policy, anonymizer=self.anonymizer))
            d.addCallbacks(result.callback, failed)

        def failed(f: Failure) -> None:
            state["attempts"] += 1
            if state["attempts"] < MAX_ATTEMPTS:
                if f.check(batch.Relock):
                    state["locked"] = set(f.value.job_ids)
                    return attempt()
                if _retryable(f):
                    self.log.debug("batch transaction aborted ({error}); retrying",
                                   error=f.getErrorMessage())
                    return attempt()
            result.errback(f)

        attempt()
        return result

    # --- reads ---
    def _read(self, work_factory, *, one_statement: bool = False) -> Deferred:
        return self._pool.run(work_factory, read_only=True, one_statement=one_statement)

    def job_status(self, job_id: JobId) -> Deferred:
        return self._read(lambda: reads.job_record(POSTGRES, job_id), one_statement=True)

    def job_events(self, job_id: JobId) -> Deferred:
        return self._read(lambda: reads.job_events(POSTGRES, job_id), one_statement=True)

    def query_jobs(self, query: JobQuery, *, limit: int | None) -> Deferred:
        return self._read(lambda: reads.query_jobs(POSTGRES, query, limit),
                          one_statement=reads.one_page(query, limit))

    def user_jobs(self, owner: str, *, limit: int | None = None) -> Deferred:
        return self._read(lambda: reads.user_jobs(POSTGRES, owner, limit))

    def user_job_ids(self, owner: str, *, limit: int | None = None) -> Deferred:
        return self._read(lambda: reads.user_job_ids(POSTGRES, owner, limit), one_statement=True)

    def children(self, parent_id: JobId) -> Deferred:
        return self._read(lambda: reads.children(POSTGRES, parent_id), one_statement=True)

    def last_seqcode(self, job_id: JobId) -> Deferred:
        return self._read(lambda: reads.last_seqcode(POSTGRES, job_id), one_statement=True)
