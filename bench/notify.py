"""Notification figures of a real ``twistd lb-server`` (issue 5).

1. **Latency** from event arrival to callback receipt: one all-jobs registration
   with a callback URL served by a twisted.web listener in this process; job
   streams (the one-job WMS scenario P01, fresh ids) are logged over the box
   protocol at a fixed rate (default 500 events/s, every event a state change, in
   batches of 10 every 20 ms); each callback is matched to its event by job id and
   sequence code, and the time from sending the batch to receiving the POST is
   the latency (so it includes intake, the commit, matching and delivery).
   Prints p50/p90/p99/max, the intake part (batch sent -> answered after the
   commit) and the callback rate; ``--timeline`` per second of sending.
2. **Intake throughput** with 0 and with N (default 10,000) active registrations
   that do not match the logged jobs (pull registrations by other identities:
   90% with job lists of other jobs, 10% for all jobs with their owner's
   ``owner`` condition), each on a fresh server: events/s of pipelined batches
   of 50 with 8 in flight. Registrations are written into the database before
   the server starts. Prints both rates and their ratio (goal: >= 80%).

SQLite by default; ``--postgres`` runs on a private PostgreSQL cluster this script
starts (fsync on; a fresh database per run). The figures depend on the machine's
load: the server, the listener and the producer share its cores.

Usage: ``.venv/bin/python bench/notify.py [--rate 500] [--seconds 10]
[--registrations 10000] [--events 6000] [--postgres] [--skip-latency] [--skip-intake]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402
from twisted.web import resource, server as web_server  # noqa: E402

from daemon_support import free_port, free_port_pair, start_daemon, stop_daemon  # noqa: E402
from lbtx.jobid import JobId, NotifId  # noqa: E402
from lbtx.protocols.box.client import connect_box  # noqa: E402
from lbtx.query.conditions import Attr, Condition, Op  # noqa: E402
from lbtx.server.notify.model import Flags, Registration  # noqa: E402
from lbtx.server.store import open_store  # noqa: E402
from notify_support import ALICE, Api, interleave, job_streams  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def start_server(workdir: Path, port: int, db: str | None):
    args = ["--data-dir", str(workdir / "data"),
            "--listen-store", f"tcp:{port + 1}:interface=127.0.0.1",
            "--listen-query", f"tcp:{port}:interface=127.0.0.1",
            "--server-name", f"127.0.0.1:{port}", "--peer-identity", ALICE]
    if db:
        args += ["--db", db]
    return start_daemon("lb-server", args, workdir, port + 1, tag=f"server{port}")


def db_url(workdir: Path) -> str:
    return "sqlite:///" + str(workdir / "data" / "lbtx.sqlite")


class Databases:
    """A fresh PostgreSQL database per run, from a private cluster (fsync on)."""

    def __init__(self):
        from pgcluster import PgCluster, find_bindir
        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL binaries found")
        self.cluster = PgCluster(bindir, fsync=True).start()

    def fresh(self) -> str:
        from urllib.parse import quote
        kv = dict(part.split("=", 1) for part in self.cluster.create_database().split())
        auth = quote(kv.get("user", ""), safe="")
        return (f"postgresql://{auth}{'@' if auth else ''}{kv.get('host', '127.0.0.1')}:"
                f"{kv.get('port', '5432')}/{kv['dbname']}")

    def stop(self):
        self.cluster.stop()


# --- latency -----------------------------------------------------------------------------

class _Sink(resource.Resource):
    isLeaf = True

    def __init__(self, arrivals):
        super().__init__()
        self.arrivals = arrivals

    def render_POST(self, request):
        doc = json.loads(request.content.read())
        event = doc.get("event") or {}
        self.arrivals.append((time.monotonic(), doc["jobid"], event.get("seqcode")))
        return b"ok"


@defer.inlineCallbacks
def latency(args, workdir: Path):
    port = free_port_pair()
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    db = args.databases.fresh() if args.databases else None
    proc = start_server(workdir, port, db)
    arrivals: list = []
    listen = reactor.listenTCP(free_port(), web_server.Site(_Sink(arrivals)),
                               interface="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{listen.getHost().port}/cb"
        status, doc = Api(port).call("POST", "/api/notifications", {"destination": url})
        assert status == 200, doc
        total = int(args.rate * args.seconds)
        streams = job_streams(total // 15 + 1, f"127.0.0.1:{port}")
        lines = interleave(streams)[:total]
        keys = []
        for ln in lines:
            jid = ln.split('DG.JOBID="', 1)[1].split('"', 1)[0]
            seq = ln.split('DG.SEQCODE="', 1)[1].split('"', 1)[0]
            keys.append((jid, seq))
        client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port + 1),
                                   clock=reactor)
        sent_at: dict = {}
        committed: list = []  # seconds from sending a batch to its answer (committed)
        batch = 10
        period = batch / args.rate
        pending = []
        start = time.monotonic()
        for i in range(0, len(lines), batch):
            due = start + (i // batch) * period
            delay = due - time.monotonic()
            if delay > 0:
                yield task.deferLater(reactor, delay, lambda: None)
            now = time.monotonic()
            for k in keys[i:i + batch]:
                sent_at[k] = now
            chunk = [ln.encode() for ln in lines[i:i + batch]]
            d = client.send_batch(chunk)
            d.addCallback(lambda r, t=now: committed.append(time.monotonic() - t) or r)
            pending.append(d)
        yield defer.DeferredList(pending)
        sending = time.monotonic() - start
        deadline = time.monotonic() + 60
        while len(arrivals) < len(lines) and time.monotonic() < deadline:
            yield task.deferLater(reactor, 0.1, lambda: None)
        client.transport.loseConnection()
        first: dict = {}  # a re-delivered message counts at its first receipt
        for t, jid, seq in arrivals:
            first.setdefault((jid, seq), t)
        lat = [(t - sent_at[k]) * 1000 for k, t in first.items() if k in sent_at]
        print(f"latency event -> callback at {args.rate}/s for {args.seconds} s "
              f"({len(lines)} events sent in {sending:.1f} s, {len(arrivals)} callbacks, "
              f"{len(arrivals) - len(first)} of them repeated, "
              f"{'PostgreSQL' if db else 'SQLite'}):")
        print(f"  p50 {percentile(lat, 50):.1f} ms  p90 {percentile(lat, 90):.1f} ms  "
              f"p99 {percentile(lat, 99):.1f} ms  max {max(lat):.1f} ms  "
              f"mean {statistics.mean(lat):.1f} ms")
        ms = [c * 1000 for c in committed]
        print(f"  intake part (batch sent -> answered, committed): p50 {percentile(ms, 50):.1f} ms"
              f"  p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms")
        if arrivals:
            span = arrivals[-1][0] - start
            print(f"  callbacks: {len(arrivals) / span:.0f}/s on average until the last "
                  f"({span:.1f} s after the first event)")
        if args.timeline:
            by_second: dict = {}
            for k, t in first.items():
                if k in sent_at:
                    by_second.setdefault(int(sent_at[k] - start), []).append(
                        (t - sent_at[k]) * 1000)
            for sec, values in sorted(by_second.items()):
                print(f"    sent in second {sec:3d}: {len(values):4d} callbacks, "
                      f"p50 {percentile(values, 50):7.1f} ms  p99 {percentile(values, 99):7.1f} ms")
    finally:
        yield listen.stopListening()
        stop_daemon(proc)


# --- intake throughput ---------------------------------------------------------------------

@defer.inlineCallbacks
def preregister(url: str, count: int, server: str):
    store = open_store(url, reactor)
    yield store.start()
    try:
        for i in range(count):
            owner = f"/DC=org/DC=example/CN=Other {i % 100}"
            notif = str(NotifId.generate(server))
            if i % 10 == 0:
                conditions = ((Condition(Attr.OWNER, Op.EQUAL, owner),),)
                jobs = ()
            else:
                conditions = ()
                jobs = (str(JobId.generate(server)),)
            yield store.register(Registration(notif_id=notif, owner=owner, destination=None,
                                              expires=int(time.time()) + 86400,
                                              conditions=conditions, job_ids=jobs,
                                              flags=Flags.NONE))
    finally:
        yield store.stop()


@defer.inlineCallbacks
def intake(args, workdir: Path, registrations: int):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    port = free_port_pair()
    db = args.databases.fresh() if args.databases else None
    if registrations:
        t0 = time.monotonic()
        yield preregister(db or db_url(workdir), registrations, f"127.0.0.1:{port}")
        print(f"  ({registrations} registrations written in {time.monotonic() - t0:.1f} s)")
    proc = start_server(workdir, port, db)
    try:
        streams = job_streams(args.events // 15 + 1, f"127.0.0.1:{port}")
        lines = [ln.encode() for ln in interleave(streams)[:args.events]]
        client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port + 1),
                                   clock=reactor)
        batches = [lines[i:i + 50] for i in range(0, len(lines), 50)]
        start = time.monotonic()
        in_flight: list = []
        accepted = 0
        for b in batches:
            in_flight.append(client.send_batch(b))
            if len(in_flight) >= 8:
                accepted += sum(r.accepted for r in (yield in_flight.pop(0)))
        for d in in_flight:
            accepted += sum(r.accepted for r in (yield d))
        elapsed = time.monotonic() - start
        client.transport.loseConnection()
        return accepted / elapsed, accepted
    finally:
        stop_daemon(proc)


@defer.inlineCallbacks
def main(args):
    tmp = Path(tempfile.mkdtemp(prefix="lbtx-bench-notify-"))
    args.databases = Databases() if args.postgres else None
    try:
        if not args.skip_latency:
            yield latency(args, tmp / "latency")
        if not args.skip_intake:
            print(f"intake of {args.events} events "
                  f"({'PostgreSQL' if args.postgres else 'SQLite'}):")
            rate0, n0 = yield intake(args, tmp / "none", 0)
            print(f"  0 registrations: {rate0:.0f} events/s ({n0} accepted)")
            rate1, n1 = yield intake(args, tmp / "many", args.registrations)
            print(f"  {args.registrations} registrations: {rate1:.0f} events/s "
                  f"({n1} accepted)")
            print(f"  ratio {100 * rate1 / rate0:.0f}% (goal >= 80%)")
    finally:
        if args.databases:
            args.databases.stop()


def cli():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--registrations", type=int, default=10000)
    p.add_argument("--events", type=int, default=6000)
    p.add_argument("--postgres", action="store_true",
                   help="run on PostgreSQL (a private cluster, a fresh database per run)")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-intake", action="store_true")
    p.add_argument("--timeline", action="store_true",
                   help="also print the latency of the events sent in each second")
    args = p.parse_args()
    task.react(lambda _: main(args))


if __name__ == "__main__":
    cli()
