"""The batch acceptance work (lbtx.server.store.batch) on an in-memory SQLite
database: re-runs when acceptance asks for rows the prefetch missed, and the
relock rule that keeps every write under a held job lock."""

from __future__ import annotations

import sqlite3

import pytest

from lbtx.acceptance import Delivery, MemoryJobTable, accept
from lbtx.schema import ENUMS
from lbtx.server.store import batch, reads, schema
from lbtx.server.store.postgres import lock_slot
from lbtx.server.store.sql import SQLITE, run_sync
from lbtx.server.store.txtable import NeedData, Snapshot, TransactionTable
from lbtx.timeval import Timeval

from test_store_contract import new_id, regjob, running

NOW = Timeval(1_800_000_000, 0)
DAG = ENUMS["RegJobJobtype"].from_text("DAG")


@pytest.fixture
def cur():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    cursor = conn.cursor()
    run_sync(cursor, schema.upgrade(SQLITE))
    yield cursor
    conn.close()


def _slot(job_id):
    return lock_slot(job_id, 1 << 20)


def test_relock_when_a_parent_appears_after_the_pre_read(cur):
    """A job that did not exist when the batch read its parents, and was created
    (as a subjob) before the locks were held, makes the batch write a parent it
    did not lock: the work raises Relock naming it, and the next attempt, with it
    locked, stores the event."""
    parent = new_id()
    child = parent.subjobs("s", 2)[0]
    reg = regjob(parent, jobtype=DAG, nsubjobs=2, seed="s")
    locked_sets = []

    def lock(job_ids):
        locked_sets.append(set(job_ids))
        if len(locked_sets) == 1:
            # another process registers the DAG between our pre-read and our locks
            yield from batch.accept_batch(SQLITE, [reg], None, NOW)

    with pytest.raises(batch.Relock) as info:
        run_sync(cur, batch.accept_batch(SQLITE, [running(child)], None, NOW, lock=lock,
                                         locked=set(), slot=_slot))
    assert parent in info.value.job_ids
    assert locked_sets[0] == {child}
    outcomes = run_sync(cur, batch.accept_batch(SQLITE, [running(child)], None, NOW, lock=lock,
                                                locked=info.value.job_ids, slot=_slot))
    assert outcomes[0].delivery == Delivery.STORED
    assert {child, parent} <= locked_sets[1]


def test_a_prefetch_miss_reruns_the_batch_exactly(cur):
    """Registering a DAG again whose subjobs exist makes acceptance read the
    subjobs' records, which the prefetch only checked for existence: the batch is
    run again with them and ends as the in-memory table does."""
    parent = new_id()
    reg = regjob(parent, jobtype=DAG, nsubjobs=3, seed="s")
    again = regjob(parent, jobtype=DAG, nsubjobs=3, seed="s", t=Timeval(NOW.sec, 7))
    events = [reg, running(parent.subjobs("s", 3)[1]), again]
    runs = []
    original = batch.fetch

    def counting(d, snap, need):
        runs.append(str(need))
        return (yield from original(d, snap, need))

    batch.fetch = counting
    try:
        run_sync(cur, batch.accept_batch(SQLITE, events[:2], None, NOW))
        runs.clear()
        outcomes = run_sync(cur, batch.accept_batch(SQLITE, events[2:], None, NOW))
    finally:
        batch.fetch = original
    assert len(runs) == 2  # the prefetch, then the subjobs' records after NeedData
    table = MemoryJobTable()
    want = [accept(table, ev) for ev in events]
    assert [o.delivery for o in outcomes] == [o.delivery for o in want[2:]]
    for job_id, rec in table.jobs.items():
        got = run_sync(cur, reads.job_record(SQLITE, job_id))
        assert got.status == rec.status and list(got.children) == list(rec.children)


def test_table_raises_need_data_without_a_loader():
    """Asked for a job the snapshot does not hold, the transaction table raises
    NeedData naming it, instead of guessing."""
    job = new_id()
    table = TransactionTable(Snapshot())
    with pytest.raises(NeedData) as info:
        table.get(job)
    assert info.value.records == {job}
    snap = Snapshot()
    snap.mark_absent(job)
    assert TransactionTable(snap).get(job) is None
    assert TransactionTable(snap).is_duplicate(job, regjob(job).dedupe_key()) is False
