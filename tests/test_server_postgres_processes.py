"""Real ``twistd lb-server`` processes on PostgreSQL (issue 3, "done when").

**Two processes, one database.** Two lb-server processes share one PostgreSQL
database and are fed the events of the same jobs at the same time, each over its
own intake connections: every public scenario plus the recorded WMS streams of
``shared/data/ulm`` (a few hundred jobs). Each job family (a job with its
subjobs) is cut into small batches; in the *split* variant each batch goes to one
process picked at random, in the *both* variant (with ``--lock-slots 4``, so
unrelated jobs collide on locks) every batch goes to both processes at once, so
that the two race for the same jobs' locks. A family's next batch is sent once the
previous one is answered, so every job sees its events in the recorded order
(states are incremental in arrival order, state-machines.md §1.3), while all
families are in flight together. A single lb-server process on a separate fresh
database is fed the same events (each family in order, in batches cut its own way).
Every job's full view, read back through the JSON API of each process and the
legacy protocol of one, must be the same in all three (but for arrival times),
and the statuses must equal ``lbtx replay`` of the events; each event is stored
exactly once (in the *both* variant one process answers ``stored`` and the other
``duplicate``). A process started with another ``--lock-slots`` than one already
running on the database refuses to start.

**PostgreSQL restarted under a running lb-server.** A client keeps sending
batches (retrying a refused batch after a pause, as the interlogger does) while
PostgreSQL is stopped (``pg_ctl stop -m fast``, and ``-m immediate``) and started
again. While it is down every batch is refused with a retryable error, never
acknowledged (and a job query answers 503 EAGAIN); lb-server reconnects by
itself (same process), intake resumes, its log says the connection was lost and
re-established (with no unhandled tracebacks from the database driver), and
afterwards every acknowledged event is stored (re-sending all events answers
``duplicate`` for each) and the statuses equal ``lbtx replay``.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint

from conftest import SCENARIOS
from lbtx import ulm
from lbtx.acceptance import MemoryJobTable
from lbtx.cli.environment import Address
from lbtx.cli.store_client import send_events
from lbtx.protocols.box.client import BoxRemoteError, connect_box
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.replay import Replay
from lbtx.status import to_json
from pg_server_support import json_get, json_views, legacy_statuses, start_pg_server
from pgcluster import PgCluster, find_bindir
from scenario_support import load, scenario_lines
from store_support import workload
from ulm_stream_support import copies

SERVER = "lb.example.org:9000"
#: intake connections per process
CONNECTIONS = 3
#: the largest batch a family is cut into
MAX_CHUNK = 24
#: fields a jobStat element does not carry (or only on request)
NOT_IN_JOBSTAT = {"user_fqans", "jdl_classad", "history", "children", "children_states"}


def _families() -> list[list[str]]:
    """Every public scenario (one family each) and one stamped copy of each
    recorded stream."""
    fams = [scenario_lines(load(p)) for p in sorted(SCENARIOS.glob("*.json"))]
    return fams + copies(SERVER, 1)


def _replay(families):
    """``lbtx replay`` of the families (one after the other) and the result each
    line gets, by (family, line) position."""
    replay = Replay()
    replay.table = MemoryJobTable(keep_events=True)
    results = []
    for fam in families:
        results.append([Result.from_delivery(replay.feed(ulm.parse(ln, require_user=True))
                                             .outcome.delivery).code for ln in fam])
    return replay, results


def _plan(families, rng: random.Random, targets):
    """Each family cut into batches of 1..MAX_CHUNK lines: ``[(start, end, who)]``
    per family, ``who`` drawn from ``targets`` (tuples of process indices)."""
    plan = []
    for fam in families:
        cuts, i = [], 0
        while i < len(fam):
            n = rng.randint(1, MAX_CHUNK)
            cuts.append((i, min(i + n, len(fam)), rng.choice(targets)))
            i += n
        plan.append(cuts)
    return plan


def _encode(lines):
    return [ln.rstrip("\n").encode("utf-8") for ln in lines]


async def _clients(server, count=CONNECTIONS):
    return [await connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", server.store_port),
                              clock=reactor, request_timeout=60) for _ in range(count)]


async def _feed(families, plan, clients):
    """Send every family's batches (a family's next batch once the last one is
    answered, all families at once); return ``got[family][line] -> {process: code}``."""
    got = [[{} for _ in fam] for fam in families]

    async def one(f):
        for start, end, who in plan[f]:
            answers = await defer.gatherResults(
                [clients[p][f % len(clients[p])].send_batch(_encode(families[f][start:end]))
                 for p in who], consumeErrors=True)
            for p, results in zip(who, answers):
                for i, r in enumerate(results):
                    got[f][start + i][p] = r.code

    await defer.gatherResults([defer.ensureDeferred(one(f)) for f in range(len(families))],
                              consumeErrors=True)
    return got


def _close(clients):
    for group in clients:
        for c in group:
            c.transport.loseConnection()


def _comparable(view: dict) -> dict:
    """A JSON API view without the arrival times of its events (the one thing two
    runs of the same events differ in)."""
    history = [{k: v for k, v in e.items() if k != "arrived"} for e in view.get("history", ())]
    return dict(view, history=history)


def _json_views(server, job_ids) -> dict:
    """job id -> its JSON API view (children, histogram, history) from ``server``."""
    return {j: _comparable(v) for j, v in
            json_views(server.query_port, job_ids, flags="children,childhist,history").items()}


def _legacy_views(server, job_ids) -> dict:
    """job id -> its legacy jobStat status from ``server``, as JSON."""
    return {j: to_json(st) for j, st in legacy_statuses(server.query_port, job_ids).items()}


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in NOT_IN_JOBSTAT}


@dataclass
class Reference:
    """The events, what lbtx replay makes of them, and a single process's answers
    and views after it was fed them (each family in batches, in order)."""

    families: list
    replay: Replay
    want: list          #: [family][line] -> the ResultCode replay gives
    jobs: list          #: replay's job records, by job id
    answers: list       #: [family][line] -> the single process's ResultCode
    json: dict          #: job id -> its JSON API view
    legacy: dict        #: job id -> its legacy jobStat status, as JSON


@pytest.fixture(scope="module")
def reference(tmp_path_factory, pg_cluster) -> Reference:
    """One lb-server process on its own fresh database, fed every family in order
    (one blocking connection), read back, and stopped."""
    families = _families()
    replay, want = _replay(families)
    jobs = sorted(replay.jobs(), key=lambda r: str(r.job_id))
    plan = _plan(families, random.Random("single"), [(0,)])
    single = start_pg_server(tmp_path_factory.mktemp("single"), "single",
                             pg_cluster.create_database())
    try:
        address = Address("127.0.0.1", single.store_port)
        answers = []
        for fam, cuts in zip(families, plan):
            answers.append([r.code for start, end, _ in cuts
                            for r in send_events(address, _encode(fam[start:end]), timeout=30)])
        ids = [r.job_id for r in jobs]
        views, legacy = _json_views(single, ids), _legacy_views(single, ids)
    finally:
        single.stop()
    return Reference(families, replay, want, jobs, answers, views, legacy)


def test_a_single_process_ends_as_replay(reference):
    """The reference itself: a single lb-server process on PostgreSQL answers every
    event and ends with every status as lbtx replay (through both front ends)."""
    ref = reference
    assert len(ref.jobs) > 300
    assert ref.answers == ref.want
    for rec in ref.jobs:
        j = str(rec.job_id)
        assert ref.json[j]["status"] == to_json(rec.status), j
        assert ref.json[j]["children"] == [str(c) for c in rec.children], j
        assert len(ref.json[j]["history"]) == len(ref.replay.table.events.get(rec.job_id, ())), j
        assert _public(ref.legacy[j]) == _public(to_json(rec.status)), j


@pytest.mark.parametrize("variant,lock_slots", [("split", None), ("both", 4)])
@pytest_twisted.ensureDeferred
async def test_two_processes_on_one_database_end_as_one(tmp_path, pg_cluster, reference,
                                                        variant, lock_slots):
    """Two lb-server processes fed the interleaved batches of the same jobs end with
    exactly the views of a single process fed the same events; every event is
    stored once."""
    ref = reference
    families = ref.families
    targets = [(0,), (1,)] if variant == "split" else [(0, 1)]
    plan = _plan(families, random.Random(variant), targets)
    extra = ["--lock-slots", str(lock_slots)] if lock_slots else []
    shared = pg_cluster.create_database()
    a = start_pg_server(tmp_path, "a", shared, *extra)
    b = start_pg_server(tmp_path, "b", shared, *extra)
    try:
        pair = [await _clients(a), await _clients(b)]
        got = await _feed(families, plan, pair)
        _close(pair)
        for f, fam in enumerate(families):
            for i in range(len(fam)):
                expected = ref.want[f][i]
                codes = sorted(c.value for c in got[f][i].values())
                if variant == "split":
                    assert codes == [expected.value], (f, i, fam[i][:200])
                elif expected is ResultCode.STORED:  # one stores it, the other finds it
                    assert codes == ["duplicate", "stored"], (f, i, fam[i][:200])
                else:
                    assert codes == [expected.value] * 2, (f, i, fam[i][:200])

        ids = [r.job_id for r in ref.jobs]
        json_a = _json_views(a, ids)
        json_b = _json_views(b, ids)
        legacy = _legacy_views(a if variant == "split" else b, ids)
        for rec in ref.jobs:
            j = str(rec.job_id)
            assert json_a[j] == ref.json[j], j
            assert json_b[j] == ref.json[j], j
            assert legacy[j] == ref.legacy[j], j
    finally:
        a.stop()
        b.stop()


def test_a_process_with_other_lock_slots_does_not_start(tmp_path, pg_cluster):
    """lb-server with --lock-slots 4 on a database that a running lb-server with the
    default 1024 slots uses exits with the reason (their job locks would not
    exclude each other); the running one goes on serving."""
    shared = pg_cluster.create_database()
    a = start_pg_server(tmp_path, "a", shared)
    try:
        with pytest.raises(AssertionError) as e:
            start_pg_server(tmp_path, "b", shared, "--lock-slots", "4")
        assert "lb-server exited" in str(e.value)
        assert "--lock-slots 1024, this one with 4" in (tmp_path / "b.log").read_text()
        (line,) = workload(1)[0][:1]
        results = send_events(Address("127.0.0.1", a.store_port), _encode([line]), timeout=30)
        assert [r.code for r in results] == [ResultCode.STORED]
        job_id = ulm.parse(line, require_user=True).job_id
        assert json_views(a.query_port, [job_id])[str(job_id)]["status"]["state"] == "Submitted"
    finally:
        a.stop()


# --- PostgreSQL restarted under a running lb-server ------------------------------------

@pytest.fixture(scope="module")
def private_cluster():
    """A PostgreSQL server of this module's own, which its tests stop and start."""
    if os.environ.get("LBTX_TEST_POSTGRES"):
        pytest.skip("the tests do not run this PostgreSQL server")
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (set LBTX_PG_BIN)")
    cluster = PgCluster(bindir).start()
    try:
        yield cluster
    finally:
        if not cluster.running:
            cluster.resume()
        cluster.stop()


#: events per batch of the restart test
RESTART_BATCH = 5
#: pause before a refused batch is sent again, seconds
RETRY_PAUSE = 0.1
#: pause after an acknowledged batch, seconds (a steady client, so that intake is
#: still going on while the database stops and starts)
PACE = 0.02
#: how long the database stays down, seconds
DOWN_FOR = 1.5


class _Sender:
    """Sends batches one after the other over one connection (a new one when it is
    lost), sending a refused batch again after a pause, and records what happened."""

    def __init__(self, port: int, batches):
        self.port = port
        self.batches = batches
        self.acked: set[tuple[int, int]] = set()  # (batch, line) acknowledged
        self.refusals: list[tuple[float, float, str]] = []  # (sent, answered, why)
        self.accepts: list[tuple[float, float]] = []  # (sent, answered)
        self.client = None

    async def _connection(self):
        if self.client is None or self.client.transport is None or \
                not self.client.transport.connected:
            self.client = await connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port),
                                            clock=reactor, request_timeout=20)
        return self.client

    async def run(self):
        for b, batch in enumerate(self.batches):
            while True:
                sent = time.monotonic()
                try:
                    client = await self._connection()
                    results = await client.send_batch(_encode(batch))
                except BoxRemoteError as e:
                    assert e.retryable, e
                    self.refusals.append((sent, time.monotonic(), str(e)))
                    await task.deferLater(reactor, RETRY_PAUSE, lambda: None)
                    continue
                answered = time.monotonic()
                assert all(r.accepted for r in results), results
                self.acked.update((b, i) for i in range(len(batch)))
                self.accepts.append((sent, answered))
                await task.deferLater(reactor, PACE, lambda: None)
                break
        if self.client is not None:
            self.client.transport.loseConnection()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
@pytest_twisted.ensureDeferred
async def test_postgres_restart_under_a_running_server(tmp_path, private_cluster, mode):
    """pg_ctl stop -m MODE and start under intake: refusals (never an ack) while the
    database is down, reconnection without a restart of lb-server, nothing
    acknowledged lost, re-sent events deduplicated, statuses equal replay."""
    lines = [ln for fam in workload(2) for ln in fam]
    batches = [lines[i:i + RESTART_BATCH] for i in range(0, len(lines), RESTART_BATCH)]
    server = start_pg_server(tmp_path, "server", private_cluster.create_database())
    try:
        sender = _Sender(server.store_port, batches)
        running = defer.ensureDeferred(sender.run())
        while len(sender.accepts) < 5:
            assert not running.called
            await task.deferLater(reactor, 0.05, lambda: None)
        await threads.deferToThread(private_cluster.halt, mode)
        assert not running.called, "the sender finished before the database stopped"
        down_at = time.monotonic()
        first = ulm.parse(lines[0], require_user=True).job_id
        status, doc = await threads.deferToThread(
            json_get, server.query_port, f"/api/jobs/{quote(str(first), safe='')}")
        assert (status, doc["name"]) == (503, "EAGAIN"), doc  # queries: unavailable, too
        await task.deferLater(reactor, DOWN_FOR, lambda: None)
        up_at = time.monotonic()
        await threads.deferToThread(private_cluster.resume)
        await running.addTimeout(60, reactor)

        # batches sent and answered while the database was down were all refused
        during = [r for r in sender.refusals if r[0] >= down_at and r[1] <= up_at]
        assert len(during) >= 3, sender.refusals
        assert not [a for a in sender.accepts if a[0] >= down_at and a[1] <= up_at]
        assert all("retry" in why for _, _, why in sender.refusals), sender.refusals
        assert all("database is unavailable" in why for _, _, why in sender.refusals), \
            sender.refusals
        assert server.proc.poll() is None  # the same process all along
        log = server.log_text()
        assert "database connection lost" in log and "re-established" in log
        assert "Unhandled Error" not in log
        # one warning line per refused request, no traceback
        refused = [ln for ln in log.splitlines() if "refused request" in ln]
        assert len(refused) >= len(during), log[-3000:]
        assert all("database is unavailable" in ln for ln in refused), refused[:3]
        assert "batch handler failed" not in log, log[-3000:]
        assert "protocols/box/server.py" not in log and "server/intake.py" not in log, log[-3000:]

        # every acknowledged event is stored: sending everything again gives duplicates
        client = await connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", server.store_port),
                                   clock=reactor, request_timeout=20)
        answers = await defer.gatherResults([client.send_batch(_encode(batch))
                                             for batch in batches], consumeErrors=True)
        for b, (batch, results) in enumerate(zip(batches, answers)):
            for i, r in enumerate(results):
                assert r.accepted, (r, batch[i][:200])
                if (b, i) in sender.acked:
                    assert r.code is ResultCode.DUPLICATE, batch[i][:200]
        client.transport.loseConnection()
        assert len(sender.acked) == len(lines)

        replay, _ = _replay([lines])
        views = json_views(server.query_port, [r.job_id for r in replay.jobs()],
                           flags="history")
        for rec in replay.jobs():
            doc = views[str(rec.job_id)]
            assert doc["status"] == to_json(rec.status), rec.job_id
            assert len(doc["history"]) == len(replay.table.events.get(rec.job_id, ())), rec.job_id
    finally:
        if not private_cluster.running:
            private_cluster.resume()
        server.stop()
