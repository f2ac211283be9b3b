"""Durable appends per second of the logger's spool, beside the disk's own limit.

Producers run in-process as concurrent loops: each appends one event, waits for
the Deferred (the line is durable), appends the next. Each producer logs for its
own jobs (``--jobs`` per producer, one file each). The spool writes in batches,
one group sync per batch (lbtx.logger.durable.sync_files).

The baseline, measured in the same run on the same filesystem, is a minimal
Python loop that appends the same lines to one file, ``fdatasync`` once per batch
of the size the spool reached on average: what this disk can do with that batch
size, without any of the spool's work.

Usage: ``.venv/bin/python bench/spool.py [--events N] [--producers 1,16] [--jobs J] [--dir D] [--rounds R]``

Issue 4's goal: >= 20,000 events/s with 16 producers, and >= 50% of the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import task  # noqa: E402
from twisted.internet.defer import Deferred, gatherResults  # noqa: E402

from lbtx.jobid import JobId  # noqa: E402
from lbtx.logger import layout  # noqa: E402
from lbtx.logger.durable import fdatasync  # noqa: E402
from lbtx.logger.spool import Spool  # noqa: E402

RECORD = ('DATE=20240301121500.000000 HOST="wn01.example.org" PROG=edg-wms LVL=SYSTEM '
          'DG.PRIORITY=0 DG.SOURCE="LRMS" DG.SRC_INSTANCE="" DG.EVNT="Running" '
          'DG.JOBID="{job}" DG.SEQCODE="UI=000002:NS=0000000004:WM=000003:BH=0000000001:'
          'JSS=000002:LM=000001:LRMS={n:06d}:APP=000000:LBS=000000" '
          'DG.USER="/DC=org/DC=example/CN=Bench User" DG.RUNNING.NODE="wn01.example.org"')


def jobs_for(producer: int, count: int) -> list[JobId]:
    return [JobId.parse(f"https://lb.example.org:9000/bench{producer:03d}x{j:03d}AAAAAAAAAAAA")
            for j in range(count)]


async def run_spool(reactor, directory: str, producers: int, events: int, jobs: int):
    spool = Spool(directory, reactor=reactor)
    await spool.start()
    per_producer = events // producers
    lines: list[bytes] = []

    async def producer(p: int) -> None:
        mine = jobs_for(p, jobs)
        records = [RECORD.format(job=mine[i % jobs], n=i).encode() for i in range(per_producer)]
        if p == 0:
            lines.extend(layout.format_line(10**15 + i, r) for i, r in enumerate(records))
        for i, record in enumerate(records):
            await spool.append(mine[i % jobs], record)

    start = time.perf_counter()
    try:
        await gatherResults([Deferred.fromCoroutine(producer(p)) for p in range(producers)])
        elapsed = time.perf_counter() - start
    finally:
        await spool.close()
    return spool.lines / elapsed, spool.lines / spool.batches, lines


def run_baseline(directory: str, lines: list[bytes], batch: int, events: int) -> float:
    """Events/s of appending ``lines`` to one file, one fdatasync per ``batch`` lines."""
    path = os.path.join(directory, "baseline.ulm")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    batch = max(1, batch)
    chunks = [b"".join(lines[i:i + batch]) for i in range(0, len(lines) - batch + 1, batch)]
    done = 0
    start = time.perf_counter()
    try:
        while done < events:
            for chunk in chunks:
                os.write(fd, chunk)
                fdatasync(fd)
                done += batch
                if done >= events:
                    break
    finally:
        os.close(fd)
        os.unlink(path)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per measurement")
    parser.add_argument("--producers", default="1,16", help="comma-separated producer counts")
    parser.add_argument("--jobs", type=int, default=1, help="jobs (files) per producer")
    parser.add_argument("--dir", default=None, help="where to put the spool (a temp dir in it)")
    parser.add_argument("--rounds", type=int, default=7, help="measurements per figure (median)")
    args = parser.parse_args()
    counts = [int(c) for c in args.producers.split(",")]

    async def measure(reactor):
        base = tempfile.mkdtemp(prefix="lbtx-bench-spool-", dir=args.dir)
        try:
            print(f"spool bench in {base}: {args.events} events per run (3000 for 1 producer),"
                  f" {args.jobs} job(s) per producer")
            for n in counts:
                events = args.events if n > 1 else min(args.events, 3000)
                rates, batches, baselines = [], [], []
                for r in range(args.rounds):  # interleaved, so both see the same disk load
                    spool_dir = os.path.join(base, f"spool-{n}-{r}")
                    rate, mean_batch, lines = await run_spool(reactor, spool_dir, n, events,
                                                              args.jobs)
                    rates.append(rate)
                    batches.append(mean_batch)
                    baselines.append(run_baseline(base, lines, round(mean_batch), events))
                    shutil.rmtree(spool_dir)
                rate, mean_batch, baseline = (statistics.median(x) for x in
                                              (rates, batches, baselines))
                # each round's ratio compares two runs made back to back, under the same
                # load of the disk; their median is steadier than a ratio of medians
                ratio = statistics.median(r / b for r, b in zip(rates, baselines))
                print(f"{n:3d} producers: {rate:9.0f} durable appends/s, mean batch "
                      f"{mean_batch:6.1f} lines | baseline (1 file, fdatasync per "
                      f"{round(mean_batch)} lines) {baseline:9.0f} events/s | "
                      f"{100 * ratio:5.1f}% of baseline  (medians of {args.rounds} rounds)")
        finally:
            shutil.rmtree(base, ignore_errors=True)

    task.react(lambda reactor: Deferred.fromCoroutine(measure(reactor)))


if __name__ == "__main__":
    main()
