"""The PostgreSQL connection pool of the store (lbtx/server/store/pgconnection.py)
against a real server: connection deadlines, connections the server closes while
idle, the failures work meets meanwhile, and the per-connection check that every
process on a database uses the same number of lock slots."""

from __future__ import annotations

import socket
import time

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.python.failure import Failure
from txpostgres import reconnection, txpostgres

from lbtx.server.store.interfaces import StoreUnavailableError
from lbtx.server.store.pgconnection import ConnectionPool, is_dead, reason, unavailable
from lbtx.server.store.postgres import LOCK_SLOTS_CLASS, LockSlotsMismatchError, PostgresJobStore
from lbtx.server.store.sql import POSTGRES
from lbtx.testing.logs import CapturedLogs


def _select_one():
    rows = yield POSTGRES.select("SELECT 1", ())
    return rows[0][0]


def _terminate_others(dsn: str) -> int:
    """pg_terminate_backend of every other session on the database; how many."""
    admin = psycopg2.connect(dsn)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            return cur.rowcount
    finally:
        admin.close()


def _slot_locks(dsn: str) -> list[int]:
    """The slot counts that sessions on the database hold the shared lock on."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND "
                        "classid = %s::bigint::oid AND objsubid = 2 AND database = (SELECT oid "
                        "FROM pg_database WHERE datname = current_database())",
                        (LOCK_SLOTS_CLASS,))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition did not happen in time"
        await task.deferLater(reactor, 0.05, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_silent_server_fails_the_start_at_the_deadline():
    """A server that accepts TCP connections and never answers (libpq ignores
    connect_timeout for asynchronous connections) fails the start with
    StoreUnavailableError once the connect deadline has passed; nothing hangs."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        pool = ConnectionPool(reactor, f"host=127.0.0.1 port={port} dbname=none user=none", 2,
                              connect_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as e:
            await pool.start()
        assert "no answer from the database within 0.5 s" in str(e.value)
        assert time.monotonic() - started < 10
    assert not reactor.getDelayedCalls() or all(
        "_close_quietly" not in repr(c.func) for c in reactor.getDelayedCalls())


@pytest_twisted.ensureDeferred
async def test_connections_closed_by_the_server_while_idle_come_back(pg_dsn):
    """pg_terminate_backend of every idle pool connection: the pool notices it at
    once (logging the loss as a warning, with no traceback), reconnects by itself,
    and work runs again; work given to a connection while it is down fails with a
    short StoreUnavailableError."""
    pool = ConnectionPool(reactor, pg_dsn, 2)
    await pool.start()
    try:
        assert await pool.run(_select_one) == 1
        with CapturedLogs() as logged:
            assert _terminate_others(pg_dsn) == 2
            await _until(lambda: "re-established" in logged.formatted()
                         and logged.formatted().count("re-established") >= 2)
        text = logged.formatted()
        assert text.count("database connection lost") == 2, text
        lost = [ln for ln in text.splitlines() if "database connection lost" in ln]
        assert len(lost) == 2 and all("(" in ln and "()" not in ln for ln in lost), text
        assert logged.failures() == [], text
        assert await pool.run(_select_one) == 1
    finally:
        await pool.stop()


def test_failure_reasons_are_one_short_line():
    """What the store reports for a lost connection: one line, the cause first, also
    when txpostgres wraps it in RollbackFailed or reports ConnectionDead."""
    lost = Failure(psycopg2.OperationalError(
        "server closed the connection unexpectedly\n\tThis probably means the server "
        "terminated abnormally\n"))
    assert reason(lost) == "server closed the connection unexpectedly"
    wrapped = Failure(txpostgres.RollbackFailed(None, lost))
    assert reason(wrapped) == "server closed the connection unexpectedly"
    assert is_dead(wrapped)
    dead = unavailable(Failure(reconnection.ConnectionDead()))
    assert dead.check(StoreUnavailableError)
    assert str(dead.value) == ("database connection lost: the database is unreachable; "
                               "reconnecting")
    statement = Failure(psycopg2.errors.UniqueViolation("duplicate key"))
    assert unavailable(statement) is statement  # a failed statement is not a lost connection


@pytest_twisted.ensureDeferred
async def test_stores_with_different_lock_slots_refuse_to_share_a_database(pg_dsn):
    """A store with another slot count than one already running on the database
    does not start (its job locks would not exclude the other's); one with the
    same count does, and once the other is gone, any count starts."""
    first = PostgresJobStore(pg_dsn, reactor, lock_slots=64, connections=2)
    await first.start()
    try:
        other = PostgresJobStore(pg_dsn, reactor, lock_slots=8, connections=2)
        with pytest.raises(LockSlotsMismatchError) as e:
            await other.start()
        assert "--lock-slots 64, this one with 8" in str(e.value)
        same = PostgresJobStore(pg_dsn, reactor, lock_slots=64, connections=2)
        await same.start()
        await same.stop()
    finally:
        await first.stop()
    # the server drops a closed session's locks when its backend has exited
    await _until(lambda: not _slot_locks(pg_dsn))
    later = PostgresJobStore(pg_dsn, reactor, lock_slots=8, connections=2)
    await later.start()
    await later.stop()


@pytest_twisted.ensureDeferred
async def test_a_reconnected_connection_is_not_used_under_other_lock_slots(pg_dsn):
    """A connection lost and re-established while a process with another slot
    count has taken the database is not used (work fails as unavailable) until
    that process is gone."""
    store = PostgresJobStore(pg_dsn, reactor, lock_slots=64, connections=1)
    await store.start()
    try:
        with CapturedLogs() as logged:
            _terminate_others(pg_dsn)
            intruder = psycopg2.connect(pg_dsn)
            try:
                with intruder.cursor() as cur:  # what a store with 8 slots holds
                    cur.execute("SELECT pg_advisory_lock_shared(%s, 8)", (LOCK_SLOTS_CLASS,))
                await _until(lambda: "not usable" in logged.formatted())
                with pytest.raises(StoreUnavailableError):
                    await store.user_jobs("nobody")
            finally:
                intruder.close()
            await _until(lambda: "re-established" in logged.formatted())
        assert "--lock-slots 8, this one with 64" in logged.formatted()
        assert await store.user_jobs("nobody") == []
    finally:
        await store.stop()
