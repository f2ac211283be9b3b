"""The job store contract (lbtx.server.store.interfaces.IJobStore), run against
every backend: SQLite in a temporary directory and PostgreSQL in a private
cluster the tests start themselves (tests/pgcluster.py)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from zope.interface.verify import verifyObject

from lbtx import ulm
from lbtx.acceptance import Delivery
from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import JobState, LogFlag, Source
from lbtx.server.store.interfaces import IJobStore, StoredEvent, UnknownJobError
from lbtx.timeval import Timeval

from scenario_support import load
from store_support import (SCENARIO_FILES, Backend, diff, parse, record_summary, replayed,
                           statuses, stamped)

ALICE = "/DC=org/DC=example/CN=Alice"
BOB = "/DC=org/DC=example/CN=Bob"
T0 = Timeval(1_700_000_000, 0)
SEQ = "UI=000000:NS=0000000001:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """A way to open store instances over one fresh database of each backend."""
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "data" / "lbtx.sqlite"), reactor)
    return Backend("postgres", request.getfixturevalue("pg_dsn"), reactor)


@pytest_twisted.async_yield_fixture
async def store(backend):
    """A started store; stopped after the test."""
    s = backend.make()
    await s.start()
    yield s
    await s.stop()


def regjob(job_id: JobId, user: str = ALICE, *, priority: int = 0, t: Timeval = T0, **attrs):
    return make_event("RegJob", timestamp=t, host="ui.example.org", source=Source.USER_INTERFACE,
                      job_id=job_id, seqcode=SEQ, user=user, priority=priority,
                      jobtype=attrs.pop("jobtype", None) or _simple(), ns="ns.example.org",
                      **attrs)


def _simple():
    from lbtx.schema import ENUMS
    return ENUMS["RegJobJobtype"].from_text("SIMPLE")


def running(job_id: JobId, user: str = ALICE, t: Timeval = Timeval(T0.sec + 10, 5)):
    return make_event("Running", timestamp=t, host="ce.example.org", source=Source.LRMS,
                      job_id=job_id, user=user, node="wn01.example.org",
                      seqcode=SEQ.replace("LRMS=000000", "LRMS=000001"))


def usertag(job_id: JobId, name: str, value: str, t: Timeval):
    return make_event("UserTag", timestamp=t, host="ui.example.org", source=Source.USER_INTERFACE,
                      job_id=job_id, user=ALICE, name=name, value=value,
                      seqcode=SEQ.replace("UI=000000", f"UI={t.sec % 1000:06d}"))


def new_id() -> JobId:
    return JobId.generate("lb.example.org:9000")


# --- the interface ----------------------------------------------------------------

def test_store_provides_interface(store):
    """Both backends provide IJobStore."""
    assert verifyObject(IJobStore, store)


@pytest_twisted.ensureDeferred
async def test_outcomes(store):
    """Every acceptance outcome comes back through the store, and only stored events
    are kept: stored, duplicate, unknown job, re-registration by another user,
    exclusive re-registration, an LRMS event from another user (checked before
    duplicates, as the original does); re-registration by the owner is stored."""
    job = new_id()
    reg = regjob(job)
    events = [
        running(job),                                    # before the registration
        reg,
        reg.copy(),                                      # the same event again
        regjob(job, BOB, t=Timeval(T0.sec + 1, 0)),      # another owner
        regjob(job, priority=int(LogFlag.EXCL), t=Timeval(T0.sec + 2, 0)),  # exclusive
        running(job),
        running(job, user=BOB),                          # LRMS from a non-owner: EPERM (§6.5)
        regjob(job, t=Timeval(T0.sec + 3, 0)),           # the owner again
    ]
    outcomes = await store.accept_events(events)
    assert [o.delivery for o in outcomes] == [
        Delivery.REJECTED_UNREGISTERED, Delivery.STORED, Delivery.DUPLICATE,
        Delivery.REJECTED_NOT_OWNER, Delivery.REJECTED_EXISTS, Delivery.STORED,
        Delivery.REJECTED_NOT_ALLOWED, Delivery.STORED]
    rec = await store.job_status(job)
    assert rec.owner == ALICE and rec.nevents == 3
    assert rec.status.state == JobState.RUNNING
    stored = await store.job_events(job)
    assert [s.event.type_name for s in stored] == ["RegJob", "Running", "RegJob"]
    # and the same in separate batches, across which duplicates are found as well
    again = await store.accept_events([reg, running(job)])
    assert [o.delivery for o in again] == [Delivery.DUPLICATE, Delivery.DUPLICATE]
    other = new_id()
    later = await store.accept_events([running(other)])
    assert later[0].delivery == Delivery.REJECTED_UNREGISTERED
    assert (await store.job_status(job)).nevents == 3


@pytest_twisted.ensureDeferred
async def test_unknown_job(store):
    """Reads of a job the store does not know fail with UnknownJobError."""
    job = new_id()
    for call in (store.job_status, store.job_events, store.last_seqcode, store.children):
        with pytest.raises(UnknownJobError) as info:
            await call(job)
        assert info.value.job_id == job and str(job) in str(info.value)


@pytest_twisted.ensureDeferred
async def test_empty_batch(store):
    """An empty batch is answered with no outcomes."""
    assert await store.accept_events([]) == []


# --- the scenarios ------------------------------------------------------------------

@pytest.mark.parametrize("batch", [0, 1], ids=["one-batch", "event-by-event"])
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
@pytest_twisted.ensureDeferred
async def test_scenario(store, path, batch):
    """Each public scenario fed through accept_events ends with exactly the statuses,
    records and events of lbtx replay."""
    lines = stamped(load(path))
    want = replayed(lines)
    events = [parse(ln) for ln in lines]
    size = batch or len(events)
    deliveries = []
    for i in range(0, len(events), size):
        outcomes = await store.accept_events(events[i:i + size], lines[i:i + size])
        deliveries += [o.delivery for o in outcomes]
    assert sum(1 for d in deliveries if d == Delivery.STORED) == want.deliveries[Delivery.STORED]
    got = [await store.job_status(rec.job_id) for rec in want.jobs()]
    for g, w in zip(got, want.jobs()):
        assert diff(statuses([g])[str(g.job_id)], statuses([w])[str(w.job_id)]) == {}
        assert record_summary(g) == record_summary(w)
    for w in want.jobs():
        stored = await store.job_events(w.job_id)
        assert [s.event for s in stored] == want.table.events.get(w.job_id, [])
        for s in stored:
            if s.line in lines:
                assert parse(s.line) == s.event
        assert await store.last_seqcode(w.job_id) == w.status.internal.get("last_seqcode")


@pytest_twisted.ensureDeferred
async def test_statuses_and_duplicates_survive_restart(backend):
    """After stop and a new instance over the same database, the statuses are as
    before and every event fed again is a duplicate."""
    lines = [ln for path in SCENARIO_FILES for ln in stamped(load(path))]
    want = replayed(lines)
    first = backend.make()
    await first.start()
    await first.accept_events([parse(ln) for ln in lines], lines)
    await first.stop()
    second = backend.make()
    await second.start()
    try:
        got = [await second.job_status(rec.job_id) for rec in want.jobs()]
        assert statuses(got) == statuses(want.jobs())
        again = await second.accept_events([parse(ln) for ln in lines], lines)
        stored_before = [o.delivery for o in again]
        assert Delivery.STORED not in stored_before
        after = [await second.job_status(rec.job_id) for rec in want.jobs()]
        assert statuses(after) == statuses(want.jobs())
        assert [r.nevents for r in after] == [r.nevents for r in want.jobs()]
    finally:
        await second.stop()


@pytest_twisted.ensureDeferred
async def test_stopped_store_refuses_work(backend):
    """Calls after stop fail instead of hanging."""
    from lbtx.server.store.interfaces import StoreUnavailableError
    s = backend.make()
    await s.start()
    await s.stop()
    with pytest.raises(StoreUnavailableError):
        await s.accept_events([regjob(new_id())])
    with pytest.raises(StoreUnavailableError):
        await s.job_status(new_id())


# --- events -------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_events_keep_lines_and_arrival(backend):
    """job_events gives (arrival, event, line) in arrival order: the line verbatim
    (without its line feed), the arrival from the store's clock or, for a loaded
    dump record, from DG.ARRIVED; generated events are included."""
    clock = task.Clock()
    clock.advance(1_800_000_000.25)
    s = backend.make(clock=clock)
    await s.start()
    try:
        job = new_id()
        line = ulm.format(regjob(job)).replace("PROG=edg-wms", "PROG=my-ui   ")
        dumped = ulm.format(running(job))
        dumped = "DG.ARRIVED=20240301120001.000000 " + dumped
        await s.accept_events([parse(line), parse(dumped)], [line, dumped])
        got = await s.job_events(job)
        assert all(isinstance(e, StoredEvent) for e in got)
        assert got[0] == (Timeval(1_800_000_000, 250_000), parse(line), line.rstrip("\n"))
        assert got[1].arrived == Timeval.from_ulm("20240301120001.000000")
        assert got[1].line == dumped.rstrip("\n")
        # without lines the record is formatted from the event
        tag = usertag(job, "colour", "red", Timeval(T0.sec + 20, 0))
        await s.accept_events([tag])
        got = await s.job_events(job)
        assert got[2].event == tag and got[2].line == ulm.format(tag, newline=False)
    finally:
        await s.stop()


@pytest_twisted.ensureDeferred
async def test_generated_events_and_children(store):
    """A collection registration creates its subjobs and links; children() lists
    them in index order; the parent's generated CollectionState events are stored."""
    path = next(p for p in SCENARIO_FILES if p.stem.startswith("P11"))
    lines = stamped(load(path))
    want = replayed(lines)
    await store.accept_events([parse(ln) for ln in lines], lines)
    parent = want.jobs()[0]
    kids = await store.children(parent.job_id)
    assert [k.job_id for k in kids] == list(parent.children)
    assert statuses(kids) == statuses([want.table.jobs[c] for c in parent.children])
    events = await store.job_events(parent.job_id)
    generated = [e for e in events if e.event.type_name == "CollectionState"]
    assert generated and all(e.event.source == Source.LB_SERVER for e in generated)
    assert await store.children(kids[0].job_id) == []


@pytest_twisted.ensureDeferred
async def test_many_subjob_registrations_of_a_stored_parent(store):
    """A batch registering many subjobs of a DAG stored earlier is applied in one
    go (the links to check are read with the parent, not one re-run per subjob),
    and the subjobs stay linked once, in index order."""
    from lbtx.schema import ENUMS
    dag = new_id()
    n = 120
    await store.accept_events([regjob(dag, jobtype=ENUMS["RegJobJobtype"].from_text("DAG"),
                                      nsubjobs=n, seed="seed-1")])
    subjobs = dag.subjobs("seed-1", n)
    outcomes = await store.accept_events(
        [regjob(sub, t=Timeval(T0.sec + 5, i), parent=dag) for i, sub in enumerate(subjobs)])
    assert {o.delivery for o in outcomes} == {Delivery.STORED}
    kids = await store.children(dag)
    assert [k.job_id for k in kids] == subjobs
    rec = await store.job_status(dag)
    assert list(rec.children) == subjobs and rec.status.children_num == n


def _change_acl(job_id: JobId, who: str, permission: str, op: str, ts: int):
    from lbtx.schema import ENUMS
    return make_event("ChangeACL", job_id=job_id, user=ALICE, timestamp=Timeval(T0.sec + ts, 0),
                      host="ui.example.org", source=Source.USER_INTERFACE,
                      seqcode=SEQ.replace("UI=000000", f"UI={ts:06d}"), user_id=who,
                      user_id_type=ENUMS["ChangeACLUserIdType"].DN,
                      permission=ENUMS["ChangeACLPermission"][permission],
                      permission_type=ENUMS["ChangeACLPermissionType"].ALLOW,
                      operation=ENUMS["ChangeACLOperation"][op])


@pytest_twisted.ensureDeferred
async def test_acl_and_children_read_back_by_every_read(store):
    """The ACL (in entry order, after an add and a removal) and the children come
    back the same through job_status, query_jobs, user_jobs and children; a job
    with neither reads back with none."""
    from lbtx.query.conditions import Attr, Condition, Op
    from lbtx.schema import ENUMS
    dag, plain = new_id(), new_id()
    events = [regjob(dag, jobtype=ENUMS["RegJobJobtype"].from_text("DAG"), nsubjobs=3,
                     seed="seed-acl"), regjob(plain, t=Timeval(T0.sec + 1, 0))]
    carol, dave = "/DC=org/DC=example/CN=Carol", "/DC=org/DC=example/CN=Dave"
    for job in [dag] + dag.subjobs("seed-acl", 3):
        events += [_change_acl(job, BOB, "READ", "ADD", 1), _change_acl(job, carol, "TAG", "ADD", 2),
                   _change_acl(job, dave, "READ", "ADD", 3), _change_acl(job, carol, "TAG", "REMOVE", 4)]
    await store.accept_events(events)
    want_acl = [[BOB, "DN", "READ", "ALLOW"], [dave, "DN", "READ", "ALLOW"]]
    kids = dag.subjobs("seed-acl", 3)
    rec = await store.job_status(dag)
    assert (rec.acl, list(rec.children)) == (want_acl, kids)
    bare = await store.job_status(plain)
    assert (bare.acl, list(bare.children)) == ([], [])
    by_query = {r.job_id: r for r in await store.query_jobs(
        ((Condition(Attr.JOBID, Op.EQUAL, dag), Condition(Attr.JOBID, Op.EQUAL, plain)),),
        limit=None)}
    by_owner = {r.job_id: r for r in await store.user_jobs(ALICE)}
    for found in (by_query, by_owner):
        assert (found[dag].acl, list(found[dag].children)) == (want_acl, kids)
        assert (found[plain].acl, list(found[plain].children)) == ([], [])
    children = await store.children(dag)
    assert [c.job_id for c in children] == kids
    assert all(c.acl == want_acl and not c.children for c in children)
    assert await store.children(plain) == []


@pytest_twisted.ensureDeferred
async def test_undecodable_bytes_are_kept(store):
    """Records read with undecodable bytes (kept as surrogate escapes) are stored:
    the line comes back byte for byte, the status keeps the text, a redelivery is
    a duplicate; a job id with such bytes is refused with ValueError."""
    job = new_id()
    await store.accept_events([regjob(job)])
    raw = ulm.format_bytes(usertag(job, "note", "caf\u00e9", Timeval(T0.sec + 30, 0)))
    raw = raw.replace("caf\u00e9".encode(), b"caf\xff\xfe").replace(b'HOST="ui.example.org"',
                                                                    b'HOST="ui\xff.example.org"')
    line = raw.decode("utf-8", "surrogateescape")
    event = ulm.parse(line, require_user=True)
    assert (await store.accept_events([event], [line]))[0].delivery == Delivery.STORED
    assert (await store.accept_events([event], [line]))[0].delivery == Delivery.DUPLICATE
    stored = await store.job_events(job)
    assert stored[-1].line.encode("utf-8", "surrogateescape") == raw.rstrip(b"\n")
    assert stored[-1].event == event
    rec = await store.job_status(job)
    assert rec.status.user_tags["note"] == "caf\udcff\udcfe"
    bad = JobId.parse("https://lb.example.org:9000/bad\udcffid")
    with pytest.raises(ValueError):
        await store.accept_events([regjob(bad)])


def test_indexed_attributes(store):
    """The store names the §8.4 single-column indices it keeps (jobid and
    parent_job always count and are not listed)."""
    from lbtx.query.conditions import Attr
    attrs = {a for a, _ in store.indexed_attributes}
    assert attrs == {Attr.OWNER, Attr.DESTINATION, Attr.LOCATION, Attr.NETWORK_SERVER,
                     Attr.STATEENTERTIME, Attr.LASTUPDATETIME}


@pytest_twisted.ensureDeferred
async def test_generated_events_at_the_clock(backend):
    """With generated_at_clock, a CollectionState takes the store's clock reading
    (as the original server does) instead of the causing event's timestamp."""
    clock = task.Clock()
    clock.advance(1_900_000_000)
    s = backend.make(clock=clock, generated_at_clock=True)
    await s.start()
    try:
        path = next(p for p in SCENARIO_FILES if p.stem.startswith("P11"))
        lines = stamped(load(path))
        await s.accept_events([parse(ln) for ln in lines], lines)
        parent = replayed(lines).jobs()[0]
        events = await s.job_events(parent.job_id)
        generated = [e.event for e in events if e.event.type_name == "CollectionState"]
        assert generated and {e.timestamp for e in generated} == {Timeval(1_900_000_000, 0)}
    finally:
        await s.stop()
