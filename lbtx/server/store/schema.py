"""The store's versioned SQL schema: one logical schema for both backends, built
and upgraded step by step.

``schema_version`` holds one row with the version of the tables. A new database
runs every step from 1; an older one runs the steps after its version, in one
transaction (PostgreSQL also takes an advisory lock, so that server processes
starting together upgrade once). A database newer than :data:`CURRENT_VERSION`
is refused.

History:

1. ``jobs`` (one row per job: the status as JSON with the machines' bookkeeping,
   and a column with an index for every indexed query attribute of formats.md
   §8.4: owner, state, destination, location, network_server, lastUpdateTime,
   stateEnterTime, parent), ``events`` (the ULM line verbatim and the indexed
   header fields; the duplicate key of §6.6 is unique), ``acl``, ``subjobs``.
   A line is kept as text, or as its bytes in ``line_raw`` when it holds
   undecodable bytes; indexed text columns hold U+FFFD in their place.
2. ``user_tags`` (name, value per job) for user-tag conditions evaluated by the
   database, filled from the stored statuses.
3. Notifications (formats.md §9): ``notif_registrations`` (one row per
   registration, keyed by the notification unique; the registering identity's
   subject key in ``owner_key``; ``all_jobs`` with the indexed ``cond_owner``
   key of an ``owner = X`` condition for candidates among all-jobs
   registrations; ``last_seq`` the messages ever queued, ``acked_seq`` the last
   acknowledged), ``notif_jobs`` (the job list, indexed by job id) and
   ``notif_messages`` (the durable outbox, keyed by unique and seq).
"""

from __future__ import annotations

import json

from lbtx.server.store.interfaces import StoreError
from lbtx.server.store.sql import Dialect, Work

__all__ = ["CURRENT_VERSION", "upgrade", "current_version", "SchemaError"]

#: an arbitrary advisory lock key (PostgreSQL) serialising schema upgrades
SCHEMA_LOCK = 0x4C425400


class SchemaError(StoreError):
    """The database holds a schema this code cannot use."""


_V1 = [
    """CREATE TABLE schema_version (version INTEGER NOT NULL)""",
    """CREATE TABLE jobs (
        jobid {TEXT_C} PRIMARY KEY,
        unique_id {TEXT_C} NOT NULL,
        owner TEXT NOT NULL,
        owner_key TEXT NOT NULL,
        parent_job {TEXT_C},
        state INTEGER NOT NULL,
        destination TEXT,
        location TEXT,
        network_server TEXT,
        last_update_time BIGINT,
        state_enter_time BIGINT,
        nevents INTEGER NOT NULL,
        nchildren INTEGER NOT NULL,
        status TEXT NOT NULL)""",
    "CREATE INDEX jobs_unique ON jobs (unique_id, jobid)",
    "CREATE INDEX jobs_owner ON jobs (owner_key, unique_id)",
    "CREATE INDEX jobs_parent ON jobs (parent_job)",
    "CREATE INDEX jobs_state ON jobs (state)",
    "CREATE INDEX jobs_destination ON jobs (destination)",
    "CREATE INDEX jobs_location ON jobs (location)",
    "CREATE INDEX jobs_network_server ON jobs (network_server)",
    "CREATE INDEX jobs_last_update ON jobs (last_update_time)",
    "CREATE INDEX jobs_state_enter ON jobs (state_enter_time)",
    """CREATE TABLE events (
        jobid {TEXT_C} NOT NULL,
        seq INTEGER NOT NULL,
        type_code INTEGER NOT NULL,
        source INTEGER NOT NULL,
        host TEXT NOT NULL,
        ts_sec BIGINT NOT NULL,
        ts_usec INTEGER NOT NULL,
        level INTEGER NOT NULL,
        seqcode TEXT NOT NULL,
        sender TEXT,
        arrived_sec BIGINT NOT NULL,
        arrived_usec INTEGER NOT NULL,
        generated {BOOL} NOT NULL,
        line TEXT,
        line_raw {BLOB},
        PRIMARY KEY (jobid, seq))""",
    """CREATE UNIQUE INDEX events_dedupe
        ON events (jobid, ts_sec, ts_usec, type_code, source, level, host, seqcode)""",
    "CREATE INDEX events_arrived ON events (arrived_sec)",
    """CREATE TABLE acl (
        jobid {TEXT_C} NOT NULL,
        pos INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        user_id_type TEXT NOT NULL,
        permission TEXT NOT NULL,
        permission_type TEXT NOT NULL,
        PRIMARY KEY (jobid, pos))""",
    """CREATE TABLE subjobs (
        parent {TEXT_C} NOT NULL,
        child {TEXT_C} NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY (parent, child))""",
    "CREATE INDEX subjobs_order ON subjobs (parent, pos)",
]

_V2 = [
    """CREATE TABLE user_tags (
        jobid {TEXT_C} NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (jobid, name))""",
    "CREATE INDEX user_tags_value ON user_tags (name, value)",
]

_V3 = [
    """CREATE TABLE notif_registrations (
        unique_id {TEXT_C} PRIMARY KEY,
        notif_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        owner_key TEXT NOT NULL,
        destination TEXT,
        expires BIGINT NOT NULL,
        conditions TEXT NOT NULL,
        flags INTEGER NOT NULL,
        all_jobs {BOOL} NOT NULL,
        cond_owner TEXT,
        last_seq BIGINT NOT NULL,
        acked_seq BIGINT NOT NULL)""",
    "CREATE INDEX notif_regs_all ON notif_registrations (all_jobs, cond_owner)",
    "CREATE INDEX notif_regs_owner ON notif_registrations (owner_key)",
    "CREATE INDEX notif_regs_expires ON notif_registrations (expires)",
    """CREATE INDEX notif_regs_pending ON notif_registrations (unique_id)
        WHERE last_seq > acked_seq""",
    """CREATE TABLE notif_jobs (
        jobid {TEXT_C} NOT NULL,
        unique_id {TEXT_C} NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY (jobid, unique_id))""",
    "CREATE INDEX notif_jobs_reg ON notif_jobs (unique_id)",
    """CREATE TABLE notif_messages (
        unique_id {TEXT_C} NOT NULL,
        seq BIGINT NOT NULL,
        jobid {TEXT_C} NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (unique_id, seq))""",
]

_V4 = [
    """CREATE TABLE zombies (
        jobid {TEXT_C} PRIMARY KEY,
        purged_sec BIGINT NOT NULL)""",
    """CREATE TABLE server_state (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
]

_BACKFILL_PAGE = 1000


def _step1(d: Dialect) -> Work:
    for text in _V1:
        yield d.execute(d.ddl(text))
    yield d.execute("INSERT INTO schema_version (version) VALUES (0)")


def _step2(d: Dialect) -> Work:
    for text in _V2:
        yield d.execute(d.ddl(text))
    last = ""
    while True:
        page = yield d.select("SELECT jobid, status FROM jobs WHERE jobid > ? ORDER BY jobid "
                              f"LIMIT {_BACKFILL_PAGE}", (last,))
        if not page:
            break
        tags = []
        for jobid, status in page:
            for name, value in (json.loads(status).get("user_tags") or {}).items():
                tags.append((jobid, name, "" if value is None else str(value)))
        yield from d.insert("user_tags", ("jobid", "name", "value"), tags)
        last = page[-1][0]


def _step3(d: Dialect) -> Work:
    for text in _V3:
        yield d.execute(d.ddl(text))


def _step4(d: Dialect) -> Work:
    for text in _V4:
        yield d.execute(d.ddl(text))


#: version -> the step that builds it from the version before
STEPS = {1: _step1, 2: _step2, 3: _step3, 4: _step4}
CURRENT_VERSION = max(STEPS)


def current_version(d: Dialect) -> Work:
    """The version of the database's schema (0 for an empty database)."""
    exists = yield d.schema_exists()
    if not exists:
        return 0
    rows = yield d.select("SELECT version FROM schema_version")
    return rows[0][0] if rows else 0


def upgrade(d: Dialect, target: int = CURRENT_VERSION) -> Work:
    """Bring the schema to ``target``, step by step; return the version found.

    Run it inside one transaction. Fails with :class:`SchemaError` when the
    database is newer than ``target``.
    """
    if d.name == "postgres":
        yield d.select("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
    found = yield from current_version(d)
    if found > target:
        raise SchemaError(f"the database has schema version {found}; this lbtx knows "
                          f"versions up to {target}")
    for version in range(found + 1, target + 1):
        yield from STEPS[version](d)
        yield d.execute("UPDATE schema_version SET version = ?", (version,))
    return found
