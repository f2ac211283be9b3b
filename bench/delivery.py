"""Durable acknowledgements per second of a real ``twistd lb-logger`` process.

Producers are separate processes, each a blocking :class:`lbtx.producer.Producer`
over the logger's Unix socket, logging for its own job. Two ways of logging:

* ``one``: one event per call (:meth:`Producer.log`), waiting for its
  acknowledgement before the next; throughput is producers / ack latency;
* ``batch``: ``--batch`` events per call (:meth:`Producer.log_many`, one request),
  each acknowledged only once it is on disk.

The logger runs with ``--no-interlogger`` (the logger's side only) and is started
afresh for every measurement, so the mean size of its group commits (lines per
fsync, from its log at shutdown) belongs to that measurement. Beside each
measurement, in the same run and on the same filesystem, the baseline: a minimal
loop appending the same lines (those the logger just wrote to its job files) to
one file with one fdatasync per batch of the logger's mean group-commit size
(bench/spool.py), i.e. what this disk can do with that batch size. The ratio compares the two. Latency is per call, from send to
acknowledgement, as the producer sees it. CPU per event (user + system, during the
measured interval) is given for the logger process and for the producers (their
sum over all events): on a shared, loaded machine it is steadier than the rates.

Usage: ``.venv/bin/python bench/delivery.py [--events N] [--producers 1,16]
[--modes one,batch] [--batch B] [--rounds R] [--dir D] [--profile DIR]``

Issue 4's goal: >= 20,000 events/s with 16 producers, and >= 50% of the baseline.
The end-to-end figures (producer to status query, PostgreSQL) are not measured here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lbtx.jobid import JobId  # noqa: E402
from lbtx.producer import Producer  # noqa: E402
from processes import cpu_seconds, yardsticks  # noqa: E402
from profiles import Spy, have_py_spy, report_profiles  # noqa: E402
from spool import run_baseline  # noqa: E402

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
ZERO = ("UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:"
        "APP=000000:LBS=000000")
_CLOSED = re.compile(r"closed: (\d+) lines made durable in (\d+) group commits")


def _produce(sock: str, events: int, batch: int, warmup, start, ready, done) -> None:
    producer = Producer(sock, source="LRMS", user="/CN=bench", host="wn01.example.org",
                        timeout=60)
    ctx = producer.context(JobId.generate("lb.example.org:9000"), ZERO)
    with warmup:  # one producer at a time: each warm-up event is a group commit alone
        producer.log(ctx, "Running", node="warmup")   # connected, file created
    ready.release()
    latencies = []
    clock = time.perf_counter
    start.wait()
    cpu0 = time.process_time()
    if batch <= 1:
        for i in range(events):
            t = clock()
            producer.log(ctx, "Running", node=f"wn{i}")
            latencies.append(clock() - t)
    else:
        for first in range(0, events, batch):
            items = [(ctx, "Running", {"node": f"wn{i}"})
                     for i in range(first, min(events, first + batch))]
            t = clock()
            producer.log_many(items)
            latencies.append(clock() - t)
    done.put((events, latencies, time.process_time() - cpu0))
    producer.close()


def _start_logger(base: str, name: str):
    data = os.path.join(base, name)
    sock = os.path.join(data, "logger.sock")
    log = os.path.join(base, name + ".log")
    proc = subprocess.Popen([TWISTD, "-n", "--logfile", log,
                             "--pidfile", os.path.join(base, name + ".pid"), "lb-logger",
                             "-d", data, "--no-interlogger"],
                            cwd=base, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    for _ in range(600):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(sock)
            return proc, sock, log
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"lb-logger exited with {proc.returncode}; see {log}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("lb-logger did not come up")


def _stop_logger(proc, log: str) -> tuple[int, int]:
    """Stop it; (lines, group commits) it reported at shutdown (warm-up included)."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    with open(log) as f:
        found = _CLOSED.findall(f.read())
    if not found:
        raise RuntimeError(f"no spool statistics in {log}")
    lines, batches = map(int, found[-1])
    return lines, batches


def _spooled_lines(data: str, limit: int = 4096) -> list[bytes]:
    """Lines the logger wrote to its job files (as it wrote them), up to ``limit``."""
    lines: list[bytes] = []
    for path in sorted(Path(data).glob("**/*.ulm")):
        if "quarantine" in path.parts:
            continue
        lines += path.read_bytes().splitlines(keepends=True)[: limit - len(lines)]
        if len(lines) >= limit:
            break
    return lines


def measure(base: str, producers: int, events: int, batch: int, profile: Path | None = None
            ) -> dict:
    """One measurement with a fresh logger: rate, latencies, mean group commit, and
    (some of) the lines it spooled. With ``profile``, py-spy samples the logger
    (all threads, and the GIL holder) while the producers run."""
    name = f"logger-{producers}-{batch}-{time.monotonic_ns()}"
    proc, sock, log = _start_logger(base, name)
    spies: list[Spy] = []
    try:
        per = max(1, events // producers)
        warmup = multiprocessing.Lock()
        start = multiprocessing.Event()
        ready = multiprocessing.Semaphore(0)
        done = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_produce,
                                         args=(sock, per, batch, warmup, start, ready, done))
                 for _ in range(producers)]
        for p in procs:
            p.start()
        for _ in procs:   # everyone connected and warmed up
            if not ready.acquire(timeout=120):
                raise RuntimeError("a producer did not start")
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            spies = [Spy("lb-logger", proc.pid, profile / f"{name}{'-gil' if gil else ''}.txt",
                         600, gil=gil, rate=500) for gil in (False, True)]
            time.sleep(1.0)  # py-spy attached
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        start.set()
        results = [done.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - t0
        logger_cpu = cpu_seconds(proc.pid) - cpu0
        for p in procs:
            p.join()
    finally:
        lines, batches = _stop_logger(proc, log)
        for spy in spies:  # they stop with the logger
            spy.wait()
    report_profiles(spies)
    total = sum(n for n, _, _ in results)
    latencies = sorted(x for _, lat, _ in results for x in lat)
    producer_cpu = sum(c for _, _, c in results)
    # the logger's count includes the warm-up: one event per producer, each alone
    mean_batch = (lines - producers) / max(1, batches - producers)
    spooled = _spooled_lines(os.path.join(base, name))
    shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return dict(rate=total / elapsed, p50=_quantile(latencies, 0.50),
                p99=_quantile(latencies, 0.99), mean_batch=mean_batch,
                logger_us=logger_cpu / total * 1e6, producer_us=producer_cpu / total * 1e6,
                lines=spooled)


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000, help="events per measurement")
    parser.add_argument("--producers", default="1,16", help="comma-separated producer counts")
    parser.add_argument("--modes", default="one,batch", help="one (log) and/or batch (log_many)")
    parser.add_argument("--batch", type=int, default=64, help="events per log_many call")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per figure (median)")
    parser.add_argument("--dir", default=None, help="where to put the spool (a temp dir in it)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the logger into DIR (the figures then include py-spy's cost)")
    args = parser.parse_args()
    if args.profile is not None and not have_py_spy():
        args.profile = None
    base = tempfile.mkdtemp(prefix="lbtx-bench-delivery-", dir=args.dir)
    print(f"lb-logger bench in {base} ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, {yardsticks()}); baseline: "
          f"the same lines, one fdatasync per the logger's mean group commit")
    print(f"{'mode':>6} {'prod':>4} {'acks/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'lines/fsync':>11} {'baseline/s':>10} {'ratio':>6} {'logger us/ev':>12} "
          f"{'prod us/ev':>10}")
    try:
        for mode in args.modes.split(","):
            batch = 1 if mode == "one" else args.batch
            for producers in (int(c) for c in args.producers.split(",")):
                events = args.events if producers > 1 else min(args.events, 5000 * batch)
                rounds = []
                for _ in range(args.rounds):  # interleaved, so both see the same disk load
                    m = measure(base, producers, events, batch, args.profile)
                    lines = m.pop("lines")
                    m["baseline"] = run_baseline(base, lines * (4096 // len(lines) + 1),
                                                 max(1, round(m["mean_batch"])), events)
                    rounds.append(m)
                fig = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
                ratio = statistics.median(r["rate"] / r["baseline"] for r in rounds)
                print(f"{mode:>6} {producers:>4} {fig['rate']:>8.0f} {fig['p50'] * 1e3:>7.2f} "
                      f"{fig['p99'] * 1e3:>7.2f} {fig['mean_batch']:>11.1f} "
                      f"{fig['baseline']:>10.0f} {ratio:>6.0%} {fig['logger_us']:>12.1f} "
                      f"{fig['producer_us']:>10.1f}", flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
