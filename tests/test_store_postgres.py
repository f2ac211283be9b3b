"""What only the PostgreSQL store does: several store instances (like several
server processes, each with its own connections) sharing one database under the
advisory job locks, and reconnection after the database restarts."""

from __future__ import annotations

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from lbtx.acceptance import Delivery
from lbtx.server.store.interfaces import StoreUnavailableError
from lbtx.server.store.postgres import LOCK_CLASS, PostgresJobStore, lock_slot

from store_support import parse, replayed, statuses, workload
from test_store_contract import new_id, regjob, running


async def _started(dsn, **kw):
    store = PostgresJobStore(dsn, reactor, **kw)
    await store.start()
    return store


async def _feed(store, lines, size):
    """Deliver ``lines`` in batches of ``size``, one batch after the other."""
    outcomes = []
    for i in range(0, len(lines), size):
        chunk = lines[i:i + size]
        outcomes += await store.accept_events([parse(ln) for ln in chunk], chunk)
    return outcomes


async def _statuses(store, records):
    return statuses([await store.job_status(r.job_id) for r in records])


@pytest_twisted.ensureDeferred
async def test_two_stores_fed_the_same_events_concurrently(pg_dsn):
    """Two store instances, each delivered every event of the same jobs (in
    different batch sizes, at the same time), store each event once and end with
    the statuses of lbtx replay: events of a job are applied in order under its
    lock, and the one that comes second finds the duplicates."""
    lines = [ln for family in workload(2) for ln in family]
    want = replayed(lines)
    a = await _started(pg_dsn, lock_slots=8, connections=2)
    b = await _started(pg_dsn, lock_slots=8, connections=2)
    try:
        out_a, out_b = await defer.gatherResults([
            defer.ensureDeferred(_feed(a, lines, 7)), defer.ensureDeferred(_feed(b, lines, 5))])
        stored = [x == Delivery.STORED or y == Delivery.STORED
                  for x, y in zip((o.delivery for o in out_a), (o.delivery for o in out_b))]
        both = [x.delivery == y.delivery == Delivery.STORED for x, y in zip(out_a, out_b)]
        assert not any(both)
        assert sum(stored) == want.deliveries[Delivery.STORED]
        assert await _statuses(a, want.jobs()) == statuses(want.jobs())
        assert [(await b.job_status(r.job_id)).nevents for r in want.jobs()] == \
            [r.nevents for r in want.jobs()]
    finally:
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_two_stores_share_lock_slots(pg_dsn):
    """Jobs spread over two instances with only two lock slots (so unrelated jobs
    share locks, and subjobs' events on one instance update parents locked by the
    other's batches) end with the statuses of one store."""
    families = workload(2)
    want = replayed([ln for family in families for ln in family])
    a = await _started(pg_dsn, lock_slots=2)
    b = await _started(pg_dsn, lock_slots=2)
    try:
        halves = ([ln for f in families[0::2] for ln in f], [ln for f in families[1::2] for ln in f])
        await defer.gatherResults([defer.ensureDeferred(_feed(a, halves[0], 9)),
                                   defer.ensureDeferred(_feed(b, halves[1], 4))])
        assert await _statuses(b, want.jobs()) == statuses(want.jobs())
    finally:
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_a_held_job_lock_makes_intake_wait(pg_dsn):
    """accept_events waits for the advisory lock of its job: while another session
    holds it, nothing is answered; once released, the event is stored."""
    store = await _started(pg_dsn, lock_slots=16)
    job = new_id()
    other = psycopg2.connect(pg_dsn)
    try:
        await store.accept_events([regjob(job)])
        cur = other.cursor()
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, lock_slot(job, 16)))
        pending = store.accept_events([running(job)])
        await task.deferLater(reactor, 0.3, lambda: None)
        assert not pending.called
        other.commit()
        outcomes = await pending
        assert outcomes[0].delivery == Delivery.STORED
    finally:
        other.close()
        await store.stop()


def test_lock_slots_are_stable_and_spread():
    """A job's slot is the same in every process and jobs spread over the slots."""
    from lbtx.jobid import JobId
    job = JobId.parse("https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw")
    assert lock_slot(job, 1024) == lock_slot(JobId.parse(str(job)), 1024)
    slots = {lock_slot(new_id(), 64) for _ in range(2000)}
    assert len(slots) == 64
    with pytest.raises(ValueError):
        PostgresJobStore("dbname=x", reactor, lock_slots=0)


@pytest_twisted.ensureDeferred
async def test_reconnects_after_database_restart(pg_cluster, pg_dsn):
    """When PostgreSQL restarts under a running store, work fails with
    StoreUnavailableError (never hangs) until the store has reconnected by itself;
    then intake resumes and nothing committed is lost."""
    if not hasattr(pg_cluster, "restart"):
        pytest.skip("the tests do not run this PostgreSQL server")
    store = await _started(pg_dsn, connections=2)
    try:
        job = new_id()
        await store.accept_events([regjob(job)])
        pg_cluster.restart()
        outcomes = None
        failures = 0
        for _ in range(100):
            try:
                outcomes = await store.accept_events([running(job)])
                break
            except StoreUnavailableError:
                failures += 1
                await task.deferLater(reactor, 0.1, lambda: None)
        assert outcomes is not None and outcomes[0].delivery == Delivery.STORED
        rec = await store.job_status(job)
        assert rec.nevents == 2
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_start_fails_cleanly_without_a_database():
    """A store whose database cannot be reached fails to start with
    StoreUnavailableError."""
    store = PostgresJobStore("host=127.0.0.1 port=1 dbname=none connect_timeout=2", reactor)
    with pytest.raises(StoreUnavailableError):
        await store.start()
