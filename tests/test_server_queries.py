"""StoreQueryBackend over a real SQLite store fed every public scenario through
accept_events: statuses equal ``lbtx replay``'s; read access (owner, ACL READ,
super-users, noauth); owner NULL; the nesting and index rules; soft and hard
limits with every queryRes mode; flags; event queries and their order; user jobs;
sequence codes; indexed attributes; a store that went away."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from zope.interface.verify import verifyObject

from lbtx import seqcode
from lbtx.acceptance import thorough_histogram
from lbtx.events import make_event
from lbtx.protocols.legacy_query import ErrorCode, IQueryBackend, StatusFlag
from lbtx.protocols.legacy_query.messages import QueryResults, ResultLimit
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.schema import ENUMS, JobState, Level, Source
from lbtx.server.queries import HardLimits, StoreQueryBackend
from lbtx.status import to_json
from lbtx.timeval import NULL_TIME, Timeval

from server_query_support import (ALICE, BOB, CAROL, all_lines, error_of, job_of, loaded_store,
                                  replay_of)
from test_store_contract import new_id, regjob

C = Condition
E = ErrorCode
LINES = all_lines()
REPLAY = replay_of(LINES)
JOBS = sorted(REPLAY.jobs(), key=lambda r: r.job_id.unique)
P09 = job_of(REPLAY, "P09")
P10 = job_of(REPLAY, "P10", "D")
P07 = job_of(REPLAY, "P07")
OWNER_ALICE = ((C(Attr.OWNER, Op.EQUAL, ALICE),),)


def by_id(job_id):
    return ((C(Attr.JOBID, Op.EQUAL, job_id),),)


@pytest_twisted.async_yield_fixture(scope="module")
async def store(tmp_path_factory):
    s = await loaded_store(tmp_path_factory.mktemp("store") / "lbtx.sqlite", reactor, LINES)
    yield s
    await s.stop()


@pytest.fixture
def backend(store):
    return StoreQueryBackend(store)


def test_provides_the_interface(backend):
    verifyObject(IQueryBackend, backend)


def test_options_are_checked(store):
    with pytest.raises(ValueError):
        StoreQueryBackend(store, no_index=3)
    assert HardLimits.parse("10:20") == HardLimits(10, 20)
    assert HardLimits.parse("10:20:0") == HardLimits(10, 20)
    for bad in ("10", "a:b", "-1:2", "1:2:3:4"):
        with pytest.raises(ValueError):
            HardLimits.parse(bad)


# --- job status and read access -----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_every_status_equals_replay(backend):
    """Every job of every scenario, read by its owner, is what lbtx replay computes."""
    for rec in JOBS:
        view = await backend.job_status(rec.job_id, StatusFlag.NONE, ALICE)
        assert to_json(view.status) == to_json(rec.status), rec.job_id


@pytest_twisted.ensureDeferred
async def test_status_errors(backend):
    """Unknown jobs are ENOENT; other users and anonymous callers EPERM."""
    assert (await error_of(backend.job_status(new_id(), StatusFlag.NONE, ALICE))).code == E.ENOENT
    job = JOBS[0].job_id
    assert (await error_of(backend.job_status(job, StatusFlag.NONE, CAROL))).code == E.EPERM
    assert (await error_of(backend.job_status(job, StatusFlag.NONE, None))).code == E.EPERM


@pytest_twisted.ensureDeferred
async def test_acl_grants_read_of_one_job(backend):
    """Bob reads the P09 job (its ChangeACL grants him READ) and nothing else."""
    view = await backend.job_status(P09.job_id, StatusFlag.NONE, BOB)
    assert to_json(view.status) == to_json(P09.status)
    for rec in JOBS:
        if rec.job_id != P09.job_id:
            assert (await error_of(backend.job_status(rec.job_id, 0, BOB))).code == E.EPERM
    answer = await backend.query_jobs(OWNER_ALICE, StatusFlag.NONE, ResultLimit(), BOB)
    assert [j for j, _ in answer.jobs] == [P09.job_id]
    assert (await error_of(backend.query_jobs(OWNER_ALICE, 0, ResultLimit(), CAROL))).code \
        == E.EPERM
    assert (await error_of(backend.user_jobs(BOB))).code == E.ENOENT


@pytest_twisted.ensureDeferred
async def test_superusers_and_noauth_read_everything(store):
    for backend, caller in ((StoreQueryBackend(store, superusers=[CAROL]), CAROL),
                            (StoreQueryBackend(store, noauth=True), None)):
        answer = await backend.query_jobs(OWNER_ALICE, StatusFlag.NONE, ResultLimit(), caller)
        assert [j for j, _ in answer.jobs] == [r.job_id for r in JOBS]
        await backend.job_status(JOBS[0].job_id, StatusFlag.NONE, caller)


# --- job queries ------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_owner_null_is_the_caller(backend):
    """owner NULL means the caller; jobs come in unique-id order."""
    mine = ((C(Attr.OWNER, Op.EQUAL, None),),)
    answer = await backend.query_jobs(mine, StatusFlag.NONE, ResultLimit(), ALICE)
    assert [j for j, _ in answer.jobs] == [r.job_id for r in JOBS]
    assert answer.error is None
    assert [to_json(v.status) for _, v in answer.jobs] == [to_json(r.status) for r in JOBS]
    assert (await error_of(backend.query_jobs(mine, 0, ResultLimit(), None))).code == E.EPERM
    assert (await error_of(backend.query_jobs(mine, 0, ResultLimit(), CAROL))).code == E.ENOENT


@pytest_twisted.ensureDeferred
async def test_conditions_narrow_the_answer(backend):
    """Indexed and unindexed conditions together, as job_matches decides."""
    query = ((C(Attr.OWNER, Op.EQUAL, ALICE),),
             (C(Attr.STATUS, Op.EQUAL, JobState.DONE), C(Attr.STATUS, Op.EQUAL, JobState.CLEARED)),
             (C(Attr.EXITCODE, Op.EQUAL, 0),))
    answer = await backend.query_jobs(query, StatusFlag.NONE, ResultLimit(), ALICE)
    want = [r.job_id for r in JOBS if r.status.state in (JobState.DONE, JobState.CLEARED)
            and r.status.exit_code == 0]
    assert want and [j for j, _ in answer.jobs] == want


@pytest_twisted.ensureDeferred
async def test_nesting_rule(backend):
    """One attribute per disjunction; an empty query is refused."""
    mixed = ((C(Attr.OWNER, Op.EQUAL, ALICE), C(Attr.STATUS, Op.EQUAL, JobState.DONE)),)
    error = await error_of(backend.query_jobs(mixed, 0, ResultLimit(), ALICE))
    assert error.code == E.EINVAL and "same attribute" in error.desc
    assert (await error_of(backend.query_jobs((), 0, ResultLimit(), ALICE))).code == E.EINVAL


@pytest_twisted.ensureDeferred
async def test_index_rule(store):
    """A query must hit an index (§8.4); --no-index relaxes the rule."""
    status_only = ((C(Attr.STATUS, Op.EQUAL, JobState.DONE),),)
    backend = StoreQueryBackend(store, superusers=[CAROL])
    assert (await error_of(backend.query_jobs(status_only, 0, ResultLimit(), ALICE))).code \
        == E.NOINDEX
    assert (await error_of(backend.query_jobs(status_only, 0, ResultLimit(), CAROL))).code \
        == E.NOINDEX
    hits = [
        ((C(Attr.STATUS, Op.EQUAL, JobState.DONE),), (C(Attr.OWNER, Op.EQUAL, ALICE),)),
        ((C(Attr.DESTINATION, Op.EQUAL, "ce01.example.org:2119/jobmanager-pbs-short"),),),
        ((C(Attr.EXITCODE, Op.EQUAL, 0),), (C(Attr.PARENT, Op.EQUAL, P10.job_id),)),
        ((C(Attr.LASTUPDATETIME, Op.GREATER, 0),),),
    ]
    for query in hits:
        try:
            await backend.query_jobs(query, 0, ResultLimit(), ALICE)
        except Exception as e:  # ENOENT is fine: the index rule passed
            assert getattr(e, "code", None) == E.ENOENT, (query, e)
    su_exempt = StoreQueryBackend(store, superusers=[CAROL], no_index=1)
    answer = await su_exempt.query_jobs(status_only, 0, ResultLimit(), CAROL)
    assert answer.jobs
    assert (await error_of(su_exempt.query_jobs(status_only, 0, ResultLimit(), ALICE))).code \
        == E.NOINDEX
    off = StoreQueryBackend(store, no_index=2)
    answer = await off.query_jobs(status_only, 0, ResultLimit(), ALICE)
    assert [j for j, _ in answer.jobs] == [r.job_id for r in JOBS
                                           if r.status.state == JobState.DONE]
    assert [[(a, n) for a, n in index] for index in await off.indexed_attributes()] == \
        [[column] for column in store.indexed_attributes]


@pytest_twisted.ensureDeferred
async def test_soft_and_hard_limits(store):
    """queryRes NONE/unset: E2BIG over the limit; LIMITED: the first jobs and E2BIG;
    ALL: everything, with a single owner condition only."""
    backend = StoreQueryBackend(store)
    ids = [r.job_id for r in JOBS]
    for mode in (QueryResults.UNSET, QueryResults.NONE):
        error = await error_of(backend.query_jobs(OWNER_ALICE, 0, ResultLimit(2, mode), ALICE))
        assert error.code == E.E2BIG
    answer = await backend.query_jobs(OWNER_ALICE, 0, ResultLimit(2, QueryResults.LIMITED), ALICE)
    assert [j for j, _ in answer.jobs] == ids[:2] and answer.error[0] == E.E2BIG
    exact = await backend.query_jobs(OWNER_ALICE, 0, ResultLimit(len(ids)), ALICE)
    assert len(exact.jobs) == len(ids) and exact.error is None
    hard = StoreQueryBackend(store, hard_limits=HardLimits(events=0, jobs=3))
    assert (await error_of(hard.query_jobs(OWNER_ALICE, 0, ResultLimit(), ALICE))).code == E.E2BIG
    for soft in (0, 5):
        answer = await hard.query_jobs(OWNER_ALICE, 0, ResultLimit(soft, QueryResults.LIMITED),
                                       ALICE)
        assert [j for j, _ in answer.jobs] == ids[:3]
    answer = await hard.query_jobs(OWNER_ALICE, 0, ResultLimit(1, QueryResults.ALL), ALICE)
    assert [j for j, _ in answer.jobs] == ids
    two = OWNER_ALICE + ((C(Attr.EXITCODE, Op.EQUAL, 0),),)
    error = await error_of(hard.query_jobs(two, 0, ResultLimit(0, QueryResults.ALL), ALICE))
    assert error.code == E.EINVAL


@pytest_twisted.ensureDeferred
async def test_limit_counts_readable_jobs_only(backend):
    """Jobs skipped as unreadable do not use up the limit."""
    assert P09.job_id != JOBS[0].job_id
    answer = await backend.query_jobs(OWNER_ALICE, 0, ResultLimit(1, QueryResults.NONE), BOB)
    assert [j for j, _ in answer.jobs] == [P09.job_id] and answer.error is None


@pytest_twisted.ensureDeferred
async def test_flags(backend, store):
    """children ids, the thorough histogram from the subjobs' states, their states,
    the job's events, and no_states."""
    flags = (StatusFlag.CHILDREN | StatusFlag.CHILDHIST_THOROUGH | StatusFlag.CHILDSTAT
             | StatusFlag.HISTORY)
    view = await backend.job_status(P10.job_id, flags, ALICE)
    assert view.children == list(P10.children) and len(view.children) == 2
    assert view.children_hist == thorough_histogram(REPLAY.table, P10)
    assert [to_json(c.status) for c in view.children_states] == \
        [to_json(REPLAY.table.get(c).status) for c in P10.children]
    stored = await store.job_events(P10.job_id)
    assert [e.type_name for e in view.history] == [s.event.type_name for s in stored]
    assert [e.arrived for e in view.history] == [s.arrived for s in stored]
    assert all(e.arrived != NULL_TIME for e in view.history)
    plain = await backend.job_status(P10.job_id, StatusFlag.NONE, ALICE)
    assert plain.children is None and plain.children_hist is None and plain.history is None
    leaf = await backend.job_status(P09.job_id, flags, ALICE)
    assert leaf.children is None and leaf.children_hist == [0] * len(JobState)
    assert leaf.children_states == []
    answer = await backend.query_jobs(by_id(P10.job_id), StatusFlag.NO_STATES, ResultLimit(),
                                      ALICE)
    assert answer.jobs == [(P10.job_id, None)]


# --- events -----------------------------------------------------------------------------

def _ordered(events) -> bool:
    for a, b in zip(events, events[1:]):
        order = seqcode.compare(seqcode.parse(a.seqcode), seqcode.parse(b.seqcode))
        if order > 0 or (order == 0 and a.timestamp > b.timestamp):
            return False
    return True


@pytest_twisted.ensureDeferred
async def test_events_of_a_job_in_sequence_order(backend):
    """P07's delayed events come back in sequence-code order, with every event."""
    answer = await backend.query_events(by_id(P07.job_id), (), ResultLimit(), ALICE)
    got = answer.events
    want = REPLAY.table.events[P07.job_id]
    assert sorted(map(repr, [e.copy(arrived=NULL_TIME) for e in got])) == sorted(map(repr, want))
    assert _ordered(got)
    assert [e.seqcode for e in got] != [e.seqcode for e in want]  # the scenario reorders


@pytest_twisted.ensureDeferred
async def test_event_conditions(backend):
    """type, source, host, level, time and usertag conditions on stored events."""
    events = REPLAY.table.events[P09.job_id]
    job = by_id(P09.job_id)

    async def query(*ors):
        answer = await backend.query_events(job, ors, ResultLimit(), ALICE)
        return answer.events

    tags = await query((C(Attr.USERTAG, Op.EQUAL, "50%", name="PROGRESS"),))
    assert [(e.name, e.value) for e in tags] == [("PROGRESS", "50%")]
    by_type = await query((C(Attr.EVENT_TYPE, Op.EQUAL, events[-1].code),))
    assert {e.type_name for e in by_type} == {events[-1].type_name}
    app = await query((C(Attr.SOURCE, Op.EQUAL, Source.APPLICATION),),
                      (C(Attr.HOST, Op.EQUAL, "wn017.ce01.example.org"),))
    assert app and all(e.source == Source.APPLICATION for e in app)
    assert len(app) == sum(1 for e in events if e.source == Source.APPLICATION)
    t = events[5].timestamp.sec
    later = await query((C(Attr.TIME, Op.GREATER, t, name="Submitted"),))
    assert len(later) == sum(1 for e in events if e.timestamp.sec > t)
    mixed = await query((C(Attr.EVENT_TYPE, Op.EQUAL, events[0].code),
                         C(Attr.SOURCE, Op.EQUAL, Source.APPLICATION)))
    assert len(mixed) == 1 + len(app)
    below = await query((C(Attr.LEVEL, Op.LESS, int(Level.SYSTEM) + 1),))
    assert len(below) == len(events)
    error = await error_of(backend.query_events(job, ((C(Attr.LEVEL, Op.GREATER, 99),),),
                                                ResultLimit(), ALICE))
    assert error.code == E.ENOENT
    error = await error_of(backend.query_events(job, ((C(Attr.OWNER, Op.EQUAL, ALICE),),),
                                                ResultLimit(), ALICE))
    assert error.code == E.EINVAL


@pytest_twisted.ensureDeferred
async def test_event_access_limits_and_index(store, backend):
    """Events of readable jobs only; limits as for jobs; a time condition hits the index."""
    job = by_id(P09.job_id)
    assert (await error_of(backend.query_events(job, (), ResultLimit(), CAROL))).code == E.EPERM
    assert (await backend.query_events(job, (), ResultLimit(), BOB)).events
    answer = await backend.query_events(job, (), ResultLimit(3, QueryResults.LIMITED), ALICE)
    assert len(answer.events) == 3 and answer.error[0] == E.E2BIG
    assert (await error_of(backend.query_events(job, (), ResultLimit(3), ALICE))).code == E.E2BIG
    hard = StoreQueryBackend(store, hard_limits=HardLimits(events=4, jobs=0))
    assert (await error_of(hard.query_events(job, (), ResultLimit(), ALICE))).code == E.E2BIG
    everything = await hard.query_events(job, (), ResultLimit(0, QueryResults.ALL), ALICE)
    assert len(everything.events) == len(REPLAY.table.events[P09.job_id])
    done = ((C(Attr.STATUS, Op.EQUAL, JobState.CLEARED),),)
    assert (await error_of(backend.query_events(done, (), ResultLimit(), ALICE))).code \
        == E.NOINDEX
    timed = ((C(Attr.TIME, Op.GREATER, 0, name="Submitted"),),)
    answer = await backend.query_events(done, timed, ResultLimit(), ALICE)
    cleared = [r.job_id for r in JOBS if r.status.state == JobState.CLEARED]
    assert {e.job_id for e in answer.events} == set(cleared)
    error = await error_of(backend.query_events(done, timed, ResultLimit(0, QueryResults.ALL),
                                                ALICE))
    assert error.code == E.EINVAL


# --- the other operations ------------------------------------------------------------------

class _Counting:
    """The real store, counting the calls of its record-reading job query."""

    def __init__(self, store):
        self._store = store
        self.query_jobs_calls = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def query_jobs(self, *args, **kw):
        self.query_jobs_calls += 1
        return self._store.query_jobs(*args, **kw)


async def _answer(call):
    try:
        answer = await call
    except Exception as e:  # LBError: compared by code
        return ("error", getattr(e, "code", type(e)))
    return ([j for j, _ in answer.jobs], answer.error and answer.error[0])


@pytest_twisted.ensureDeferred
async def test_own_jobs_without_states_are_read_as_ids(store):
    """An owner query with no_states answers exactly as with states (ids, limits,
    E2BIG, ENOENT, access), reading no records when the caller may read every job
    of that owner (its own, or a super-user or noauth)."""
    counting = _Counting(store)
    backends = {"plain": StoreQueryBackend(counting),
                "hard": StoreQueryBackend(counting, hard_limits=HardLimits(events=0, jobs=3)),
                "super": StoreQueryBackend(counting, superusers=[CAROL]),
                "noauth": StoreQueryBackend(counting, noauth=True)}
    limits = [ResultLimit(), ResultLimit(2, QueryResults.NONE), ResultLimit(2, QueryResults.LIMITED),
              ResultLimit(len(JOBS)), ResultLimit(1, QueryResults.ALL)]
    mine = ((C(Attr.OWNER, Op.EQUAL, None),),)
    cases = [case for b in ("plain", "hard") for case in (
        (b, OWNER_ALICE, ALICE, True), (b, mine, ALICE, True),
        (b, ((C(Attr.OWNER, Op.EQUAL, ALICE.upper()),),), ALICE, True),
        (b, OWNER_ALICE, BOB, False),  # Bob reads one of Alice's jobs (ACL): records
        (b, ((C(Attr.OWNER, Op.EQUAL, BOB),),), BOB, True),  # none: ENOENT
        (b, OWNER_ALICE + ((C(Attr.EXITCODE, Op.EQUAL, 0),),), ALICE, False))]
    cases += [("super", OWNER_ALICE, CAROL, True), ("noauth", OWNER_ALICE, None, True),
              ("plain", OWNER_ALICE, CAROL, False)]
    for name, query, caller, by_ids in cases:
        backend = backends[name]
        for limit in limits:
            full = await _answer(backend.query_jobs(query, StatusFlag.NONE, limit, caller))
            before = counting.query_jobs_calls
            fast = await _answer(backend.query_jobs(query, StatusFlag.NO_STATES, limit, caller))
            assert fast == full, (name, query, caller, limit)
            if full[0] != "error" or full[1] != E.EINVAL:
                assert (counting.query_jobs_calls == before) == by_ids, (name, query, caller)
    answer = await backends["plain"].query_jobs(OWNER_ALICE, StatusFlag.NO_STATES, ResultLimit(),
                                                ALICE)
    assert [j for j, _ in answer.jobs] == [r.job_id for r in JOBS]
    assert all(view is None for _, view in answer.jobs)


@pytest_twisted.ensureDeferred
async def test_user_jobs_and_sequence_codes(backend, store):
    assert await backend.user_jobs(ALICE) == [r.job_id for r in JOBS]
    assert await backend.user_jobs(ALICE.upper()) == [r.job_id for r in JOBS]
    assert (await error_of(backend.user_jobs(None))).code == E.EPERM
    for rec in JOBS[:5]:
        assert await backend.sequence_code(rec.job_id, None, ALICE) == \
            await store.last_seqcode(rec.job_id)
    assert (await error_of(backend.sequence_code(JOBS[0].job_id, None, CAROL))).code == E.EPERM
    assert (await error_of(backend.sequence_code(new_id(), None, ALICE))).code == E.ENOENT


@pytest_twisted.ensureDeferred
async def test_acl_changes_through_the_store(tmp_path):
    """ChangeACL ADD gives READ, a DENY entry takes it away, REMOVE of it gives it back."""
    job = new_id()
    store = await loaded_store(tmp_path / "acl.sqlite", reactor, [])
    backend = StoreQueryBackend(store)

    def change(user_id, kind, permission_type, operation, n):
        return make_event(
            "ChangeACL", timestamp=Timeval(1_700_000_100 + n, 0),
            host="ui.example.org", source=Source.USER_INTERFACE, job_id=job, user=ALICE,
            seqcode=f"UI={n:06d}:NS=0000000001:WM=000000:BH=0000000000:JSS=000000:LM=000000:"
                    "LRMS=000000:APP=000000:LBS=000000",
            user_id=user_id, user_id_type=ENUMS["ChangeACLUserIdType"].from_text(kind),
            permission=ENUMS["ChangeACLPermission"].from_text("READ"),
            permission_type=ENUMS["ChangeACLPermissionType"].from_text(permission_type),
            operation=ENUMS["ChangeACLOperation"].from_text(operation))

    try:
        await store.accept_events([regjob(job, ALICE)])
        assert (await error_of(backend.job_status(job, 0, CAROL))).code == E.EPERM
        await store.accept_events([change(CAROL, "DN", "ALLOW", "ADD", 1)])
        await backend.job_status(job, 0, CAROL)
        await store.accept_events([change(CAROL, "DN", "DENY", "ADD", 2)])
        assert (await error_of(backend.job_status(job, 0, CAROL))).code == E.EPERM
        await store.accept_events([change(CAROL, "DN", "DENY", "REMOVE", 3)])
        await backend.job_status(job, 0, CAROL)
    finally:
        await store.stop()


@pytest_twisted.ensureDeferred
async def test_a_stopped_store_is_unavailable(tmp_path):
    """Store errors reach the client as EAGAIN, not as a crash."""
    store = await loaded_store(tmp_path / "gone.sqlite", reactor, [])
    backend = StoreQueryBackend(store)
    await store.stop()
    error = await error_of(backend.job_status(new_id(), 0, ALICE))
    assert error.code == E.EAGAIN
