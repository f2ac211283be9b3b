"""Intake throughput of the job stores: events/s accepted, states computed and committed.

The input is bench/replay.py's mix of the real WMS event streams of
``shared/data/ulm`` (fresh job ids per copy). Events are parsed beforehand and
fed to ``IJobStore.accept_events`` in batches (one transaction per batch), by
one stream or by several concurrent streams (each a share of the job families,
in order, as separate intake connections would deliver them); the figure is
wall-clock events/s until the last batch is committed. Afterwards it times
``job_status`` of random jobs (one at a time) and one ``user_jobs`` query. The deliveries printed
include the streams' own refusals (re-registrations by another user, repeated
events), the same as ``lbtx replay`` of the mix.

PostgreSQL runs in a private cluster this script starts (fsync on, as a server
would run) unless ``--dsn`` names one; SQLite writes a file in a temporary
directory with ``synchronous=FULL``.

Usage: ``.venv/bin/python bench/store.py [--events N] [--batch N] [--streams N ...]
[--stores sqlite,postgres] [--dsn DSN] [--connections N] [--no-fsync]``
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from twisted.internet import defer, reactor  # noqa: E402

from lbtx import ulm  # noqa: E402
from lbtx.server.store.postgres import PostgresJobStore  # noqa: E402
from lbtx.server.store.sqlite import SQLiteJobStore  # noqa: E402
from replay import build_mix  # noqa: E402


def families(events) -> list[list[int]]:
    """Indices of the events of each job family (a job with its subjobs), in order."""
    family: dict = {}
    order: dict = {}
    for i, ev in enumerate(events):
        job = ev.job_id
        if ev.type_name == "RegJob":
            if ev.parent is not None:
                family.setdefault(job, family.get(ev.parent, ev.parent))
            if (ev.nsubjobs or 0) > 0:
                root = family.get(job, job)
                for sub in job.subjobs(ev.seed, ev.nsubjobs):
                    family.setdefault(sub, root)
        order.setdefault(family.get(job, job), []).append(i)
    return list(order.values())


def streams(events, lines, count: int) -> list[tuple[list, list]]:
    """Split the mix into ``count`` streams of whole job families."""
    out = [([], []) for _ in range(count)]
    for n, fam in enumerate(families(events)):
        evs, lns = out[n % count]
        evs.extend(events[i] for i in fam)
        lns.extend(lines[i] for i in fam)
    return [s for s in out if s[0]]


async def feed(store, events, lines, batch: int, deliveries: dict) -> None:
    for i in range(0, len(events), batch):
        outcomes = await store.accept_events(events[i:i + batch], lines[i:i + batch])
        for o in outcomes:
            deliveries[o.delivery] = deliveries.get(o.delivery, 0) + 1


async def measure(make_store, events, lines, batch: int, nstreams: int, samples: int) -> dict:
    store = make_store()
    await store.start()
    try:
        parts = streams(events, lines, nstreams)
        deliveries: dict = {}
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await defer.gatherResults([defer.ensureDeferred(feed(store, e, ln, batch, deliveries))
                                   for e, ln in parts])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        latencies = []
        job_ids = sorted({ev.job_id for ev in events}, key=str)
        rng = random.Random(7)
        for job_id in rng.sample(job_ids, min(samples, len(job_ids))):
            t = time.perf_counter()
            await store.job_status(job_id)
            latencies.append(time.perf_counter() - t)
        t = time.perf_counter()
        owned = await store.user_jobs(events[0].user)
        user_jobs = (len(owned), time.perf_counter() - t)
    finally:
        await store.stop()
    return {"wall": wall, "cpu": cpu, "deliveries": deliveries, "streams": len(parts),
            "latencies": sorted(latencies), "user_jobs": user_jobs}


def report(name: str, n: int, batch: int, r: dict) -> None:
    dl = ", ".join(f"{d.value}={c}" for d, c in sorted(r["deliveries"].items()))
    sys.stdout.write(f"{name:9s} streams={r['streams']} batch={batch}: {n / r['wall']:8.0f} events/s "
                     f"({r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU in this process; {dl})\n")
    lat = r["latencies"]
    if lat:
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        count, took = r["user_jobs"]
        sys.stdout.write(f"{'':9s} job_status over {len(lat)} jobs: p50 {p50 * 1e3:.2f} ms, "
                         f"p99 {p99 * 1e3:.2f} ms; user_jobs: {count} jobs in {took * 1e3:.0f} ms\n")
    sys.stdout.flush()


async def main(args) -> None:
    directory = Path(args.shared) / "data" / "ulm"
    lines, used = build_mix(directory, args.events)
    t0 = time.process_time()
    events = [ulm.parse(ln, require_user=True) for ln in lines]
    t_parse = time.process_time() - t0
    size = sum(len(ln) for ln in lines)
    sys.stdout.write(f"mix: {len(lines)} events, {size / 1e6:.1f} MB of ULM, "
                     f"{len(families(events))} job families; template copies: "
                     + ", ".join(f"{k}={v}" for k, v in used.items())
                     + f"\nparsing (not included below): {len(lines) / t_parse:.0f} events/s\n")
    stores = args.stores.split(",")
    cluster = None
    try:
        for name in stores:
            for nstreams in args.streams:
                if name == "sqlite":
                    tmp = tempfile.mkdtemp(prefix="lbtx-bench-")

                    def make(tmp=tmp):
                        return SQLiteJobStore(os.path.join(tmp, "lbtx.sqlite"), reactor)
                elif name == "postgres":
                    if args.dsn:
                        dsn = args.dsn
                    else:
                        if cluster is None:
                            from pgcluster import PgCluster, find_bindir
                            bindir = find_bindir()
                            if bindir is None:
                                sys.stdout.write("postgres: no PostgreSQL binaries found\n")
                                continue
                            cluster = PgCluster(bindir, fsync=not args.no_fsync).start()
                        dsn = cluster.create_database()

                    def make(dsn=dsn):
                        return PostgresJobStore(dsn, reactor, connections=args.connections,
                                                lock_slots=args.lock_slots)
                else:
                    raise SystemExit(f"unknown store {name!r}")
                r = await measure(make, events, lines, args.batch, nstreams, args.status_samples)
                report(name, len(events), args.batch, r)
    finally:
        if cluster is not None:
            cluster.stop()


def run() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=30_000, help="events in the mix (minimum)")
    p.add_argument("--batch", type=int, default=200, help="events per accept_events call")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8],
                   help="concurrent intake streams to measure")
    p.add_argument("--stores", default="sqlite,postgres")
    p.add_argument("--dsn", help="use this PostgreSQL database instead of a private cluster")
    p.add_argument("--connections", type=int, default=4, help="PostgreSQL pool size")
    p.add_argument("--lock-slots", type=int, default=1024)
    p.add_argument("--no-fsync", action="store_true", help="private cluster without fsync")
    p.add_argument("--status-samples", type=int, default=1000,
                   help="job_status calls timed after the intake (0: none)")
    p.add_argument("--shared", default=os.environ.get("LBTX_SHARED", str(HERE.parent.parent / "shared")))
    args = p.parse_args()
    result = {}

    def done(value):
        result["value"] = value
        reactor.stop()

    d = defer.ensureDeferred(main(args))
    d.addBoth(done)
    reactor.run()
    value = result.get("value")
    if hasattr(value, "raiseException"):
        value.raiseException()
    return 0


if __name__ == "__main__":
    sys.exit(run())
