"""Purge, dump and zombies in both job stores (formats.md §6.8-6.9)."""

from __future__ import annotations

import pytest
import pytest_twisted

from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import ENUMS, JobState, Source
from lbtx.server.store.interfaces import UnknownJobError
from lbtx.server.store.maintenance_sql import NEVER
from lbtx.timeval import Timeval

from test_store_contract import backend, store  # noqa: F401  (the two stores)

ALICE = "/DC=org/DC=example/CN=Alice"
PREFIX = "https://lb.example.org:9000/"
DAY = 86400
T0 = Timeval(1_700_000_000, 0)
SEQ = ("UI=000000:NS=0000000001:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:"
       "APP=000000:LBS=000000")


def reg(job, t=T0, jobtype="SIMPLE", nsubjobs=0, arrived=None):
    return make_event("RegJob", timestamp=t, host="ui", source=Source.USER_INTERFACE,
                      job_id=job, seqcode=SEQ, user=ALICE, ns="ns",
                      jobtype=ENUMS["RegJobJobtype"].from_text(jobtype), nsubjobs=nsubjobs,
                      arrived=arrived)


def clear(job, t, arrived=None):
    return make_event("Clear", timestamp=t, host="wms", source=Source.USER_INTERFACE,
                      job_id=job, user=ALICE, reason=ENUMS["ClearReason"].from_text("USER"),
                      seqcode=SEQ.replace("UI=000000", "UI=000005"), arrived=arrived)


def job(name: str, prefix: str = PREFIX) -> JobId:
    return JobId.parse(f"{prefix}maint{name:0>20}")


@pytest_twisted.ensureDeferred
async def test_purge_named_jobs_leaves_zombies(store):
    a, b = job("a"), job("b")
    await store.accept_events([reg(a), clear(a, Timeval(T0.sec + 60, 0)), reg(b)])
    events_a = [s.line for s in await store.job_events(a)]
    listed, lines = await store.purge([str(a)], T0.sec + 100, really=False, dump=True)
    assert listed == [str(a)] and [ln for _, _, ln in lines] == events_a
    assert (await store.job_status(a)).status.state == JobState.CLEARED   # dry run
    purged, lines = await store.purge([str(a), str(job("nosuch"))], T0.sec + 100, dump=True)
    assert purged == [str(a)] and len(lines) == 2
    with pytest.raises(UnknownJobError):
        await store.job_status(a)
    with pytest.raises(UnknownJobError):
        await store.job_events(a)
    assert await store.is_zombie(a) and not await store.is_zombie(b)
    assert (await store.job_status(b)).status.state == JobState.SUBMITTED
    # a purged job registered again is alive (and loading a dump relies on it)
    await store.accept_events([reg(a)])
    assert (await store.job_status(a)).status.state == JobState.SUBMITTED


@pytest_twisted.ensureDeferred
async def test_purging_a_collection_takes_its_subjobs(store):
    parent = job("coll")
    await store.accept_events([reg(parent, jobtype="COLLECTION", nsubjobs=3)])
    children = [c.job_id for c in await store.children(parent)]
    assert len(children) == 3
    purged, _ = await store.purge([str(parent)], T0.sec + 10)
    assert set(purged) == {str(parent), *map(str, children)}
    for c in children:
        assert await store.is_zombie(c)


@pytest_twisted.ensureDeferred
async def test_candidates_by_age(store):
    old_cleared, new_cleared = job("oc"), job("nc")
    old_submitted, never, foreign = job("os"), job("nv"), job("f", "https://other.org:9000/")
    coll = job("coll2")
    events = [reg(old_cleared), clear(old_cleared, Timeval(T0.sec + 1, 0)),
              reg(new_cleared, t=Timeval(T0.sec + 5 * DAY, 0)),
              clear(new_cleared, Timeval(T0.sec + 5 * DAY, 1)),
              reg(old_submitted), reg(never), clear(never, Timeval(T0.sec + 1, 0)),
              reg(foreign), clear(foreign, Timeval(T0.sec + 1, 0)),
              reg(coll, jobtype="COLLECTION", nsubjobs=2)]
    await store.accept_events(events)
    now = T0.sec + 6 * DAY
    got = await store.purge_candidates(PREFIX, now)
    # Cleared after 3 days; Submitted only after 31; another server's job never;
    # the collection's subjobs are not listed on their own (and are not old enough)
    assert str(old_cleared) in got and str(never) in got
    assert str(new_cleared) not in got and str(old_submitted) not in got
    assert str(foreign) not in got and not any("coll2" in j for j in got)
    got = await store.purge_candidates(PREFIX, now, {JobState.CLEARED: NEVER,
                                                     JobState.SUBMITTED: DAY})
    assert str(old_cleared) not in got and str(old_submitted) in got
    assert str(coll) in got            # the collection and every subjob qualify
    got = await store.purge_candidates(PREFIX, now, {JobState.SUBMITTED: DAY,
                                                     JobState.WAITING: NEVER})
    assert str(coll) in got


@pytest_twisted.ensureDeferred
async def test_dump_by_arrival_interval(store):
    a, b = job("da"), job("db")
    await store.accept_events([reg(a, arrived=Timeval(T0.sec + 10, 5)),
                               reg(b, arrived=Timeval(T0.sec + 20, 0)),
                               clear(a, Timeval(T0.sec + 25, 0), arrived=Timeval(T0.sec + 30, 0))])
    everything = await store.dump_events(PREFIX, T0.sec, T0.sec + 100)
    assert [(sec, usec) for sec, usec, _ in everything] == [
        (T0.sec + 10, 5), (T0.sec + 20, 0), (T0.sec + 30, 0)]
    assert "DG.EVNT=\"Clear\"" in everything[-1][2]
    assert len(await store.dump_events(PREFIX, T0.sec + 10, T0.sec + 20)) == 1   # (from, to]
    assert await store.dump_events("https://other.org:9000/", T0.sec, T0.sec + 100) == []


@pytest_twisted.ensureDeferred
async def test_server_state(store):
    assert await store.server_state("dump_end") is None
    await store.set_server_state("dump_end", "123")
    await store.set_server_state("dump_end", "456")
    assert await store.server_state("dump_end") == "456"


@pytest_twisted.ensureDeferred
async def test_paging(store, monkeypatch):
    """Pages smaller than the data: every event dumped once in order, every
    candidate found, every job of a chunk purged."""
    from lbtx.server.store import maintenance_sql, maintenance_store
    monkeypatch.setattr(maintenance_sql, "PAGE", 3)
    monkeypatch.setattr(maintenance_store, "PURGE_CHUNK", 4)
    jobs = [job(f"p{i}") for i in range(11)]
    await store.accept_events([reg(j, arrived=Timeval(T0.sec + 1 + i // 2, i)) for i, j in
                               enumerate(jobs)]
                              + [clear(j, Timeval(T0.sec + 50, 0), arrived=Timeval(T0.sec + 99, 0))
                                 for j in jobs])
    dumped = await store.dump_events(PREFIX, T0.sec, T0.sec + 1000)
    assert len(dumped) == 22 and dumped == sorted(dumped, key=lambda x: (x[0], x[1]))
    assert len({line for _, _, line in dumped}) == 22
    got = await store.purge_candidates(PREFIX, T0.sec + 10 * DAY)
    assert sorted(got) == sorted(map(str, jobs))
    purged, lines = await store.purge(got, T0.sec + 10 * DAY, dump=True)
    assert sorted(purged) == sorted(got) and len(lines) == 22
    assert await store.purge_candidates(PREFIX, T0.sec + 10 * DAY) == []


@pytest_twisted.ensureDeferred
async def test_purge_notifies_the_move_to_purged(store):
    """§9.5: a purge matches registrations with the new state Purged, in its
    transaction; terminal_states registrations get it only when the job was not
    already in a terminal state; a dry run queues nothing."""
    from lbtx.server.notify.model import Flags, Registration
    a, b = job("na"), job("nb")
    later = T0.sec + 100 * DAY
    await store.accept_events([reg(a), reg(b), clear(b, Timeval(T0.sec + 5, 0))])
    every = Registration("https://lb.example.org:9000/NOTIF:purgeAll1", ALICE, None, later,
                         (), (str(a), str(b)), Flags.NONE)
    terminal = Registration("https://lb.example.org:9000/NOTIF:purgeTerm1", ALICE, None, later,
                            (), (str(a), str(b)), Flags.TERMINAL_STATES)
    await store.register(every)
    await store.register(terminal)
    await store.purge([str(a), str(b)], T0.sec + 10, really=False)
    assert await store.messages(every.notif_id, after_seq=0, limit=10) == []
    await store.purge([str(a), str(b)], T0.sec + 10)
    got = await store.messages(every.notif_id, after_seq=0, limit=10)
    assert sorted(m.job_id for m in got) == sorted([str(a), str(b)])
    assert all(m.document["status"]["state"] == "Purged" for m in got)
    assert [m.seq for m in got] == [1, 2]
    term = await store.messages(terminal.notif_id, after_seq=0, limit=10)
    assert [m.job_id for m in term] == [str(a)]      # b was Cleared already
