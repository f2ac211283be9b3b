"""Performance of a real ``twistd -n lb-server``: intake events/s, status and user-jobs latency.

The script starts the server itself (``--noauth``, a configured plaintext
``--peer-identity``), on SQLite (a file in a temporary directory) or on
PostgreSQL (a private cluster started like bench/store.py does, fsync on; or
``--dsn``), and talks to it over TCP on 127.0.0.1 as real clients do:

* **intake**: bench/replay.py's mix of the real WMS event streams of
  ``shared/data/ulm`` (fresh job ids per template copy), split into 1 or 8
  streams of whole job families, each stream one box-protocol connection
  (:mod:`lbtx.protocols.box.client`) sending batches (``--batch`` events, at most
  1 MiB, as the interlogger's queues do) with up to ``--window`` requests
  pipelined. The figure is wall-clock events/s from the first batch sent to the
  last acknowledgement; an acknowledged event is committed with its job's state
  computed. Each measurement gets a fresh server and an empty database.
* **fill**: after the last intake run of a store, the same server gets
  registration-only events (the RegJob record of the simple-job template with
  fresh job ids, ``--user-jobs`` of them owned by the query identity, the rest by
  another user), through the same intake, until ``--jobs`` jobs are stored;
  this is timed and printed too (registrations/s).
* **status latency**: ``--status-samples`` random jobs one after the other, drawn
  from the jobs of the mix (real histories) and from the registration-only
  fill, through the JSON API (``GET /api/jobs/<id>`` over one kept-alive
  connection) and through the legacy XML protocol (a ``queryJobs`` with a
  ``jobId`` condition, a new connection per request, as
  :class:`lbtx.cli.query_client.QueryClient` and the legacy client library do).
* **user jobs**: the jobs of the query identity (``--user-jobs``, 10,000 by
  default): JSON ``GET /api/user-jobs`` (ids) and ``POST /api/query`` with
  ``owner`` NULL (statuses); legacy ``queryJobs`` with ``owner`` NULL with
  states (``glite-lb-user_jobs``) and without (``-n``). Each is repeated
  ``--repeat`` times; the table shows the median and the best.

Latencies include the client's side (request formatting, reading and, for the
legacy protocol, the XML parse of the answer) as a user would see it. Client,
server and PostgreSQL share this machine's cores.

Usage: ``.venv/bin/python bench/server.py [--quick] [--stores sqlite,postgres]
[--connections 1 8] [--events N] [--jobs N] [--user-jobs N] [--batch N]
[--window N] [--dsn postgresql://...] [--profile DIR]``

``--profile DIR`` runs each server under twistd's cProfile and leaves one
``.prof`` file per server in DIR (view with ``python -m pstats``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.endpoints import clientFromString  # noqa: E402

from lbtx import ulm  # noqa: E402
from lbtx.cli.environment import Address  # noqa: E402
from lbtx.cli.query_client import QueryClient  # noqa: E402
from lbtx.jobid import JobId  # noqa: E402
from lbtx.protocols.box.client import connect_box  # noqa: E402
from lbtx.protocols.legacy_query.http import (HTTPLimits, ResponseDecoder,  # noqa: E402
                                              format_request)
from lbtx.protocols.legacy_query.messages import StatusFlag  # noqa: E402
from replay import SERVER, build_mix  # noqa: E402
from store import streams  # noqa: E402
from processes import Daemon, children, cpu_seconds, free_port  # noqa: E402

#: the identity of every plaintext query connection, owner of the user-jobs set
OWNER = "/DC=org/DC=example/CN=Bench Owner"
#: the owner of the other registration-only jobs
FILLER = "/DC=org/DC=example/CN=Bench Filler"
MAX_BATCH_BYTES = 1024 * 1024
TIMEOUT = 120.0       # seconds for any one request
JSON_HEADERS = ("User-Agent: lbtx-bench", "Accept: application/json")
JSON_LIMITS = HTTPLimits(max_line=64 * 1024, max_headers=100, max_body=512 * 1024 * 1024)


# --- the server process -----------------------------------------------------------------

class ServerProcess(Daemon):
    """``twistd -n lb-server`` on ``db`` with its log (and profile) in ``workdir``."""

    def __init__(self, db: str, workdir: Path, tag: str, profile_dir: Path | None = None):
        self.workdir = workdir
        self.query_port = free_port()
        self.store_port = free_port()
        profile = [] if profile_dir is None else [
            "--profile", str(profile_dir / f"{tag}.prof"), "--profiler", "cprofile",
            "--savestats"]
        super().__init__("lb-server", [
            "--data-dir", str(workdir / f"{tag}-data"), "--db", db,
            "--listen-store", f"tcp:{self.store_port}:interface=127.0.0.1",
            "--listen-query", f"tcp:{self.query_port}:interface=127.0.0.1",
            "--server-name", SERVER, "--noauth", "--peer-identity", OWNER,
            "--request-timeout", str(TIMEOUT)], workdir, [self.store_port, self.query_port],
            tag=tag, twistd_args=profile)


# --- intake over the box protocol --------------------------------------------------------

def batches(lines: list[str], size: int) -> list[list[bytes]]:
    """Lines (without LF) in batches of at most ``size`` events and 1 MiB (a bigger
    event goes alone)."""
    out: list[list[bytes]] = []
    batch: list[bytes] = []
    nbytes = 0
    for ln in lines:
        raw = ln.rstrip("\n").encode("utf-8", "surrogateescape")
        if batch and (len(batch) >= size or nbytes + len(raw) > MAX_BATCH_BYTES):
            out.append(batch)
            batch, nbytes = [], 0
        batch.append(raw)
        nbytes += len(raw)
    if batch:
        out.append(batch)
    return out


async def _feed(client, work: list[list[bytes]], window: int, counts: dict) -> None:
    """Send the batches in order, at most ``window`` unanswered at a time."""
    pending: deque = deque()

    def tally(results):
        for r in results:
            counts[r.code.value] = counts.get(r.code.value, 0) + 1

    for batch in work:
        if len(pending) >= window:
            tally(await pending.popleft())
        pending.append(client.send_batch(batch, timeout=TIMEOUT))
    while pending:
        tally(await pending.popleft())


async def intake(port: int, parts: list[list[list[bytes]]], window: int) -> tuple[float, dict]:
    """Connect one box client per part, send every part; ``(wall seconds, result counts)``."""
    clients = []
    for _ in parts:
        endpoint = clientFromString(reactor, f"tcp:127.0.0.1:{port}")
        clients.append(await connect_box(endpoint, clock=reactor, request_timeout=TIMEOUT))
    counts: dict = {}
    gc.collect()
    t0 = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(_feed(c, work, window, counts))
                               for c, work in zip(clients, parts)], consumeErrors=True)
    wall = time.perf_counter() - t0
    for c in clients:
        c.transport.loseConnection()
    return wall, counts


_JOBID_RE = re.compile(r'DG\.JOBID="[^"]*"')
_USER_RE = re.compile(r'DG\.USER="[^"]*"')


def registrations(template: str, count: int, owned: int) -> tuple[list[str], list[JobId]]:
    """``count`` copies of the RegJob line ``template`` with fresh job ids, the first
    ``owned`` by :data:`OWNER`, the others by :data:`FILLER`."""
    lines, ids = [], []
    for i in range(count):
        job = JobId.generate(SERVER)
        user = OWNER if i < owned else FILLER
        ln = _JOBID_RE.sub(f'DG.JOBID="{job}"', template, count=1)
        ln = _USER_RE.sub(f'DG.USER="{user}"', ln, count=1)
        lines.append(ln)
        ids.append(job)
    return lines, ids


# --- queries: JSON over a kept-alive connection, legacy XML as the legacy client ------------

class JsonClient:
    """A blocking HTTP/1.1 client of the JSON API over one kept-alive connection."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = ResponseDecoder(JSON_LIMITS)

    def request(self, line: str, body: bytes | None = None):
        headers = JSON_HEADERS + (("Content-Type: application/json",) if body else ())
        self.sock.sendall(format_request(line, headers, body))
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the server closed the connection")
            answers = self.decoder.feed(data)
            if answers:
                response = answers[0]
                return response.status, json.loads(response.body)

    def close(self) -> None:
        self.sock.close()


def _timed(call, samples) -> tuple[list[float], int]:
    """Latencies of ``call(sample)`` for each sample, and how many failed."""
    out, errors = [], 0
    for s in samples:
        t = time.perf_counter()
        try:
            ok = call(s)
        except Exception:
            ok = False
        out.append(time.perf_counter() - t)
        errors += not ok
    return sorted(out), errors


def status_latencies(query_port: int, jobs: list[JobId], meter) -> dict:
    api = JsonClient(query_port)
    legacy = QueryClient(Address("127.0.0.1", query_port), timeout=TIMEOUT)

    def json_status(job):
        status, doc = api.request(f"GET /api/jobs/{quote(str(job), safe='')} HTTP/1.1")
        return status == 200 and doc["job"]["jobid"] == str(job)

    def legacy_status(job):
        return str(legacy.job_status(job).status.job_id) == str(job)

    try:
        out = {}
        for name, call in (("JSON GET /api/jobs/ID (kept-alive)", json_status),
                           ("legacy queryJobs jobId (a connection each)", legacy_status)):
            meter.start()
            lat, errors = _timed(call, jobs)
            out[name] = (lat, errors, meter.per_request(len(jobs)))
        return out
    finally:
        api.close()


def user_jobs_latencies(query_port: int, expected: int, repeat: int) -> dict:
    legacy = QueryClient(Address("127.0.0.1", query_port), timeout=TIMEOUT)
    query = json.dumps({"conditions": [[{"attr": "owner", "value": None}]]}).encode()

    def api(line, body=None, key="jobs"):
        def call(_):
            client = JsonClient(query_port)
            try:
                status, doc = client.request(line, body)
            finally:
                client.close()
            return status == 200 and len(doc[key]) == expected
        return call

    def old(flags):
        def call(_):
            error, jobs = legacy.user_jobs(flags)
            return error is None and len(jobs) == expected
        return call

    runs = range(repeat)
    return {"JSON GET /api/user-jobs (ids)": _timed(api("GET /api/user-jobs HTTP/1.1"), runs),
            "JSON POST /api/query owner=me (statuses)":
                _timed(api("POST /api/query HTTP/1.1", query), runs),
            "legacy queryJobs owner=NULL (statuses)": _timed(old(StatusFlag.NONE), runs),
            "legacy queryJobs owner=NULL, no states": _timed(old(StatusFlag.NO_STATES), runs)}


# --- the table ---------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x * 1e3:8.2f}"


def _pct(lat: list[float], q: float) -> float:
    return lat[min(len(lat) - 1, int(len(lat) * q))]


class CpuMeter:
    """CPU seconds of the lb-server process and of the private PostgreSQL cluster
    (its postmaster and every backend), between :meth:`start` and :meth:`stop`."""

    def __init__(self, server_pid: int, postmaster_pid: int | None):
        self.server_pid = server_pid
        self.postmaster_pid = postmaster_pid

    def _pg(self) -> dict[int, float]:
        if self.postmaster_pid is None:
            return {}
        pids = [self.postmaster_pid] + children(self.postmaster_pid)
        return {p: cpu_seconds(p) for p in pids}

    def start(self) -> None:
        self._server0 = cpu_seconds(self.server_pid)
        self._pg0 = self._pg()

    def stop(self) -> str:
        self.server, self.pg = self.seconds()
        text = f"lb-server CPU {self.server:.1f} s"
        if self.pg is not None:
            text += f", PostgreSQL CPU {self.pg:.1f} s"
        return text

    def seconds(self) -> tuple[float, float | None]:
        """``(lb-server, PostgreSQL or None)`` CPU seconds since :meth:`start`."""
        server = cpu_seconds(self.server_pid) - self._server0
        if self.postmaster_pid is None:
            return server, None
        return server, sum(cpu - self._pg0.get(pid, 0.0) for pid, cpu in self._pg().items())

    def per_request(self, n: int) -> str:
        """CPU per request since :meth:`start`, in ms."""
        server, pg = self.seconds()
        text = f"lb-server CPU {server / n * 1e3:.2f} ms/request"
        if pg is not None:
            text += f", PostgreSQL {pg / n * 1e3:.2f}"
        return text


def _load() -> str:
    """The machine's load averages (other work on it shows in the figures)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --- running it --------------------------------------------------------------------------

class Databases:
    """Fresh databases for the servers: SQLite files, or PostgreSQL databases."""

    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.cluster = None
        self.count = 0

    def url(self, store: str) -> str | None:
        self.count += 1
        if store == "sqlite":
            return f"sqlite:///{self.tmp / f'lbtx-{self.count}.sqlite'}"
        if store != "postgres":
            raise SystemExit(f"unknown store {store!r}")
        if self.args.dsn:
            return self.args.dsn
        if self.cluster is None:
            from pgcluster import PgCluster, find_bindir
            bindir = find_bindir()
            if bindir is None:
                return None
            self.cluster = PgCluster(bindir, fsync=not self.args.no_fsync).start()
        dsn = self.cluster.create_database()
        name = dict(p.split("=", 1) for p in dsn.split())["dbname"]
        return f"postgresql://postgres@127.0.0.1:{self.cluster.port}/{name}"

    def postmaster(self, store: str) -> int | None:
        """The pid of the private cluster's postmaster, when ``store`` runs on it."""
        if store != "postgres" or self.cluster is None or self.args.dsn:
            return None
        try:
            return int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


async def bench_store(store: str, args, mix, dbs: Databases, tmp: Path) -> None:
    events, lines, template = mix
    mix_jobs = sorted({ev.job_id for ev in events}, key=str)
    server = None
    for n, nconn in enumerate(args.connections):
        db = dbs.url(store)
        if db is None:
            say(f"{store}: no PostgreSQL binaries found; skipped")
            return
        if server is not None:
            server.stop()
        server = ServerProcess(db, tmp, f"{store}-{nconn}", args.profile)
        try:
            parts = [batches(ln, args.batch) for _, ln in streams(events, lines, nconn)]
            meter = CpuMeter(server.proc.pid, dbs.postmaster(store))
            meter.start()
            wall, counts = await intake(server.store_port, parts, args.window)
            cpu = meter.stop()
            results = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            say(f"{store:8s} intake, {len(parts)} connection(s): {len(lines) / wall:8.0f} events/s "
                f"({len(lines)} events in {wall:.2f} s; {cpu}; {results}; load {_load()})")
        except BaseException:
            say(server.log_tail())
            server.stop()
            raise
    try:
        await after_intake(store, args, server, mix_jobs, template, dbs.postmaster(store))
    except BaseException:
        say(server.log_tail())
        raise
    finally:
        server.stop()


async def after_intake(store, args, server, mix_jobs, template, postmaster) -> None:
    """Fill up to ``--jobs`` jobs, then time status and user-jobs queries."""
    fill = max(args.jobs - len(mix_jobs), args.user_jobs)
    reg_lines, fill_jobs = registrations(template, fill, args.user_jobs)
    per = -(-len(reg_lines) // args.fill_connections)
    parts = [batches(reg_lines[i:i + per], args.batch) for i in range(0, len(reg_lines), per)]
    meter = CpuMeter(server.proc.pid, postmaster)
    meter.start()
    wall, counts = await intake(server.store_port, parts, args.window)
    cpu = meter.stop()
    results = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    total = len(mix_jobs) + len(fill_jobs)
    say(f"{store:8s} fill: {len(reg_lines)} registrations over {len(parts)} connections, "
        f"{len(reg_lines) / wall:.0f}/s ({wall:.1f} s; {cpu}; {results}); "
        f"{total} jobs stored; load {_load()}")
    rng = random.Random(7)
    for label, pool in (("mix jobs", mix_jobs), ("registered-only jobs", fill_jobs)):
        sample = rng.sample(pool, min(args.status_samples, len(pool)))
        for front, (lat, errors, cpu) in status_latencies(server.query_port, sample,
                                                          meter).items():
            say(f"{store:8s} status of {len(lat)} {label}, {front}: p50 {_ms(_pct(lat, .5))} ms, "
                f"p99 {_ms(_pct(lat, .99))} ms, max {_ms(lat[-1])} ms ({cpu}; load {_load()})"
                + (f"; {errors} FAILED" if errors else ""))
    for front, (lat, errors) in user_jobs_latencies(server.query_port, args.user_jobs,
                                                    args.repeat).items():
        say(f"{store:8s} user jobs ({args.user_jobs} of {total}), {front}: median "
            f"{_ms(statistics.median(lat))} ms, best {_ms(lat[0])} ms over {len(lat)}; "
            f"load {_load()}" + (f"; {errors} FAILED" if errors else ""))


async def main(args) -> None:
    directory = Path(args.shared) / "data" / "ulm"
    lines, used = build_mix(directory, args.events)
    events = [ulm.parse(ln, require_user=True) for ln in lines]
    template = (directory / "perf_simple_avg_events.reg.log").read_text(
        encoding="utf-8", errors="surrogateescape").splitlines()[0]
    jobs = len({ev.job_id for ev in events})
    size = sum(len(ln) for ln in lines)
    say(f"mix: {len(lines)} events, {size / 1e6:.1f} MB of ULM, {jobs} jobs; template copies: "
        + ", ".join(f"{k}={v}" for k, v in used.items()))
    say(f"intake: batches of {args.batch} events (<= 1 MiB), {args.window} pipelined per "
        f"connection; a fresh lb-server and database per run; {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lbtx-bench-server-"))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    dbs = Databases(args, tmp)
    try:
        for store in args.stores.split(","):
            await bench_store(store, args, (events, lines, template), dbs, tmp)
    finally:
        dbs.close()
        if not os.environ.get("LBTX_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"kept {tmp}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a small run: 5,000 events, 10,000 jobs, 1,000 user jobs, 200 samples")
    p.add_argument("--stores", default="sqlite,postgres")
    p.add_argument("--connections", type=int, nargs="+", default=[1, 8],
                   help="intake connections to measure")
    p.add_argument("--events", type=int, help="events in the mix (minimum; default 30,000)")
    p.add_argument("--jobs", type=int, help="jobs stored for the latencies (default 100,000)")
    p.add_argument("--user-jobs", type=int, help="jobs of the query identity (default 10,000)")
    p.add_argument("--status-samples", type=int, help="status queries per set (default 1,000)")
    p.add_argument("--repeat", type=int, default=3, help="user-jobs queries per front end")
    p.add_argument("--batch", type=int, default=200, help="events per intake batch")
    p.add_argument("--window", type=int, default=4, help="pipelined batches per connection")
    p.add_argument("--fill-connections", type=int, default=8)
    p.add_argument("--dsn", help="a postgresql:// URL to use instead of a private cluster "
                                 "(every run then shares that database)")
    p.add_argument("--no-fsync", action="store_true", help="private cluster without fsync")
    p.add_argument("--profile", type=Path, help="cProfile each server into this directory")
    p.add_argument("--shared", default=os.environ.get("LBTX_SHARED", str(REPO.parent / "shared")))
    args = p.parse_args(argv)
    quick = args.quick
    for name, full, small in (("events", 30_000, 5_000), ("jobs", 100_000, 10_000),
                              ("user_jobs", 10_000, 1_000), ("status_samples", 1_000, 200)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.profile:
        args.profile = args.profile.resolve()
    return args


def run() -> int:
    args = parse_args()
    result = {}

    def done(value):
        result["value"] = value
        reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(main(args)).addBoth(done))
    t0 = time.monotonic()
    reactor.run()
    value = result.get("value")
    if hasattr(value, "raiseException"):
        value.raiseException()
    say(f"total {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run())
