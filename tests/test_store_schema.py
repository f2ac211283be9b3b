"""The versioned schema on both backends: a new database gets every step, an
older one is upgraded step by step keeping its data (version 2 fills user_tags
from the stored statuses), a newer one is refused, and upgrades are idempotent."""

from __future__ import annotations

import sqlite3

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import reactor

from lbtx.query.conditions import Attr, Condition, Op
from lbtx.server.store import rows, schema
from lbtx.server.store.schema import SchemaError
from lbtx.server.store.sql import POSTGRES, SQLITE, run_sync

from scenario_support import load
from store_support import SCENARIO_FILES, Backend, replayed, statuses, stamped


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "lbtx.sqlite"), reactor)
    return Backend("postgres", request.getfixturevalue("pg_dsn"), reactor)


class _Raw:
    """A plain blocking connection to the backend's database, for setting up."""

    def __init__(self, backend: Backend):
        if backend.name == "sqlite":
            self.conn = sqlite3.connect(backend.target, isolation_level=None)
            self.dialect = SQLITE
        else:
            self.conn = psycopg2.connect(backend.target)
            self.dialect = POSTGRES

    def run(self, work):
        cur = self.conn.cursor()
        if self.dialect is SQLITE:
            cur.execute("BEGIN")
        result = run_sync(cur, work)
        self.conn.commit()
        return result

    def query(self, text, params=()):
        def work():
            return (yield self.dialect.select(text, params))
        return self.run(work())

    def close(self):
        self.conn.close()


def _tagged_records():
    path = next(p for p in SCENARIO_FILES if p.stem.startswith("P09"))
    return replayed(stamped(load(path))).jobs()


@pytest_twisted.ensureDeferred
async def test_new_database_gets_the_current_version(backend):
    """start() on an empty database creates every table at the current version;
    starting again changes nothing."""
    for _ in range(2):
        store = backend.make()
        await store.start()
        await store.stop()
    raw = _Raw(backend)
    try:
        assert raw.query("SELECT version FROM schema_version") == [(schema.CURRENT_VERSION,)]
        assert raw.run(schema.current_version(raw.dialect)) == schema.CURRENT_VERSION
        for table in ("jobs", "events", "acl", "subjobs", "user_tags"):
            assert raw.query(f"SELECT count(*) FROM {table}") == [(0,)]
    finally:
        raw.close()


@pytest_twisted.ensureDeferred
async def test_upgrade_from_version_1_keeps_the_jobs(backend):
    """A database at version 1 holding jobs is upgraded on start: its statuses are
    unchanged and their user tags become rows that indexed conditions use."""
    records = _tagged_records()
    raw = _Raw(backend)
    try:
        assert raw.run(schema.upgrade(raw.dialect, target=1)) == 0
        job_rows = [rows.job_row(r, 0) for r in records]
        raw.run(_insert(raw.dialect, "jobs", rows.JOB_COLUMNS, job_rows))
        assert raw.query("SELECT version FROM schema_version") == [(1,)]
    finally:
        raw.close()
    store = backend.make()
    await store.start()
    try:
        got = [await store.job_status(r.job_id) for r in records]
        assert statuses(got) == statuses(records)
        tags = records[0].status.user_tags
        assert tags
        name, value = next(iter(tags.items()))
        found = await store.query_jobs(((Condition(Attr.USERTAG, Op.EQUAL, value, name=name),),),
                                       limit=None)
        assert [r.job_id for r in found] == [records[0].job_id]
    finally:
        await store.stop()
    raw = _Raw(backend)
    try:
        assert raw.query("SELECT version FROM schema_version") == [(schema.CURRENT_VERSION,)]
        assert sorted(raw.query("SELECT name, value FROM user_tags")) == sorted(tags.items())
    finally:
        raw.close()


def _insert(d, table, columns, values):
    for stmt in d.insert(table, columns, values):
        yield stmt


@pytest_twisted.ensureDeferred
async def test_newer_schema_is_refused(backend):
    """A database written by a newer lbtx is not touched: start fails with SchemaError."""
    store = backend.make()
    await store.start()
    await store.stop()
    raw = _Raw(backend)
    try:
        def bump():
            yield raw.dialect.execute("UPDATE schema_version SET version = 99")
        raw.run(bump())
    finally:
        raw.close()
    store = backend.make()
    with pytest.raises(SchemaError):
        await store.start()
    raw = _Raw(backend)
    try:
        assert raw.query("SELECT version FROM schema_version") == [(99,)]
    finally:
        raw.close()


def test_steps_are_numbered_from_one():
    """Every version from 1 to the current one has its upgrade step."""
    assert sorted(schema.STEPS) == list(range(1, schema.CURRENT_VERSION + 1))
