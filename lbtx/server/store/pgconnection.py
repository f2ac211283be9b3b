"""Connections to PostgreSQL for the store: a small pool of txpostgres connections
that reconnect by themselves, and the driver that runs store work on them.

Each connection has a :class:`ReconnectingDetector` (txpostgres's hook for dead
connections) whose reconnection runs on the store's clock with a capped backoff
and stops when the pool is closed. While a connection is down, work given to it
fails at once with :class:`~lbtx.server.store.interfaces.StoreUnavailableError`;
the pool prefers connections that are up.

Every connection attempt (at start and when reconnecting) has a deadline
(libpq ignores ``connect_timeout`` for asynchronous connections): a server that
accepts the TCP connection and then says nothing cannot hang the store. A
connection that the server closes while idle (a restart, an administrator's
``pg_terminate_backend``) is noticed at once and reconnected, without the
reactor's "Unhandled Error" tracebacks; a transaction whose connection is gone
is not rolled back on it (the server already did).

Reads cost as few round trips as they can: a read made of one statement runs
alone in autocommit (the statement is its own snapshot: one round trip), and a
longer read sends ``BEGIN ... READ ONLY`` in the same message as its first
statement (then one round trip per statement and the ``COMMIT``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import psycopg2
from psycopg2 import extensions
from twisted.internet import error as net_error
from twisted.internet.defer import (Deferred, TimeoutError, fail, gatherResults, inlineCallbacks,
                                    maybeDeferred)
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres import reconnection, txpostgres

from lbtx.server.store.interfaces import StoreUnavailableError
from lbtx.server.store.sql import Work

__all__ = ["ConnectionPool", "PoolConnection", "ReconnectingDetector", "DatabaseConnectionLost",
           "connect", "drive", "is_dead", "reason", "unavailable", "CONNECT_TIMEOUT",
           "READ_ONLY_BEGIN"]

#: reconnection delays in seconds: at once, then growing to the cap
FIRST_RETRY = 0.2
MAX_RETRY = 5.0
#: seconds one connection attempt may take
CONNECT_TIMEOUT = 10.0
#: how a read of several statements starts (sent with its first statement)
READ_ONLY_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def is_dead(f: Failure) -> bool:
    """Whether a failure means the connection is gone (not a failed statement)."""
    if f.check(reconnection.ConnectionDead, txpostgres.RollbackFailed, psycopg2.InterfaceError,
               net_error.ConnectionDone, net_error.ConnectionLost):
        return True
    if f.check(extensions.TransactionRollbackError, extensions.QueryCanceledError):
        return False
    return bool(f.check(psycopg2.OperationalError))


def reason(f: Failure) -> str:
    """What went wrong, in one short line (psycopg2's messages run over several,
    txpostgres's RollbackFailed carries the failure that caused it)."""
    if f.check(txpostgres.RollbackFailed):
        f = f.value.originalFailure
    if f.check(reconnection.ConnectionDead):
        return "the database is unreachable; reconnecting"
    for line in f.getErrorMessage().splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return f.type.__name__ if f.type else "connection lost"


def unavailable(f: Failure) -> Failure:
    """Turn a dead-connection failure into :class:`StoreUnavailableError`."""
    if f.check(StoreUnavailableError) or not is_dead(f):
        return f
    return Failure(StoreUnavailableError(f"database connection lost: {reason(f)}"))


class DatabaseConnectionLost(net_error.ConnectionLost):
    """The server closed a connection that had no work running (its message)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "the database closed the connection"


class PoolConnection(txpostgres.Connection):
    """A txpostgres connection that reports a connection closed by the server
    while idle as lost (to its detector) instead of raising into the reactor, and
    does not try to roll back on a connection that is gone."""

    # A broken libpq connection may still count as open to psycopg2 while its
    # socket is gone (fileno -1): re-registering it with the reactor then raises
    # ValueError. Either way the connection is lost.
    def doRead(self):
        try:
            return super().doRead()
        except (psycopg2.Error, ValueError) as e:
            return DatabaseConnectionLost(reason(Failure(e)))

    def doWrite(self):
        try:
            return super().doWrite()
        except (psycopg2.Error, ValueError) as e:
            return DatabaseConnectionLost(reason(Failure(e)))

    def cursorFinished(self, cursor):
        try:
            super().cursorFinished(cursor)
        except ValueError:
            pass  # the socket is gone: the next use of the connection finds out

    def _runInteraction(self, interaction, *args, **kwargs):
        cursor = self.cursor()
        d = cursor.execute("begin")
        d.addCallback(interaction, *args, **kwargs)
        d.addCallback(lambda value: cursor.execute("commit").addCallback(lambda _: value))
        d.addErrback(self._roll_back, cursor)
        return d

    def runRead(self, work: Work, *, one_statement: bool = False) -> Deferred:
        """Run the read ``work`` (see :meth:`ConnectionPool.run`) on this connection,
        after any work queued on it; fire with its result."""
        return self._doit(self._runRead, work, one_statement)

    def _runRead(self, work: Work, one_statement: bool) -> Deferred:
        cursor = self.cursor()
        state = _ReadState(one_statement)
        d = drive(cursor, work, state)

        def done(value):
            if not state.begun:
                return value
            return cursor.execute("commit").addCallback(lambda _: value)

        def failed(f: Failure):
            return self._roll_back(f, cursor) if state.begun else f
        return d.addCallback(done).addErrback(failed)

    def _roll_back(self, f: Failure, cursor) -> Deferred:
        if self.pollable() is None or self.pollable().closed:
            return fail(f)  # the server rolled back when the connection went
        d = maybeDeferred(cursor.execute, "rollback")
        d.addCallbacks(lambda _: f, lambda _: Failure(txpostgres.RollbackFailed(self, f)))
        return d


def connect(conn: PoolConnection, dsn: str, clock, timeout: float = CONNECT_TIMEOUT
            ) -> Deferred:
    """``conn.connect(dsn)`` that gives up after ``timeout`` seconds: it closes the
    half-open connection and fails with ``defer.TimeoutError``."""
    d = conn.connect(dsn)
    if d.called:
        return d
    timer = clock.callLater(timeout, _close_quietly, conn)

    def done(value):
        if timer.active():
            timer.cancel()
        elif isinstance(value, Failure):
            return Failure(TimeoutError(f"no answer from the database within {timeout:g} s"))
        return value
    return d.addBoth(done)


def _delays() -> Iterator[float]:
    yield 0.0
    delay = FIRST_RETRY
    while True:
        yield delay
        delay = min(delay * 2, MAX_RETRY)


class ReconnectingDetector(reconnection.DeadConnectionDetector):
    """txpostgres's dead-connection detector, reconnecting on ``clock`` until it
    succeeds or :meth:`stop` is called."""

    log = Logger()

    def __init__(self, clock, name: str, *, connect_timeout: float = CONNECT_TIMEOUT,
                 open_connection: Callable[[Any], Deferred] | None = None):
        super().__init__(deathChecker=is_dead, reactor=clock)
        self._name = name
        self._connect_timeout = connect_timeout
        self._open = open_connection
        self._stopped = False
        self._delayed = None
        self._delay_iter: Iterator[float] = _delays()

    def startReconnecting(self, f: Failure) -> None:
        if self._stopped:
            return  # closed on purpose
        self.log.warn("{name}: database connection lost ({error}); reconnecting",
                      name=self._name, error=reason(f))
        self._delay_iter = _delays()
        self._schedule()

    def _schedule(self) -> None:
        if self._stopped:
            return
        self._delayed = self.reactor.callLater(next(self._delay_iter), self._attempt)

    def _attempt(self) -> None:
        self._delayed = None
        if self._stopped:
            return
        d = maybeDeferred(self.reconnect)
        d.addCallbacks(self._recovered, self._failed)

    def reconnect(self) -> Deferred:
        """One attempt, within the connect deadline (and the pool's set-up of a
        new connection, if it has one)."""
        _close_quietly(self.reconnectable)
        if self._open is not None:
            return self._open(self.reconnectable)
        return connect(self.reconnectable, *self._connargs, clock=self.reactor,
                       timeout=self._connect_timeout)

    def _recovered(self, _) -> None:
        if self._stopped:
            return
        self.log.info("{name}: database connection re-established", name=self._name)
        self.connectionRecovered()

    def _failed(self, f: Failure) -> None:
        if is_dead(f) or f.check(TimeoutError):
            self.log.debug("{name}: reconnection failed: {error}", name=self._name,
                           error=reason(f))
        else:  # connected, but the connection's set-up refused it
            self.log.warn("{name}: reconnected connection not usable: {error}",
                          name=self._name, error=reason(f))
        self._schedule()

    def stop(self) -> None:
        self._stopped = True
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()
        self._delayed = None


class _ReadState:
    """How a read runs: alone in autocommit (``one_statement``), or in a read-only
    transaction begun with its first statement (``begun`` once sent)."""

    __slots__ = ("one_statement", "begun", "statements")

    def __init__(self, one_statement: bool):
        self.one_statement = one_statement
        self.begun = False
        self.statements = 0

    def text(self, text: str) -> str:
        """The text to send for the next statement of the read."""
        self.statements += 1
        if self.one_statement:
            if self.statements > 1:
                raise ValueError("a one-statement read asked for a second statement")
            return text
        if self.statements == 1:
            self.begun = True  # from here on, a failure must roll back
            return f"{READ_ONLY_BEGIN}; {text}"
        return text


@inlineCallbacks
def drive(cursor, work: Work, read: _ReadState | None = None):
    """Run ``work`` over a txpostgres cursor; fire with its result. With ``read``,
    the statements' texts are as :class:`_ReadState` makes them."""
    rows = None
    while True:
        try:
            stmt = work.send(rows)
        except StopIteration as stop:
            return stop.value
        if stmt.many:
            raise ValueError("PostgreSQL work must not use executemany statements")
        text = stmt.text if read is None else read.text(stmt.text)
        yield cursor.execute(text, tuple(stmt.params))
        rows = cursor.fetchall() if stmt.returns else None


class ConnectionPool:
    """``size`` txpostgres connections to ``dsn``; each piece of work runs alone on one.
    Each connection attempt gives up after ``connect_timeout`` seconds. The work
    made by ``session_setup()``, if given, runs on every new connection (at start
    and after each reconnection, outside any transaction) before the connection
    is used; if it fails, the connection is not used."""

    log = Logger()

    def __init__(self, reactor, dsn: str, size: int, *, clock=None, name: str = "postgres",
                 connect_timeout: float = CONNECT_TIMEOUT,
                 session_setup: Callable[[], Work] | None = None):
        self._reactor = reactor
        self._dsn = dsn
        self._clock = clock or reactor
        self._connect_timeout = connect_timeout
        self._session_setup = session_setup
        self._detectors = [ReconnectingDetector(self._clock, f"{name}[{i}]",
                                                connect_timeout=connect_timeout,
                                                open_connection=self._open)
                           for i in range(size)]
        self._conns = [PoolConnection(reactor=reactor, detector=det) for det in self._detectors]
        self._idle: list = []
        self._waiting: list[Deferred] = []
        self._busy = 0
        self._drained: list[Deferred] = []
        self.running = False

    def _open(self, conn) -> Deferred:
        """Connect ``conn`` and run the session set-up on it."""
        d = connect(conn, self._dsn, self._clock, self._connect_timeout)
        if self._session_setup is None:
            return d

        def set_up(_):
            return drive(conn.cursor(), self._session_setup())

        def refused(f: Failure) -> Failure:
            _close_quietly(conn)
            return f
        return d.addCallback(set_up).addErrback(refused)

    def start(self) -> Deferred:
        d = gatherResults([self._open(c) for c in self._conns], consumeErrors=True)

        def connected(_):
            self._idle = list(self._conns)
            self.running = True

        def failed(f):
            for c in self._conns:
                _close_quietly(c)
            f = f.value.subFailure if hasattr(f.value, "subFailure") else f
            if not (is_dead(f) or f.check(TimeoutError)):
                return f  # connected, but the session set-up refused
            return Failure(StoreUnavailableError(f"cannot connect to the database: "
                                                 f"{reason(f)}"))
        return d.addCallbacks(connected, failed)

    def _take(self):
        for i, c in enumerate(self._idle):
            if not c.detector.connectionIsDead:
                return self._idle.pop(i)
        return self._idle.pop(0)

    def _checkout(self) -> Deferred:
        if self._idle:
            self._busy += 1
            return _succeed(self._take())
        d = Deferred()
        self._waiting.append(d)
        return d

    def _checkin(self, conn) -> None:
        if self._waiting:
            self._waiting.pop(0).callback(conn)
            return
        self._busy -= 1
        self._idle.append(conn)
        if not self._busy:
            drained, self._drained = self._drained, []
            for d in drained:
                d.callback(None)

    def run(self, work_factory: Callable[[], Work], *, read_only: bool = False,
            one_statement: bool = False) -> Deferred:
        """Run the work made by ``work_factory()`` in one transaction on a free
        connection; fire with its result. Dead connections fail with
        :class:`StoreUnavailableError`.

        ``read_only`` work runs in a ``REPEATABLE READ, READ ONLY`` transaction
        whose ``BEGIN`` goes with its first statement; ``one_statement`` read-only
        work (a single statement, which is its own snapshot) runs in autocommit,
        without ``BEGIN`` and ``COMMIT``; a second statement fails it with
        ``ValueError``."""
        if one_statement and not read_only:
            raise ValueError("only read-only work runs as one statement")
        if not self.running:
            return fail(StoreUnavailableError("the store is stopped"))
        d = self._checkout()

        def on_conn(conn):
            if read_only:
                result = maybeDeferred(lambda: conn.runRead(work_factory(),
                                                            one_statement=one_statement))
            else:
                result = conn.runInteraction(lambda cursor: drive(cursor, work_factory()))

            def release(value: Any) -> Any:
                self._checkin(conn)
                return value
            return result.addBoth(release)
        d.addCallback(on_conn)
        d.addErrback(unavailable)
        return d

    def stop(self) -> Deferred:
        """Wait for running work, then close every connection and stop reconnecting."""
        self.running = False
        if self._busy:
            d = Deferred()
            self._drained.append(d)
        else:
            d = _succeed(None)

        def close(_):
            for det in self._detectors:
                det.stop()
            for c in self._conns:
                _close_quietly(c)
        return d.addCallback(close)


def _succeed(value) -> Deferred:
    d = Deferred()
    d.callback(value)
    return d


def _close_quietly(conn) -> None:
    try:
        if conn.pollable() is not None:
            conn.close()
    except Exception:  # closing a broken connection may fail; it is gone either way
        pass
