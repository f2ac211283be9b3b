"""Reads over the PostgreSQL pool (lbtx/server/store/pgconnection.py) against a
real server: a one-statement read runs alone in autocommit, a longer read in a
REPEATABLE READ, READ ONLY transaction begun with its first statement; failures
in either leave the connection usable; a one-statement read that asks for a
second statement is refused."""

from __future__ import annotations

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import reactor

from lbtx.server.store.pgconnection import READ_ONLY_BEGIN, ConnectionPool, _ReadState
from lbtx.server.store.sql import POSTGRES

_SETTINGS = ("SELECT current_setting('transaction_read_only'), "
             "current_setting('transaction_isolation'), txid_current_if_assigned()")


def _settings():
    rows = yield POSTGRES.select(_SETTINGS)
    return rows[0]


def _settings_twice():
    """The settings of the first statement, and the backend's transaction start of
    both (equal within one transaction)."""
    first = yield POSTGRES.select(_SETTINGS + ", now()")
    second = yield POSTGRES.select("SELECT now()")
    return first[0][:3], first[0][3] == second[0][0]


def _two_statements():
    yield POSTGRES.select("SELECT 1")
    yield POSTGRES.select("SELECT 2")
    return "done"


def _write():
    yield POSTGRES.execute("CREATE TABLE t (x INTEGER)")


def _bad_then_good():
    yield POSTGRES.select("SELECT no_such_column FROM pg_class")


def _select_one():
    rows = yield POSTGRES.select("SELECT 1")
    return rows[0][0]


@pytest_twisted.async_yield_fixture
async def pool(pg_dsn):
    p = ConnectionPool(reactor, pg_dsn, 1)  # one connection: every read reuses it
    await p.start()
    yield p
    await p.stop()


def test_read_state_texts():
    """The first statement of a transaction read carries the BEGIN; the others and
    the statement of a one-statement read go as they are."""
    tx = _ReadState(one_statement=False)
    assert not tx.begun
    assert tx.text("SELECT 1") == f"{READ_ONLY_BEGIN}; SELECT 1"
    assert tx.begun
    assert tx.text("SELECT 2") == "SELECT 2"
    one = _ReadState(one_statement=True)
    assert one.text("SELECT 1") == "SELECT 1" and not one.begun
    with pytest.raises(ValueError):
        one.text("SELECT 2")


@pytest_twisted.ensureDeferred
async def test_one_statement_read_runs_in_autocommit(pool):
    read_only, isolation, _ = await pool.run(_settings, read_only=True, one_statement=True)
    assert (read_only, isolation) == ("off", "read committed")  # no transaction of ours


@pytest_twisted.ensureDeferred
async def test_longer_read_runs_in_one_read_only_snapshot(pool):
    (read_only, isolation, xid), same = await pool.run(_settings_twice, read_only=True)
    assert (read_only, isolation, xid) == ("on", "repeatable read", None)
    assert same  # both statements in one transaction
    # committed: the next read is not inside it
    read_only, isolation, _ = await pool.run(_settings, read_only=True, one_statement=True)
    assert (read_only, isolation) == ("off", "read committed")


@pytest_twisted.ensureDeferred
async def test_write_in_a_read_is_refused_and_rolled_back(pool):
    def read_then_write():
        yield POSTGRES.select("SELECT 1")
        yield from _write()
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        await pool.run(read_then_write, read_only=True)
    assert await pool.run(_select_one) == 1  # not "current transaction is aborted"


@pytest_twisted.ensureDeferred
async def test_failed_first_statement_rolls_back(pool):
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        await pool.run(_bad_then_good, read_only=True)
    read_only, isolation, _ = await pool.run(_settings, read_only=True, one_statement=True)
    assert (read_only, isolation) == ("off", "read committed")
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        await pool.run(_bad_then_good, read_only=True, one_statement=True)
    assert await pool.run(_select_one, read_only=True) == 1


@pytest_twisted.ensureDeferred
async def test_one_statement_read_asking_for_more_is_refused(pool):
    with pytest.raises(ValueError):
        await pool.run(_two_statements, read_only=True, one_statement=True)
    assert await pool.run(_two_statements, read_only=True) == "done"
    with pytest.raises(ValueError):
        pool.run(_select_one, one_statement=True)  # only reads run that way


@pytest_twisted.ensureDeferred
async def test_read_without_statements(pool):
    def nothing():
        return "empty"
        yield  # a generator that asks for nothing
    assert await pool.run(nothing, read_only=True) == "empty"
    assert await pool.run(nothing, read_only=True, one_statement=True) == "empty"
    assert await pool.run(_select_one) == 1
