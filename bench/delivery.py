"""Durable acknowledgements per second of a real ``twistd lb-logger`` process.

Producers are separate processes, each a blocking :class:`lbtx.producer.Producer`
over the logger's Unix socket, logging one event at a time for its own job and
waiting for the acknowledgement (the event is on disk). The logger runs with
``--no-interlogger`` (the logger's side only). Beside it, in the same run and on
the same filesystem, the baseline of bench/spool.py: a minimal loop appending the
same lines to one file with one fdatasync per batch of as many lines as there
are producers (each producer has one event outstanding, so that is the batch a
group commit can reach).

Usage: ``.venv/bin/python bench/delivery.py [--events N] [--producers 1,16] [--dir D]``

Issue 4's goal: >= 20,000 events/s with 16 producers, and >= 50% of the baseline.
The end-to-end figures (producer to status query, PostgreSQL) are not measured yet.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
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
from spool import run_baseline  # noqa: E402

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def _produce(sock: str, events: int, start, done) -> None:
    producer = Producer(sock, source="LRMS", user="/CN=bench", timeout=60)
    ctx = producer.context(JobId.generate("lb.example.org:9000"),
                           "UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:"
                           "LM=000000:LRMS=000000:APP=000000:LBS=000000")
    producer.log(ctx, "Running", node="warmup")   # connected, file created
    start.wait()
    for i in range(events):
        producer.log(ctx, "Running", node=f"wn{i}")
    done.put(events)
    producer.close()


def measure(sock: str, producers: int, events: int) -> float:
    per = max(1, events // producers)
    start = multiprocessing.Event()
    done = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_produce, args=(sock, per, start, done))
             for _ in range(producers)]
    for p in procs:
        p.start()
    time.sleep(1.0)   # everyone connected and warmed up
    t0 = time.perf_counter()
    start.set()
    total = sum(done.get(timeout=600) for _ in procs)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per measurement")
    parser.add_argument("--producers", default="1,16", help="comma-separated producer counts")
    parser.add_argument("--dir", default=None, help="where to put the spool (a temp dir in it)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="lbtx-bench-delivery-", dir=args.dir)
    sock = os.path.join(base, "data", "logger.sock")
    logger = subprocess.Popen([TWISTD, "-n", "--logfile", os.path.join(base, "logger.log"),
                               "--pidfile", os.path.join(base, "logger.pid"), "lb-logger",
                               "-d", os.path.join(base, "data"), "--no-interlogger"],
                              cwd=base, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        for _ in range(600):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                break
            except OSError:
                time.sleep(0.05)
        line = (b'DG.LLLID=1 DATE=20240301121500.000000 HOST="h" PROG=edg-wms LVL=SYSTEM '
                b'DG.PRIORITY=4 DG.SOURCE="LRMS" DG.EVNT="Running" '
                b'DG.JOBID="https://lb.example.org:9000/x" DG.SEQCODE="UI=000000" '
                b'DG.USER="/CN=bench" DG.RUNNING.NODE="wn1"\n')
        print(f"lb-logger bench in {base}")
        print(f"{'producers':>9} {'acks/s':>10} {'baseline/s':>11} {'ratio':>6}")
        for producers in (int(c) for c in args.producers.split(",")):
            events = args.events if producers > 1 else min(args.events, 3000)
            rate = measure(sock, producers, events)
            baseline = run_baseline(base, [line] * 4096, producers, events)
            print(f"{producers:>9} {rate:>10.0f} {baseline:>11.0f} {rate / baseline:>6.0%}")
    finally:
        logger.send_signal(signal.SIGTERM)
        logger.wait(30)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
