"""End to end with PostgreSQL: producer -> lb-logger (+ interlogger) -> lb-server -> a status query.

Everything is a real process on this machine:

* a private PostgreSQL cluster (tests/pgcluster.py, fsync on) unless ``--dsn``;
* ``twistd -n lb-server --db postgresql://...`` (``--noauth``, plaintext TCP on
  127.0.0.1: queries on Q, intake on Q+1, job ids ``https://127.0.0.1:Q/...``);
* ``twistd -n lb-logger`` with its interlogger (the default), producers on its
  Unix socket, delivering to the server's intake;
* ``--producers`` processes, each a blocking :class:`lbtx.producer.Producer`
  that first registers ``--jobs`` jobs (straight to the server) and then logs
  ``UserTag`` events (name ``bench``, the value counting up per job) round robin
  over its jobs, one at a time, each call returning once the logger has the
  event on disk (its acknowledgement);
* a sampler process: every ``--sample``-th event a producer logs is handed to it
  with the time the producer started logging it; it polls ``GET /api/jobs/<id>``
  (the JSON API, one kept-alive connection) until the job's ``user_tags`` show
  that value or a later one. The end-to-end latency is that time minus the start
  of the log call.

Two runs on the same daemons:

1. **sustained**: producers log as fast as their acknowledgements come back, for
   ``--duration`` seconds (300 by default). Printed: producer acknowledgements/s,
   events stored by the server during the window (``SELECT count(*) FROM events``
   every ``--tick`` seconds, also the timeline), the backlog when the producers
   stop and how long it takes to drain, and the end-to-end rate (events logged /
   time until the last one is stored);
2. **rate-limited** at ``--rate`` events/s (default: half the sustained
   end-to-end rate; issue 4's goal is stated at 1,000/s) for
   ``--rate-duration`` seconds: end-to-end latency p50/p99 and producer
   acknowledgement p50/p99.

The CPU time each process used during each run is printed too (from /proc), so
it is visible which of producers, logger, server and PostgreSQL is the
bottleneck. ``--profile DIR`` additionally samples the logger and the server
with py-spy during each run (at most 120 s) and prints their hottest functions
(``.venv/bin/pip install py-spy``); ``--keep`` keeps the daemons' logs.

``--separate-interlogger`` runs the interlogger as its own ``twistd lb-interlogger``
beside ``lb-logger --no-interlogger`` (it then learns of new events from its watch
of the spool); ``--linger S`` sets the interlogger's ``--batch-linger``.

Usage: ``.venv/bin/python bench/endtoend.py [--quick] [--duration S] [--rate R]
[--rate-duration S] [--producers N] [--jobs N] [--sample N] [--dsn URL]
[--separate-interlogger] [--linger S] [--profile DIR] [--keep]``

Issue 4's goals: >= 2,000 events/s sustained; p99 <= 1 s at 1,000 events/s;
producer acknowledgement p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from lbtx.jobid import JobId  # noqa: E402
from lbtx.producer import LoggingError, Producer  # noqa: E402
from lbtx.protocols.legacy_query.http import (HTTPLimits, ResponseDecoder,  # noqa: E402
                                              format_request)
from processes import Daemon, children, cpu_seconds, free_port_pair, yardsticks  # noqa: E402
from profiles import Spy, have_py_spy, report_profiles  # noqa: E402

OWNER = "/DC=org/DC=example/CN=Bench Owner"
TAG = "bench"
TIMEOUT = 60.0            # seconds for one producer call or one status request
VISIBLE_TIMEOUT = 600.0   # a sample not visible after this long counts as lost
JSON_LIMITS = HTTPLimits(max_line=64 * 1024, max_headers=100, max_body=64 * 1024 * 1024)


# --- processes ----------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds of groups of processes between :meth:`start` and :meth:`stop`.
    PostgreSQL counts its postmaster and every backend alive at either end (backends
    of the server's pool live as long as the server, so nothing is missed)."""

    def __init__(self, groups):
        self.groups = groups   # name -> callable returning pids

    def sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()}
                for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self.sample()

    def stop(self) -> dict[str, float]:
        after = self.sample()
        out = {}
        for name, pids in after.items():
            before = self.before.get(name, {})
            out[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items())
        return out


# --- producers ------------------------------------------------------------------------------

def _produce(index: int, sock: str, server: str, jobs: int, ready, start, stop_at, rate,
             sample_every: int, samples, results) -> None:
    """One producer process: register, wait for ``start``, log until ``stop_at``."""
    producer = Producer(sock, source="Application", user=OWNER, timeout=TIMEOUT)
    contexts = [producer.register(JobId.generate(server)) for _ in range(jobs)]
    ready.put(index)
    start.wait()
    end = stop_at.value
    begin = time.monotonic()
    interval = 1.0 / rate if rate else 0.0
    acks = array("d")
    errors = Counter()
    n = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if interval:
            due = begin + n * interval
            if due > now:
                time.sleep(due - now)
        ctx = contexts[n % jobs]
        value = n // jobs + 1
        t = time.monotonic()
        try:
            producer.log(ctx, "UserTag", name=TAG, value=str(value))
        except LoggingError as e:
            errors[type(e).__name__] += 1
            time.sleep(0.01)
            continue
        acks.append(time.monotonic() - t)
        if n % sample_every == 0:
            samples.put((str(ctx.job_id), value, t))
        n += 1
    producer.close()
    results.put((index, n, acks.tobytes(), dict(errors)))


# --- the sampler: is the event visible in a status query yet? -----------------------------

class JsonClient:
    """A blocking HTTP/1.1 client of the JSON API over one kept-alive connection."""

    def __init__(self, port: int):
        self.port = port
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = ResponseDecoder(JSON_LIMITS)

    def get(self, path: str):
        try:
            return self._get(path)
        except (OSError, ConnectionError):
            self.sock.close()
            self._connect()
            return self._get(path)

    def _get(self, path: str):
        self.sock.sendall(format_request(f"GET {path} HTTP/1.1",
                                         ("User-Agent: lbtx-bench", "Accept: application/json")))
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the server closed the connection")
            answers = self.decoder.feed(data)
            if answers:
                return answers[0].status, json.loads(answers[0].body)

    def tag(self, job: str) -> int:
        """The job's ``bench`` tag as the server shows it now (0 when unset)."""
        status, doc = self.get("/api/jobs/" + quote(job, safe=""))
        if status != 200:
            return 0
        tags = doc["job"]["status"].get("user_tags") or {}
        try:
            return int(tags.get(TAG, 0))
        except (TypeError, ValueError):
            return 0


def _sample(port: int, samples, done, results) -> None:
    """Poll each pending sample's job until it shows the sample's value."""
    client = JsonClient(port)
    pending: list[tuple[str, int, float]] = []
    latencies, starts = array("d"), array("d")
    lost = 0
    while True:
        try:
            while True:
                pending.append(samples.get_nowait())
        except queue.Empty:
            pass
        if not pending:
            if done.is_set():
                break
            time.sleep(0.005)
            continue
        still = []
        for job, value, t in pending:
            if client.tag(job) >= value:
                latencies.append(time.monotonic() - t)
                starts.append(t)
            elif time.monotonic() - t > VISIBLE_TIMEOUT:
                lost += 1
            else:
                still.append((job, value, t))
        pending = still
        time.sleep(0.005)
    results.put((latencies.tobytes(), starts.tobytes(), lost))


# --- one run --------------------------------------------------------------------------------

def _quantiles(values) -> tuple[float, float, float]:
    v = sorted(values)
    if not v:
        return float("nan"), float("nan"), float("nan")
    return (v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))], v[-1])


def _stored(dsn: str):
    import psycopg2
    conn = psycopg2.connect(dsn)
    conn.autocommit = True

    def count() -> int:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")
            return cur.fetchone()[0]
    return conn, count


def run(setup, *, duration: float, rate: float | None, label: str, profile: Path | None):
    ctx = multiprocessing.get_context("fork")
    nprod = setup.args.producers
    ready, samples, results, sampled = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    start, done = ctx.Event(), ctx.Event()
    stop_at = ctx.Value("d", 0.0)
    sample_every = setup.args.sample
    procs = [ctx.Process(target=_produce, args=(
        i, setup.sock, setup.server, setup.args.jobs, ready, start, stop_at,
        rate / nprod if rate else None, sample_every, samples, results))
        for i in range(nprod)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)          # every producer registered its jobs
    sampler = ctx.Process(target=_sample, args=(setup.query_port, samples, done, sampled))
    sampler.start()
    conn, count = _stored(setup.dsn)
    registered = count()
    base = registered
    meter = CpuMeter({"producers": lambda: [p.pid for p in procs],
                      "sampler": lambda: [sampler.pid],
                      "lb-logger (+interlogger)": lambda: [setup.logger.pid] + (
                          [setup.interlogger.pid] if setup.interlogger else []),
                      "lb-server": lambda: [setup.server_proc.pid],
                      "postgresql": setup.pg_pids})
    spies = _start_profilers(setup, profile, duration, label) if profile else []
    meter.start()
    t0 = time.monotonic()
    stop_at.value = t0 + duration
    start.set()
    timeline = []
    next_tick = t0 + setup.args.tick
    while time.monotonic() < t0 + duration:
        time.sleep(max(0.0, min(next_tick, t0 + duration) - time.monotonic()))
        if time.monotonic() >= next_tick:
            timeline.append((time.monotonic() - t0, count() - base))
            next_tick += setup.args.tick
    got = [results.get(timeout=TIMEOUT + 60) for _ in procs]
    t_end = time.monotonic()
    stored_at_end = count() - base
    cpu = meter.stop()
    logged = sum(n for _, n, _, _ in got)
    errors = Counter()
    acks = array("d")
    for _, _, raw, errs in got:
        a = array("d")
        a.frombytes(raw)
        acks.extend(a)
        errors.update(errs)
    # drain: until the server stored every acknowledged event
    drain_deadline = time.monotonic() + VISIBLE_TIMEOUT
    while count() - base < logged and time.monotonic() < drain_deadline:
        time.sleep(0.05)
    t_drained = time.monotonic()
    stored = count() - base
    done.set()
    lat_raw, starts_raw, lost = sampled.get(timeout=VISIBLE_TIMEOUT + 60)
    latencies, starts = array("d"), array("d")
    latencies.frombytes(lat_raw)
    starts.frombytes(starts_raw)
    for p in procs + [sampler]:
        p.join(30)
    conn.close()
    for spy in spies:
        spy.wait()
    window = t_end - t0
    out = sys.stdout
    out.write(f"\n== {label}: {nprod} producers x {setup.args.jobs} jobs, "
              f"{'unlimited' if not rate else f'{rate:.0f} events/s offered'}, "
              f"{window:.0f} s ==\n")
    out.write(f"producer acknowledgements: {logged} events, {logged / window:.0f}/s; "
              f"errors: {dict(errors) or 'none'}\n")
    p50, p99, worst = _quantiles(acks)
    out.write(f"producer ack latency: p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
              f"max {worst * 1e3:.1f} ms\n")
    out.write(f"stored by the server within the window: {stored_at_end} "
              f"({stored_at_end / window:.0f}/s); backlog at the end: "
              f"{logged - stored_at_end}; drained {t_drained - t_end:.1f} s later "
              f"({stored} of {logged} stored)\n")
    e2e = stored / (t_drained - t0)
    out.write(f"end-to-end rate (logged events / time until the last is stored): "
              f"{e2e:.0f} events/s\n")
    l50, l99, lmax = _quantiles(latencies)
    out.write(f"end-to-end latency (log call -> visible in GET /api/jobs/ID) over "
              f"{len(latencies)} samples: p50 {l50 * 1e3:.0f} ms, p99 {l99 * 1e3:.0f} ms, "
              f"max {lmax * 1e3:.0f} ms; not visible: {lost}\n")
    slow = Counter(int((t - t0) // setup.args.tick * setup.args.tick)
                   for lat, t in zip(latencies, starts) if lat > 1.0)
    if slow:
        out.write("samples slower than 1 s, by when they were logged (s: count): " + ", ".join(
            f"{t}: {n}" for t, n in sorted(slow.items())) + "\n")
    if timeline:
        out.write("stored per tick (s: events/s): " + ", ".join(
            f"{t:.0f}: {(n - prev) / setup.args.tick:.0f}"
            for (t, n), (_, prev) in zip(timeline, [(0, 0)] + timeline)) + "\n")
    out.write("CPU seconds during the window (% of one core): " + ", ".join(
        f"{name} {sec:.1f} ({sec / window:.0%})" for name, sec in cpu.items()) + "\n")
    if logged:
        per = {name: sec / logged * 1e3 for name, sec in cpu.items() if name != "sampler"}
        total = sum(per.values())
        cores = os.cpu_count() or 1
        out.write("CPU ms per event: " + ", ".join(f"{name} {ms:.3f}" for name, ms in per.items())
                  + f"; total {total:.3f} ms -> at most {cores / total * 1e3:.0f} events/s "
                  f"on {cores} cores if nothing else ran\n")
    out.flush()
    report_profiles(spies)
    return {"e2e": e2e, "logged": logged / window, "ack_p99": p99, "lat_p99": l99}


# --- py-spy -----------------------------------------------------------------------------------

def _start_profilers(setup, directory: Path, duration: float, label: str) -> list[Spy]:
    if not have_py_spy():
        return []
    directory.mkdir(parents=True, exist_ok=True)
    seconds = max(5, min(duration - 2, 120))
    return [Spy(name, pid, directory / f"{name}-{label}{'-gil' if gil else ''}.txt", seconds,
                gil=gil)
            for name, pid in (("lb-logger", setup.logger.pid), ("lb-server", setup.server_proc.pid))
            for gil in (False, True)]


# --- main -----------------------------------------------------------------------------------

class Setup:
    pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="short runs (20 s sustained, 15 s rate-limited)")
    p.add_argument("--duration", type=float, default=300.0, help="sustained run, seconds")
    p.add_argument("--rate", type=float, default=None,
                   help="events/s of the latency run (default: half the sustained rate)")
    p.add_argument("--rate-duration", type=float, default=120.0,
                   help="latency run, seconds")
    p.add_argument("--producers", type=int, default=8)
    p.add_argument("--jobs", type=int, default=50, help="jobs per producer")
    p.add_argument("--sample", type=int, default=100, help="sample every N-th event per producer")
    p.add_argument("--tick", type=float, default=5.0, help="seconds between store counts")
    p.add_argument("--skip-sustained", action="store_true",
                   help="only the rate-limited run (needs --rate)")
    p.add_argument("--linger", type=float, default=None,
                   help="the interlogger's --batch-linger (seconds; default: its own)")
    p.add_argument("--separate-interlogger", action="store_true",
                   help="run the interlogger as its own twistd lb-interlogger process")
    p.add_argument("--dsn", help="a postgresql:// URL instead of a private cluster")
    p.add_argument("--profile", type=Path, help="py-spy the logger and server into DIR")
    p.add_argument("--keep", action="store_true", help="keep the daemons' logs and data")
    args = p.parse_args()
    if args.quick:
        args.duration, args.rate_duration, args.tick = 20.0, 15.0, 2.0
    if args.skip_sustained and not args.rate:
        p.error("--skip-sustained needs --rate")
    setup = Setup()
    setup.args = args
    work = Path(tempfile.mkdtemp(prefix="lbtx-bench-e2e-"))
    cluster = None
    daemons = []
    try:
        if args.dsn:
            url = args.dsn
            setup.pg_pids = lambda: []
        else:
            from pgcluster import PgCluster, find_bindir
            bindir = find_bindir()
            if bindir is None:
                sys.stdout.write("no PostgreSQL binaries found\n")
                return 1
            cluster = PgCluster(bindir, fsync=True).start()
            name = cluster.create_database().rsplit("dbname=", 1)[1]
            url = f"postgresql://postgres@127.0.0.1:{cluster.port}/{name}"

            def pg_pids(cluster=cluster):
                try:
                    master = int((cluster.data / "postmaster.pid").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    return []
                return [master, *children(master)]
            setup.pg_pids = pg_pids
        setup.dsn = url
        query_port = free_port_pair()
        setup.query_port = query_port
        setup.server = f"127.0.0.1:{query_port}"
        setup.server_proc = Daemon("lb-server", [
            "--data-dir", str(work / "server-data"), "--db", url,
            "--listen-store", f"tcp:{query_port + 1}:interface=127.0.0.1",
            "--listen-query", f"tcp:{query_port}:interface=127.0.0.1",
            "--server-name", setup.server, "--noauth", "--peer-identity", OWNER],
            work, query_port + 1)
        daemons.append(setup.server_proc)
        setup.sock = str(work / "logger-data" / "logger.sock")
        delivery_args = [] if args.linger is None else ["--batch-linger", str(args.linger)]
        logger_args = ["-d", str(work / "logger-data"), *delivery_args]
        setup.interlogger = None
        if args.separate_interlogger:
            logger_args.append("--no-interlogger")
        setup.logger = Daemon("lb-logger", logger_args, work, setup.sock)
        daemons.append(setup.logger)
        if args.separate_interlogger:
            setup.interlogger = Daemon("lb-interlogger", ["-d", str(work / "logger-data"),
                                                          *delivery_args], work, [])
            time.sleep(1.0)
            if setup.interlogger.proc.poll() is not None:
                raise RuntimeError("lb-interlogger did not start; its log:\n"
                                   + setup.interlogger.log_tail())
            daemons.append(setup.interlogger)
        load = os.getloadavg()
        sys.stdout.write(f"end-to-end bench in {work}; PostgreSQL "
                         f"{'(given)' if args.dsn else 'private cluster, fsync on'}; "
                         f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} "
                         f"{load[2]:.1f} at the start; {yardsticks()}\n")
        sys.stdout.flush()
        rate = args.rate
        if not args.skip_sustained:
            sustained = run(setup, duration=args.duration, rate=None, label="sustained",
                            profile=args.profile)
            rate = rate or max(1.0, sustained["e2e"] / 2)
        run(setup, duration=args.rate_duration, rate=rate, label="rate-limited",
            profile=args.profile)
        load = os.getloadavg()
        sys.stdout.write(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
                         "goals (issue 4): >= 2,000 events/s sustained; p99 <= 1 s at "
                         "1,000 events/s; producer acknowledgement p99 <= 5 ms\n")
    finally:
        for d in reversed(daemons):
            d.stop()
        if cluster is not None:
            cluster.stop()
        if args.keep:
            sys.stdout.write(f"kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
