"""Job queries through both stores: conditions on indexed columns (evaluated by
the database), the others (evaluated in Python after fetching), limits, paging,
order by unique id, user jobs; the oracle is job_matches over lbtx replay's
records."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from lbtx import subject
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op, QueryError, job_matches
from lbtx.schema import JobState, StatJobtype
from lbtx.server.store import reads
from lbtx.server.store.conditions_sql import where_clause
from lbtx.server.store.sql import POSTGRES, SQLITE
from lbtx.timeval import Timeval

from store_support import Backend, parse, replayed, statuses, workload
from test_store_contract import ALICE, BOB, regjob, running, usertag

C = Condition
SCENARIO_USER = "/DC=org/DC=example/O=Example Grid/CN=Alice Tester"


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "lbtx.sqlite"), reactor)
    return Backend("postgres", request.getfixturevalue("pg_dsn"), reactor)


def _population():
    """Every scenario once, plus jobs of two owners with user tags."""
    lines = [ln for family in workload(1) for ln in family]
    events = [parse(ln) for ln in lines]
    for i in range(6):
        job = JobId.generate("lb.example.org:9000")
        owner = ALICE if i % 2 else BOB
        t = Timeval(1_700_000_000 + 100 * i, 0)
        events.append(regjob(job, owner, t=t))
        if i % 3:
            events.append(running(job, owner, t=Timeval(t.sec + 10, 0)))
        events.append(usertag(job, "colour", ["red", "green"][i % 2], Timeval(t.sec + 20, 0)))
    return events


@pytest_twisted.async_yield_fixture
async def loaded(backend):
    """A started store holding the population, and lbtx replay's records of it."""
    events = _population()
    store = backend.make()
    await store.start()
    await store.accept_events(events)
    want = replayed([])
    for ev in events:
        want.feed(ev)
    yield store, sorted(want.jobs(), key=lambda r: (r.job_id.unique, str(r.job_id)))
    await store.stop()


def _queries(records):
    """Queries over every indexed attribute and operator, and over some that are not."""
    some = records[3]
    st = some.status
    dag = next(r for r in records if r.status.jobtype == StatJobtype.DAG)
    times = sorted(r.status.last_update_time.sec for r in records)
    mid = times[len(times) // 2]
    enter = sorted(r.status.state_enter_time.sec for r in records)[len(records) // 3]
    proxy_alice = ALICE.lower() + "/CN=proxy"
    return {
        "jobid=": (((C(Attr.JOBID, Op.EQUAL, some.job_id),),)),
        "jobid<>": ((C(Attr.JOBID, Op.UNEQUAL, some.job_id),),),
        "jobid>": ((C(Attr.JOBID, Op.GREATER, some.job_id),),),
        "jobid within": ((C(Attr.JOBID, Op.WITHIN, records[2].job_id, records[8].job_id),),),
        "jobid or": ((C(Attr.JOBID, Op.EQUAL, records[0].job_id),
                      C(Attr.JOBID, Op.EQUAL, records[5].job_id)),),
        "parent=": ((C(Attr.PARENT, Op.EQUAL, dag.job_id),),),
        "parent<>": ((C(Attr.PARENT, Op.UNEQUAL, dag.job_id),),),
        "owner=": ((C(Attr.OWNER, Op.EQUAL, BOB),),),
        "owner= normalised": ((C(Attr.OWNER, Op.EQUAL, proxy_alice),),),
        "owner<>": ((C(Attr.OWNER, Op.UNEQUAL, BOB),),),
        "status=": ((C(Attr.STATUS, Op.EQUAL, JobState.DONE),),),
        "status or": ((C(Attr.STATUS, Op.EQUAL, JobState.RUNNING),
                       C(Attr.STATUS, Op.EQUAL, JobState.ABORTED)),),
        "status<": ((C(Attr.STATUS, Op.LESS, JobState.DONE),),),
        "status>": ((C(Attr.STATUS, Op.GREATER, JobState.DONE),),),
        "status within": ((C(Attr.STATUS, Op.WITHIN, JobState.WAITING, JobState.RUNNING),),),
        "status<>": ((C(Attr.STATUS, Op.UNEQUAL, JobState.CLEARED),),),
        "destination=": ((C(Attr.DESTINATION, Op.EQUAL, st.destination or "x"),),),
        "destination<>": ((C(Attr.DESTINATION, Op.UNEQUAL, "ce01.example.org:2119/jobmanager-pbs-short"),),),
        "location=": ((C(Attr.LOCATION, Op.EQUAL, "none"),),),
        "location<>": ((C(Attr.LOCATION, Op.UNEQUAL, "none"),),),
        "networkserver=": ((C(Attr.NETWORK_SERVER, Op.EQUAL, st.network_server or "x"),),),
        "networkserver<>": ((C(Attr.NETWORK_SERVER, Op.UNEQUAL, st.network_server or "x"),),),
        "lastupdatetime>": ((C(Attr.LASTUPDATETIME, Op.GREATER, mid),),),
        "lastupdatetime<": ((C(Attr.LASTUPDATETIME, Op.LESS, mid),),),
        "lastupdatetime=": ((C(Attr.LASTUPDATETIME, Op.EQUAL, mid),),),
        "lastupdatetime within": ((C(Attr.LASTUPDATETIME, Op.WITHIN, times[2], times[-3]),),),
        "lastupdatetime<>": ((C(Attr.LASTUPDATETIME, Op.UNEQUAL, mid),),),
        "stateentertime>": ((C(Attr.STATEENTERTIME, Op.GREATER, enter),),),
        "usertag=": ((C(Attr.USERTAG, Op.EQUAL, "red", name="colour"),),),
        "usertag= other case": ((C(Attr.USERTAG, Op.EQUAL, "green", name="COLOUR"),),),
        "usertag<>": ((C(Attr.USERTAG, Op.UNEQUAL, "red", name="colour"),),),
        "usertag scenario": ((C(Attr.USERTAG, Op.EQUAL, "simulation", name="phase"),),),
        "donecode (python)": ((C(Attr.DONECODE, Op.EQUAL, 1),),),
        "jobtype (python)": ((C(Attr.JOBTYPE, Op.EQUAL, StatJobtype.SIMPLE),),),
        "time in state (python)": ((C(Attr.TIME, Op.GREATER, 1_331_000_000, name="Running"),),),
        "exitcode (python)": ((C(Attr.EXITCODE, Op.EQUAL, 0),),),
        "changed (always true)": ((C(Attr.STATUS, Op.CHANGED, JobState.DONE),),),
        "and of indexed": ((C(Attr.OWNER, Op.EQUAL, SCENARIO_USER),),
                           (C(Attr.STATUS, Op.EQUAL, JobState.DONE),
                            C(Attr.STATUS, Op.EQUAL, JobState.CLEARED)),
                           (C(Attr.LASTUPDATETIME, Op.GREATER, times[1]),)),
        "and mixed": ((C(Attr.STATUS, Op.EQUAL, JobState.DONE),),
                      (C(Attr.DONECODE, Op.EQUAL, 0),)),
        "nothing": ((C(Attr.OWNER, Op.EQUAL, "/CN=nobody"),),),
    }


def _expected(records, query, limit=None):
    out = [r for r in records if job_matches(r.status, query)]
    return out[:limit] if limit is not None else out


@pytest_twisted.ensureDeferred
async def test_queries_match_python_evaluation(loaded):
    """Every query answers exactly the records job_matches selects, in unique-id order."""
    store, records = loaded
    failures = {}
    for name, query in _queries(records).items():
        got = await store.query_jobs(query, limit=None)
        want = _expected(records, query)
        if [str(r.job_id) for r in got] != [str(r.job_id) for r in want]:
            failures[name] = (len(got), len(want))
        elif statuses(got) != statuses(want):
            failures[name] = "statuses differ"
    assert failures == {}
    assert len(_expected(records, _queries(records)["owner="])) == 3  # the population is varied


@pytest.mark.parametrize("page", [2, 3, 500])
@pytest_twisted.ensureDeferred
async def test_limits_and_paging(loaded, monkeypatch, page):
    """Limits cut the ordered result; conditions left to Python page through the
    database without losing or repeating jobs."""
    monkeypatch.setattr(reads, "QUERY_PAGE", page)
    store, records = loaded
    queries = _queries(records)
    for name in ("donecode (python)", "jobtype (python)", "and mixed", "status<>", "usertag<>"):
        query = queries[name]
        for limit in (None, 1, 2, 5, 1000):
            got = await store.query_jobs(query, limit=limit)
            assert [r.job_id for r in got] == [r.job_id for r in _expected(records, query, limit)], \
                (name, limit)
    assert await store.query_jobs(queries["status<>"], limit=0) == []


@pytest_twisted.ensureDeferred
async def test_user_jobs(loaded):
    """user_jobs finds the jobs of an owner, however the subject is spelled."""
    store, records = loaded
    bob = await store.user_jobs(BOB)
    assert [r.job_id for r in bob] == [r.job_id for r in records if subject.same(r.owner, BOB)]
    assert len(bob) == 3
    spelled = await store.user_jobs(BOB.upper() + "/CN=proxy/CN=proxy")
    assert [r.job_id for r in spelled] == [r.job_id for r in bob]
    assert len(await store.user_jobs(BOB, limit=2)) == 2
    assert await store.user_jobs("/CN=nobody") == []


@pytest_twisted.ensureDeferred
async def test_user_job_ids(loaded):
    """user_job_ids gives the ids of user_jobs' records, in the same order, and
    honours the same subject spelling and limits."""
    store, records = loaded
    for owner in (BOB, ALICE, SCENARIO_USER, BOB.upper() + "/CN=proxy/CN=proxy"):
        want = [r.job_id for r in await store.user_jobs(owner)]
        got = await store.user_job_ids(owner)
        assert got == want and all(isinstance(j, JobId) for j in got), owner
    assert len(await store.user_job_ids(SCENARIO_USER)) > 3
    assert await store.user_job_ids(BOB, limit=2) == (await store.user_job_ids(BOB))[:2]
    assert await store.user_job_ids(BOB, limit=0) == []
    assert await store.user_job_ids("/CN=nobody") == []


@pytest_twisted.ensureDeferred
async def test_unresolved_owner_is_an_error(loaded):
    """An owner NULL condition (the caller) must be resolved by the front end."""
    store, _ = loaded
    with pytest.raises(QueryError):
        await store.query_jobs(((C(Attr.OWNER, Op.EQUAL, None),),), limit=None)


def test_indexed_conditions_go_to_sql():
    """Conditions on indexed columns are translated; the rest are left to Python."""
    job = JobId.generate("lb.example.org:9000")
    for d in (SQLITE, POSTGRES):
        clauses, params, exact = where_clause(d, (
            (C(Attr.JOBID, Op.EQUAL, job),),
            (C(Attr.STATUS, Op.WITHIN, JobState.SUBMITTED, JobState.DONE),),
            (C(Attr.OWNER, Op.EQUAL, ALICE + "/CN=proxy"),),
            (C(Attr.USERTAG, Op.EQUAL, "red", name="Colour"),),
            (C(Attr.LASTUPDATETIME, Op.UNEQUAL, 5),),
        ))
        assert exact and len(clauses) == 5
        assert params == [str(job), int(JobState.SUBMITTED), int(JobState.DONE),
                          subject.key(ALICE), "colour", "red", 5]
        _, _, exact = where_clause(d, ((C(Attr.DONECODE, Op.EQUAL, 0),),))
        assert not exact
        _, _, exact = where_clause(d, ((C(Attr.USERTAG, Op.LESS, "x", name="a"),),))
        assert not exact


def test_one_page_queries():
    """A query with a disjunction of fewer job ids than a page is read in one
    statement; any other may need several pages."""
    a, b = JobId.generate("lb.example.org:9000"), JobId.generate("lb.example.org:9000")
    ids = ((C(Attr.JOBID, Op.EQUAL, a), C(Attr.JOBID, Op.EQUAL, b)),)
    assert reads.one_page(ids, None)
    assert reads.one_page(ids + ((C(Attr.EXITCODE, Op.EQUAL, 0),),), None)
    assert reads.one_page(ids, 3) and not reads.one_page(ids, 2)  # the page is the limit
    assert reads.one_page(ids + ((C(Attr.EXITCODE, Op.EQUAL, 0),),), 2)  # not exact: 500
    assert not reads.one_page(((C(Attr.JOBID, Op.EQUAL, a), C(Attr.OWNER, Op.EQUAL, BOB)),), None)
    assert not reads.one_page(((C(Attr.JOBID, Op.GREATER, a),),), None)
    assert not reads.one_page(((C(Attr.OWNER, Op.EQUAL, BOB),),), None)
    many = (tuple(C(Attr.JOBID, Op.EQUAL, JobId.generate("lb.example.org:9000"))
                  for _ in range(reads.QUERY_PAGE)),)
    assert not reads.one_page(many, None)
    assert reads.one_page((many[0][:-1],), None)


@pytest_twisted.ensureDeferred
async def test_queries_by_job_ids(loaded):
    """Queries naming job ids (one statement on PostgreSQL) find exactly those jobs,
    with the other conditions and limits applied."""
    store, records = loaded
    some = records[::3]
    query = (tuple(C(Attr.JOBID, Op.EQUAL, r.job_id) for r in some),)
    assert reads.one_page(query, None)
    got = await store.query_jobs(query, limit=None)
    assert [r.job_id for r in got] == [r.job_id for r in some]
    assert statuses(got) == statuses(some)
    assert [r.job_id for r in await store.query_jobs(query, limit=2)] == \
        [r.job_id for r in some[:2]]
    narrowed = query + ((C(Attr.OWNER, Op.EQUAL, BOB),),)
    assert [r.job_id for r in await store.query_jobs(narrowed, limit=None)] == \
        [r.job_id for r in some if subject.same(r.owner, BOB)]
    unknown = ((C(Attr.JOBID, Op.EQUAL, JobId.generate("lb.example.org:9000")),),)
    assert await store.query_jobs(unknown, limit=None) == []
