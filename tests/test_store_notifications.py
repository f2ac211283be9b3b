"""The notification side of the job stores (INotificationStore, formats.md §9),
run on SQLite and on PostgreSQL: registrations, matching inside accept_events
(job lists, all-jobs with an owner condition, state conditions, terminal_states,
expiry, read access), the outbox (gap-free seqs, acknowledge, pending, purge),
rollback with the events, concurrency of two PostgreSQL stores, and the upgrade
of a version 2 database."""

from __future__ import annotations

import sqlite3

import psycopg2
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from zope.interface.verify import verifyObject

from lbtx.events import make_event
from lbtx.query.conditions import Attr, Condition, Op, QueryError
from lbtx.schema import ENUMS, JobState, Source
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify.model import Flags, Registration
from lbtx.server.store import batch, notify_sql, schema
from lbtx.server.store.interfaces import (DuplicateRegistration, INotificationStore,
                                          UnknownRegistration)
from lbtx.server.store.sql import POSTGRES, SQLITE, run_sync
from lbtx.timeval import Timeval

from store_support import Backend
from test_store_contract import ALICE, BOB, SEQ, T0, new_id, regjob, running

NOW = T0.sec + 1000
LATER = NOW + 3600


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "lbtx.sqlite"), reactor)
    return Backend("postgres", request.getfixturevalue("pg_dsn"), reactor)


@pytest_twisted.async_yield_fixture
async def store(backend):
    clock = task.Clock()
    clock.advance(NOW)
    s = backend.make(clock=clock)
    await s.start()
    yield s
    await s.stop()


_counter = iter(range(10**6))


def notif_id() -> str:
    return f"https://lb.example.org:9000/NOTIF:n{next(_counter)}x{new_id().unique[:8]}"


def reg(owner=ALICE, *, conditions=(), job_ids=(), flags=Flags.NONE, expires=LATER,
        destination="https://listener.example.org/cb") -> Registration:
    return Registration(notif_id(), owner, destination, expires, conditions,
                        tuple(str(j) for j in job_ids), flags)


def _seq(**parts) -> str:
    """SEQ with some counters set (``WM=9``)."""
    out = SEQ
    for name, n in parts.items():
        head, sep, tail = out.partition(f"{name}=")
        width = tail.index(":") if ":" in tail else len(tail)
        out = head + sep + f"{n:0{width}d}" + tail[width:]
    return out


def abort(job, user=ALICE, t=T0.sec + 20):
    return make_event("Abort", timestamp=Timeval(t, 0), host="wms.example.org",
                      source=Source.WORKLOAD_MANAGER, job_id=job, user=user, reason="no match",
                      seqcode=_seq(WM=9))


def change_acl(job, who, user=ALICE, t=T0.sec + 5):
    return make_event("ChangeACL", job_id=job, user=user, timestamp=Timeval(t, 0),
                      host="ui.example.org", source=Source.USER_INTERFACE, seqcode=_seq(UI=t % 1000),
                      user_id=who, user_id_type=ENUMS["ChangeACLUserIdType"].DN,
                      permission=ENUMS["ChangeACLPermission"].READ,
                      permission_type=ENUMS["ChangeACLPermissionType"].ALLOW,
                      operation=ENUMS["ChangeACLOperation"].ADD)


async def queued(store, r):
    return await store.messages(r.notif_id, after_seq=0, limit=1000)


def states(msgs):
    return [(m.job_id, m.document["status"]["state"]) for m in msgs]


# --- registrations ------------------------------------------------------------------

def test_provides_interface(store):
    assert verifyObject(INotificationStore, store)


@pytest_twisted.ensureDeferred
async def test_register_read_update_drop(store):
    """A registration reads back as stored (conditions, job list in order, owner NULL
    resolved); duplicates, malformed ids and jobid conditions are refused; updates
    change only what they name; drop deletes."""
    j1, j2 = new_id(), new_id()
    cond = ((Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),
             Condition(Attr.STATUS, Op.EQUAL, JobState.ABORTED)),
            (Condition(Attr.OWNER, Op.EQUAL, None),))
    r = reg(conditions=cond, job_ids=(j2, j1), flags=Flags.TERMINAL_STATES | Flags.HISTORY)
    got = await store.register(r)
    assert got.job_ids == (str(j2), str(j1)) and got.last_seq == 0
    assert got.conditions[1] == (Condition(Attr.OWNER, Op.EQUAL, ALICE),)
    assert await store.registration(r.notif_id) == got
    assert await store.registration(notif_id()) is None
    with pytest.raises(DuplicateRegistration):
        await store.register(r)
    for bad in ("https://lb.example.org:9000/abc", "NOTIF:x", "https://h/NOTIF:", ""):
        with pytest.raises(ValueError):
            await store.register(Registration(bad, ALICE, None, LATER, (), (), Flags.NONE))
    with pytest.raises(QueryError):
        await store.register(reg(conditions=((Condition(Attr.JOBID, Op.EQUAL, j1),),)))
    with pytest.raises(ValueError):
        await store.register(reg(job_ids=("not a job id",)))
    up = await store.update_registration(r.notif_id, destination=None, expires=LATER + 5)
    assert (up.destination, up.expires, up.job_ids, up.conditions) == (
        None, LATER + 5, got.job_ids, got.conditions)
    up = await store.update_registration(r.notif_id, job_ids=(), conditions=())
    assert up.job_ids == () and up.conditions == () and up.destination is None
    assert await store.registration(r.notif_id) == up
    with pytest.raises(UnknownRegistration):
        await store.update_registration(notif_id(), expires=1)
    assert await store.drop_registration(r.notif_id) is True
    assert await store.drop_registration(r.notif_id) is False
    assert await store.registration(r.notif_id) is None


# --- matching -------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_job_list_matching(store):
    """A job-list registration gets every state of its jobs, and nothing of others,
    with seqs 1, 2, 3 and documents naming the job, status, changed fields and event."""
    store.read_policy = ReadPolicy(noauth=True)
    j1, j2 = new_id(), new_id()
    r = await store.register(reg(job_ids=(j1,)))
    await store.accept_events([regjob(j1), regjob(j2), running(j2)])
    await store.accept_events([running(j1), abort(j1)])
    msgs = await queued(store, r)
    assert [m.seq for m in msgs] == [1, 2, 3]
    assert states(msgs) == [(str(j1), "Submitted"), (str(j1), "Running"), (str(j1), "Aborted")]
    doc = msgs[1].document
    assert doc["notification"] == r.notif_id and doc["seq"] == 2 and doc["jobid"] == str(j1)
    assert doc["event"]["type"] == "Running" and "state" in doc["changed"]
    assert "history" not in doc
    assert (await store.registration(r.notif_id)).last_seq == 3
    assert msgs[0].created == pytest.approx(NOW)


@pytest_twisted.ensureDeferred
async def test_all_jobs_owner_condition_and_read_access(store):
    """An all-jobs registration with ``owner = X`` sees X's jobs only; a registration
    of Bob does not see Alice's job until her ACL grants READ to Bob."""
    mine = await store.register(reg(conditions=((Condition(Attr.OWNER, Op.EQUAL, None),),)))
    alice_all = await store.register(reg())
    bobs = await store.register(reg(BOB))
    spying = await store.register(reg(BOB, conditions=((Condition(Attr.OWNER, Op.EQUAL,
                                                                  ALICE),),)))
    ja, jb = new_id(), new_id()
    await store.accept_events([regjob(ja), regjob(jb, BOB)])
    assert states(await queued(store, mine)) == [(str(ja), "Submitted")]
    assert states(await queued(store, bobs)) == [(str(jb), "Submitted")]
    assert await queued(store, spying) == []
    await store.accept_events([change_acl(ja, BOB), running(ja)])
    assert states(await queued(store, spying)) == [(str(ja), "Running")]
    assert states(await queued(store, bobs)) == [(str(jb), "Submitted"), (str(ja), "Running")]
    assert states(await queued(store, alice_all)) == states(await queued(store, mine))
    store.read_policy = ReadPolicy(superusers=(ALICE,))
    await store.accept_events([abort(jb, BOB)])
    assert states(await queued(store, mine)) == [(str(ja), "Submitted"), (str(ja), "Running")]
    assert states(await queued(store, alice_all))[2:] == [(str(jb), "Aborted")]


@pytest_twisted.ensureDeferred
async def test_state_conditions_terminal_states_history_and_expiry(store):
    """State conditions, ``changed``, terminal_states, history; expired registrations
    get nothing."""
    store.read_policy = ReadPolicy(noauth=True)
    running_only = await store.register(reg(conditions=(
        (Condition(Attr.STATUS, Op.EQUAL, JobState.RUNNING),),)))
    changed = await store.register(reg(conditions=((Condition(Attr.DESTINATION, Op.CHANGED),),)))
    terminal = await store.register(reg(flags=Flags.TERMINAL_STATES | Flags.HISTORY))
    expired = await store.register(reg(expires=NOW - 1))
    j = new_id()
    await store.accept_events([regjob(j), running(j), abort(j)])
    assert states(await queued(store, running_only)) == [(str(j), "Running")]
    assert [m.document["event"]["type"] for m in await queued(store, changed)] == ["RegJob"]
    term = await queued(store, terminal)
    assert states(term) == [(str(j), "Aborted")] and term[0].seq == 1
    assert [e["type"] for e in term[0].document["history"]] == ["RegJob", "Running", "Abort"]
    assert await queued(store, expired) == []
    assert (await store.registration(expired.notif_id)).last_seq == 0


@pytest_twisted.ensureDeferred
async def test_failed_batch_queues_nothing(backend):
    """A batch whose transaction fails after its messages were inserted leaves neither
    events nor messages (a trigger refuses the registration's seq update)."""
    clock = task.Clock()
    clock.advance(NOW)
    store = backend.make(clock=clock)
    await store.start()
    try:
        store.read_policy = ReadPolicy(noauth=True)
        r = await store.register(reg())
        j = new_id()
        await store.accept_events([regjob(j)])
        _refuse_seq_above(backend, 1)
        with pytest.raises(Exception, match="refused"):
            await store.accept_events([running(j)])
        assert (await store.job_status(j)).status.state == JobState.SUBMITTED
        assert [m.seq for m in await queued(store, r)] == [1]
        assert (await store.registration(r.notif_id)).last_seq == 1
    finally:
        await store.stop()


def _refuse_seq_above(backend, n: int) -> None:
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.target, isolation_level=None)
        conn.execute(f"""CREATE TRIGGER refuse BEFORE UPDATE OF last_seq ON notif_registrations
                         WHEN NEW.last_seq > {n} BEGIN SELECT RAISE(ABORT, 'refused'); END""")
    else:
        conn = psycopg2.connect(backend.target)
        conn.cursor().execute(f"""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.last_seq > {n} THEN RAISE EXCEPTION 'refused'; END IF;
            RETURN NEW; END $$;
            CREATE TRIGGER refuse BEFORE UPDATE ON notif_registrations
            FOR EACH ROW EXECUTE FUNCTION refuse();""")
        conn.commit()
    conn.close()


# --- the outbox -----------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_acknowledge_pending_purge(store):
    """Acknowledged messages go; pending lists registrations with a backlog and its
    first seq; a new destination keeps the queue; drop and purge delete messages."""
    store.read_policy = ReadPolicy(noauth=True)
    j = new_id()
    a = await store.register(reg(job_ids=(j,)))
    b = await store.register(reg(job_ids=(j,), destination=None))
    short = await store.register(reg(job_ids=(j,), expires=NOW + 10))
    await store.accept_events([regjob(j), running(j), abort(j)])
    assert await store.pending_registrations(NOW, 10) == sorted(
        [(x.notif_id, x.destination, x.expires, 1) for x in (a, b, short)],
        key=lambda t: t[0].rpartition(":")[2])
    assert await store.acknowledge(a.notif_id, 2) == 2
    assert await store.acknowledge(a.notif_id, 2) == 0
    assert [m.seq for m in await queued(store, a)] == [3]
    assert [m.seq for m in await store.messages(b.notif_id, after_seq=1, limit=1)] == [2]
    await store.update_registration(a.notif_id, destination="https://elsewhere.example.org/")
    pend = {p[0]: p for p in await store.pending_registrations(NOW, 10)}
    assert pend[a.notif_id] == (a.notif_id, "https://elsewhere.example.org/", a.expires, 3)
    assert await store.acknowledge(a.notif_id, 99) == 1
    assert (await store.registration(a.notif_id)).last_seq == 3
    assert a.notif_id not in {p[0] for p in await store.pending_registrations(NOW, 10)}
    assert [p[0] for p in await store.pending_registrations(NOW + 20, 10)] == [b.notif_id]
    assert len(await store.pending_registrations(NOW, 1)) == 1
    assert await store.pending_registrations(NOW, -1) == []
    assert await store.messages(b.notif_id, after_seq=0, limit=-5) == []
    for bad in (lambda: store.messages(b.notif_id, after_seq="x", limit=1),
                lambda: store.pending_registrations(None, 1),
                lambda: store.purge_expired("soon"), lambda: store.acknowledge("x", 1)):
        with pytest.raises((ValueError, TypeError)):
            await bad()
    with pytest.raises(UnknownRegistration):
        await store.acknowledge(notif_id(), 1)
    assert await store.purge_expired(NOW + 20) == 1
    assert await store.registration(short.notif_id) is None
    assert await queued(store, short) == []
    assert await store.drop_registration(b.notif_id)
    assert await queued(store, b) == []
    await store.accept_events([make_event("Clear", timestamp=Timeval(T0.sec + 30, 0),
                                          host="ui", source=Source.USER_INTERFACE, job_id=j,
                                          user=ALICE, reason=ENUMS["ClearReason"].USER,
                                          seqcode=_seq(UI=30))])
    assert [m.seq for m in await queued(store, a)] == [4]


@pytest_twisted.ensureDeferred
async def test_pending_scan_pages_of_callback_registrations(store):
    """callbacks_only leaves out pull and host:port registrations however many
    messages they hold; after= goes on after a registration, so a scan in pages
    reaches every callback registration with a backlog; acknowledged ones leave."""
    store.read_policy = ReadPolicy(noauth=True)
    j = new_id()
    made = []
    for dest in ("http://a.example.org/cb", None, "https://b.example.org/cb", "host:9000",
                 None, "HTTP://upper.example.org/", "http://c.example.org/cb", None):
        made.append(await store.register(reg(job_ids=(j,), destination=dest)))
    idle = await store.register(reg(job_ids=(new_id(),), destination="http://idle.example.org/"))
    await store.accept_events([regjob(j), running(j)])
    order = sorted(made, key=lambda r: r.notif_id.rpartition(":")[2])
    callbacks = [r for r in order if (r.destination or "").startswith(("http://", "https://"))]
    assert len(callbacks) == 3
    everything = await store.pending_registrations(NOW, 100)
    assert [p[0] for p in everything] == [r.notif_id for r in order]
    assert [p[0] for p in await store.pending_registrations(NOW, 100, callbacks_only=True)] \
        == [r.notif_id for r in callbacks]
    seen, after = [], None
    while True:
        page = await store.pending_registrations(NOW, 1, after=after, callbacks_only=True)
        if not page:
            break
        seen += page
        after = page[-1][0]
    assert seen == [(r.notif_id, r.destination, r.expires, 1) for r in callbacks]
    assert idle.notif_id not in {p[0] for p in everything}
    assert await store.acknowledge(callbacks[1].notif_id, 1) == 1
    page = await store.pending_registrations(NOW, 100, callbacks_only=True)
    assert [(p[0], p[3]) for p in page] == [(callbacks[0].notif_id, 1),
                                            (callbacks[1].notif_id, 2),
                                            (callbacks[2].notif_id, 1)]
    await store.acknowledge(callbacks[1].notif_id, 2)
    page = await store.pending_registrations(NOW, 100, after=callbacks[0].notif_id,
                                             callbacks_only=True)
    assert [p[0] for p in page] == [callbacks[2].notif_id]
    for bad in ("not an id", 7, "https://lb.example.org:9000/NOTIF:"):
        with pytest.raises((ValueError, TypeError)):
            await store.pending_registrations(NOW, 1, after=bad)


@pytest_twisted.ensureDeferred
async def test_acknowledge_does_not_wait_for_intake_row_lock(pg_dsn):
    """Intake holds a registration's row lock while it numbers messages; an
    acknowledgement meanwhile deletes its messages at once instead of queueing
    behind that transaction (and intake behind the acknowledgement)."""
    clock = task.Clock()
    clock.advance(NOW)
    store = Backend("postgres", pg_dsn, reactor).make(clock=clock)
    await store.start()
    store.read_policy = ReadPolicy(noauth=True)
    conn = psycopg2.connect(pg_dsn)
    try:
        j = new_id()
        r = await store.register(reg(job_ids=(j,)))
        await store.accept_events([regjob(j), running(j)])
        cur = conn.cursor()
        cur.execute("SET lock_timeout = '20s'")
        cur.execute("SELECT last_seq FROM notif_registrations WHERE unique_id = %s FOR UPDATE",
                    (r.notif_id.rpartition(":")[2],))
        d = store.acknowledge(r.notif_id, 1)
        d.addTimeout(5, reactor)
        assert await d == 1
        assert [m.seq for m in await store.messages(r.notif_id, after_seq=0, limit=9)] == [2]
        conn.rollback()
    finally:
        conn.close()
        await store.stop()


# --- concurrency (PostgreSQL) -----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_two_postgres_stores_keep_seqs_gap_free(pg_dsn):
    """Two stores on one database accept batches concurrently; every registration's
    seqs are 1..N without gaps, one message per status change, in each job's order."""
    pg = Backend("postgres", pg_dsn, reactor)
    stores = [pg.make(connections=4), pg.make(connections=4)]
    for s in stores:
        await s.start()
        s.read_policy = ReadPolicy(noauth=True)
    try:
        jobs = [new_id() for _ in range(24)]
        everything = await stores[0].register(reg(expires=2**40))
        some = await stores[1].register(reg(job_ids=jobs[::3], expires=2**40))
        acked = await stores[1].register(reg(expires=2**40))
        await defer.gatherResults([stores[i % 2].accept_events([regjob(j)])
                                   for i, j in enumerate(jobs)], consumeErrors=True)
        work = []
        for i, j in enumerate(jobs):
            work.append(stores[i % 2].accept_events([running(j)]))
            work.append(stores[(i + 1) % 2].accept_events([running(jobs[-1 - i])]))
            if i % 4 == 0:  # the delivery side acknowledges while intake goes on
                work.append(stores[i % 2].acknowledge(acked.notif_id, 24 + i))
        await defer.gatherResults(work, consumeErrors=True)
        await defer.gatherResults([stores[i % 2].accept_events([abort(j)])
                                   for i, j in enumerate(jobs)], consumeErrors=True)
        for r, watched in ((everything, jobs), (some, jobs[::3])):
            msgs = await stores[0].messages(r.notif_id, after_seq=0, limit=10000)
            assert [m.seq for m in msgs] == list(range(1, len(msgs) + 1))
            assert (await stores[1].registration(r.notif_id)).last_seq == len(msgs)
            per_job: dict = {}
            for m in msgs:
                per_job.setdefault(m.job_id, []).append(m.document["status"]["state"])
                assert m.document["seq"] == m.seq
            # each Running was sent twice, by both stores: the second is a duplicate
            # that changes nothing and is not notified
            assert per_job == {str(j): ["Submitted", "Running", "Aborted"] for j in watched}
        left = await stores[0].messages(acked.notif_id, after_seq=0, limit=10000)
        assert (await stores[0].registration(acked.notif_id)).last_seq == 3 * len(jobs)
        assert [m.seq for m in left] == list(range(3 * len(jobs) - len(left) + 1,
                                                   3 * len(jobs) + 1))
        assert len(left) <= 2 * len(jobs)  # the Submitted ones at least were acknowledged
    finally:
        for s in stores:
            await s.stop()


# --- the schema -------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_upgrade_from_version_2(backend):
    """A database at version 2 with a job is upgraded to 3 on start; the job is kept
    and its next change is notified."""
    job = new_id()
    if backend.name == "sqlite":
        conn, d = sqlite3.connect(backend.target, isolation_level=None), SQLITE
    else:
        conn, d = psycopg2.connect(backend.target), POSTGRES
    cur = conn.cursor()
    if d is SQLITE:
        cur.execute("BEGIN")
    assert run_sync(cur, schema.upgrade(d, target=2)) == 0
    run_sync(cur, batch.accept_batch(d, [regjob(job)], None, Timeval(NOW, 0)))
    conn.commit()
    cur.execute("SELECT version FROM schema_version")
    assert cur.fetchall() == [(2,)]
    conn.close()
    store = backend.make()
    await store.start()
    try:
        store.read_policy = ReadPolicy(noauth=True)
        assert (await store.job_status(job)).status.state == JobState.SUBMITTED
        r = await store.register(reg(job_ids=(job,), expires=2**40))
        await store.accept_events([running(job)])
        assert states(await queued(store, r)) == [(str(job), "Running")]
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_candidates_are_read_by_index(store, backend):
    """Matching reads candidates through indexes (job list, all-jobs by owner key),
    never by a scan of the registrations (PostgreSQL: with sequential scans
    discouraged, as its planner prefers them on small tables)."""
    jobs = [new_id() for _ in range(50)]
    for i, j in enumerate(jobs):
        await store.register(reg(job_ids=(j,)))
        await store.register(reg(f"/CN=user{i}", conditions=(
            (Condition(Attr.OWNER, Op.EQUAL, f"/CN=user{i}"),),)))
    listed, found = notify_sql.candidate_queries(store._notify_dialect, [str(jobs[0])],
                                                 ["/cn=user1"], {"a", "b"}, NOW)
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.target)
        plans = [" / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + q.text, q.params))
                 for q in (listed, found)]
        conn.close()
        bad = ("SCAN notif_registrations", "SCAN notif_jobs")
    else:
        conn = psycopg2.connect(backend.target)
        cur = conn.cursor()
        cur.execute("SET enable_seqscan = off")
        plans = []
        for q in (listed, found):
            cur.execute("EXPLAIN " + q.text, q.params)
            plans.append(" / ".join(r[0] for r in cur.fetchall()))
        conn.close()
        bad = ("Seq Scan on notif_registrations", "Seq Scan on notif_jobs")
    for plan in plans:
        assert "notif_" in plan and not any(b in plan for b in bad), plan


@pytest_twisted.ensureDeferred
async def test_listing_and_bootstrap(store):
    """registrations() lists by owner (subjects compared as subjects) or all;
    queue_bootstrap queues the current state of every matching readable job."""
    ja, jb, jc = new_id(), new_id(), new_id()
    await store.accept_events([regjob(ja), running(ja), regjob(jb), regjob(jc, BOB)])
    done_or_running = ((Condition(Attr.STATUS, Op.EQUAL, JobState.RUNNING),),)
    listed = await store.register(reg(job_ids=(ja, jb, jc), flags=Flags.BOOTSTRAP))
    running_all = await store.register(reg(conditions=done_or_running, flags=Flags.HISTORY))
    bobs = await store.register(reg(BOB + "/CN=proxy"))
    assert [r.notif_id for r in await store.registrations(ALICE)] == sorted(
        [listed.notif_id, running_all.notif_id], key=lambda n: n.rpartition(":")[2])
    assert [r.notif_id for r in await store.registrations(BOB)] == [bobs.notif_id]
    assert len(await store.registrations()) == 3
    assert len(await store.registrations(limit=2)) == 2
    assert await store.queue_bootstrap(listed.notif_id) == 2      # jc is Bob's
    got = await queued(store, listed)
    assert sorted(states(got)) == sorted([(str(ja), "Running"), (str(jb), "Submitted")])
    assert [m.seq for m in got] == [1, 2] and got[0].document["event"] is None
    assert "state" in got[0].document["changed"]
    assert await store.queue_bootstrap(running_all.notif_id) == 1
    [m] = await queued(store, running_all)
    assert m.job_id == str(ja) and [e["type"] for e in m.document["history"]] == [
        "RegJob", "Running"]
    assert await store.queue_bootstrap(bobs.notif_id, lambda owner, rec: True) == 3
    await store.accept_events([abort(ja)])
    assert [m.seq for m in await queued(store, listed)] == [1, 2, 3]
    with pytest.raises(UnknownRegistration):
        await store.queue_bootstrap(notif_id())


@pytest_twisted.ensureDeferred
async def test_anonymized_registration(store):
    """With the anonymized flag the queued documents hold the server anonymizer's
    hashes, never the subjects."""
    from lbtx.server.anonymize import Anonymizer
    store.anonymizer = Anonymizer(b"server salt")
    r = await store.register(reg(flags=Flags.ANONYMIZE))
    plain = await store.register(reg())
    j = new_id()
    await store.accept_events([regjob(j), running(j)])
    msgs = await queued(store, r)
    assert [m.document["status"]["owner"] for m in msgs] == [store.anonymizer.hash(ALICE)] * 2
    assert all(ALICE not in repr(m.document) for m in msgs)
    assert [m.document["status"]["owner"] for m in await queued(store, plain)] == [ALICE] * 2
