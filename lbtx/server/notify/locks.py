"""Delivery locks: one lb-server process at a time delivers a registration.

With several server processes on one PostgreSQL database every process scans the
outbox. :class:`PostgresDeliveryLocks` keeps one connection of its own and takes a
session-level advisory lock per registration (``pg_try_advisory_lock(LOCK_CLASS,
hashtext(unique))``) while the process delivers it; another process's try fails
and it leaves the registration alone. A process that dies loses its connection,
and PostgreSQL releases its locks. If the lock connection is lost the locks are
not trusted any more: :meth:`acquire` then answers True (deliver anyway:
receivers drop duplicates by seq) and reconnects on the next call.

:class:`NoLocks` is for SQLite (one process per database file).
"""

from __future__ import annotations

from twisted.internet.defer import inlineCallbacks, succeed
from twisted.logger import Logger

from lbtx.server.notify.model import notif_unique

__all__ = ["NoLocks", "PostgresDeliveryLocks", "LOCK_CLASS", "locks_for"]

#: first key of the delivery locks ("LBNT"), apart from the store's job locks
LOCK_CLASS = 0x4C424E54


class NoLocks:
    """Every acquire succeeds."""

    def acquire(self, notif_id: str):
        return succeed(True)

    def release(self, notif_id: str):
        return succeed(None)

    def close(self):
        return succeed(None)


class PostgresDeliveryLocks:
    """Advisory locks on a dedicated connection (see the module doc)."""

    log = Logger()

    def __init__(self, dsn: str, reactor, *, timeout: float = 10.0):
        self.dsn = dsn
        self.reactor = reactor
        self.timeout = timeout
        self._conn = None
        self._held: set[str] = set()

    @inlineCallbacks
    def _connection(self):
        if self._conn is None:
            from txpostgres import txpostgres
            conn = txpostgres.Connection(reactor=self.reactor)
            d = conn.connect(self.dsn)
            d.addTimeout(self.timeout, self.reactor)
            yield d
            self._conn = conn
            self._held.clear()
        return self._conn

    def _lost(self, failure, what: str):
        self.log.warn("delivery lock connection failed ({what}): {error}", what=what,
                      error=failure.getErrorMessage())
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    @inlineCallbacks
    def acquire(self, notif_id: str):
        """Fire True if this process may deliver ``notif_id`` now."""
        try:
            conn = yield self._connection()
            d = conn.runQuery("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                              (LOCK_CLASS, notif_unique(notif_id)))
            d.addTimeout(self.timeout, self.reactor)
            rows = yield d
        except Exception:
            from twisted.python.failure import Failure
            self._lost(Failure(), "acquire")
            return True
        got = bool(rows and rows[0][0])
        if got:
            self._held.add(notif_id)
        return got

    @inlineCallbacks
    def release(self, notif_id: str):
        if notif_id not in self._held or self._conn is None:
            return None
        self._held.discard(notif_id)
        try:
            d = self._conn.runQuery("SELECT pg_advisory_unlock(%s, hashtext(%s))",
                                    (LOCK_CLASS, notif_unique(notif_id)))
            d.addTimeout(self.timeout, self.reactor)
            yield d
        except Exception:
            from twisted.python.failure import Failure
            self._lost(Failure(), "release")
        return None

    def close(self):
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        return succeed(None)


def locks_for(db_url: str, reactor):
    """The locks a server on ``db_url`` needs."""
    if db_url.startswith(("postgresql://", "postgres://")):
        return PostgresDeliveryLocks(db_url, reactor)
    return NoLocks()
