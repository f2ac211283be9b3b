"""Real daemons and producer processes for the delivery fault-injection tests.

:class:`Daemons` runs ``twistd lb-server`` (SQLite), ``twistd lb-logger`` (with
its in-process interlogger, or ``--no-interlogger``) and ``twistd
lb-interlogger`` over one spool, and kills and restarts each of them; every
start has its own log file (``server-3.log`` ...). :func:`start_producers` runs
:mod:`fault_producer` processes; :func:`read_outcomes` collects what they had
acknowledged; :func:`check_delivered` compares the server's store with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from twisted.internet import defer

from conftest import REPO, SCENARIOS
from daemon_support import free_port_pair, start_daemon, stop_daemon, wait_until
from lbtx.jobid import JobId
from lbtx.producer import Producer
from lbtx.producer.context import default_user
from test_delivery_end_to_end import stored
from test_interlogger_daemon import replayed

P01 = SCENARIOS / "P01-simple-job-full-life.json"
#: Records per job of the P01 sequence (the registration and 14 events).
RECORDS_PER_JOB = 15
WORKER = Path(__file__).resolve().parent / "fault_producer.py"

#: Fast retries, so that tests wait seconds, not minutes (the defaults are 60 s).
QUICK_DELIVERY = ["--rescan-period", "0.5", "--backoff-max", "0.5", "--unknown-job-retry", "0.5"]


@contextlib.contextmanager
def logger_with_server(workdir: Path, delivery_args: list[str], *, standalone: bool = False):
    """``(Daemons, Producer)``: a server and a logger with its interlogger in the
    process (``standalone``: beside it), started with ``delivery_args``, and a
    blocking producer (LRMS) on the logger's socket; everything stopped afterwards."""
    d = Daemons(workdir, standalone_interlogger=standalone, delivery_args=delivery_args)
    producer = Producer(str(d.sock), source="LRMS", user=default_user(),
                        host="wn.example.org", timeout=30)
    try:
        d.start_all()   # inside: the daemons that did start are stopped if one fails
        yield d, producer
    finally:
        producer.close()
        d.stop_all()


class Daemons:
    """The three daemons of local delivery over ``workdir``.

    :param standalone_interlogger: run ``lb-logger --no-interlogger`` and a separate
        ``lb-interlogger``; else the logger's in-process interlogger delivers.
    """

    def __init__(self, workdir: Path, *, standalone_interlogger: bool,
                 delivery_args: list[str] = QUICK_DELIVERY, spool: Path | None = None):
        self.workdir = workdir
        self.port = free_port_pair()
        self.data = workdir / "logger-data"
        self.spool = spool or self.data / "spool"
        self.sock = self.data / "logger.sock"
        self.server_data = workdir / "server-data"
        self.standalone = standalone_interlogger
        self.delivery_args = list(delivery_args)
        self.procs: dict[str, subprocess.Popen | None] = {
            "server": None, "logger": None, "interlogger": None}
        self.starts: dict[str, int] = {"server": 0, "logger": 0, "interlogger": 0}
        self.logs: dict[str, list[Path]] = {"server": [], "logger": [], "interlogger": []}

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def jobs(self, count: int) -> list[str]:
        return [str(JobId.generate(self.server_name)) for _ in range(count)]

    def _tag(self, name: str) -> str:
        self.starts[name] += 1
        tag = f"{name}-{self.starts[name]}"
        self.logs[name].append(self.workdir / f"{tag}.log")
        return tag

    def start(self, name: str) -> subprocess.Popen:
        assert self.procs[name] is None or self.procs[name].poll() is not None, name
        if name == "server":
            proc = start_daemon("lb-server", [
                "--data-dir", str(self.server_data),
                "--listen-store", f"tcp:{self.port + 1}:interface=127.0.0.1",
                "--listen-query", f"tcp:{self.port}:interface=127.0.0.1",
                "--server-name", self.server_name,
                "--peer-identity", "/DC=org/DC=example/CN=Test Interlogger"],
                self.workdir, [self.port + 1, self.port], tag=self._tag(name))
        elif name == "logger":
            args = ["-d", str(self.data), "-f", str(self.spool), *self.delivery_args]
            if self.standalone:
                args.append("--no-interlogger")
            proc = start_daemon("lb-logger", args, self.workdir, self.sock, tag=self._tag(name))
        else:
            assert self.standalone
            proc = self._start_interlogger()
        self.procs[name] = proc
        return proc

    def _start_interlogger(self) -> subprocess.Popen:
        tag = self._tag("interlogger")
        log = self.workdir / f"{tag}.log"
        pidfile = self.workdir / f"{tag}.pid"
        if pidfile.exists():
            pidfile.unlink()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        proc = subprocess.Popen([twistd, "-n", "--logfile", str(log), "--pidfile", str(pidfile),
                                 "lb-interlogger", "-d", str(self.data), "-f", str(self.spool),
                                 *self.delivery_args], cwd=self.workdir, env=env)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"lb-interlogger exited {proc.returncode}:\n"
                                     + (log.read_text() if log.exists() else ""))
            return log.exists() and "interlogger delivering" in log.read_text()

        wait_until(ready, timeout=30, what="the start of lb-interlogger")
        return proc

    def start_all(self) -> None:
        self.start("server")
        self.start("logger")
        if self.standalone:
            self.start("interlogger")

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` (no clean shutdown of any kind) and reap it."""
        proc = self.procs[name]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(15)

    def stop(self, name: str) -> None:
        proc = self.procs[name]
        if proc is not None:
            stop_daemon(proc)

    def stop_all(self) -> None:
        for name in ("interlogger", "logger", "server"):
            self.stop(name)

    def log_text(self, name: str) -> str:
        """Every log of ``name``'s starts, rotated parts (``.log.2``, ``.log.1``) first."""
        parts = []
        for log in self.logs[name]:
            rotated = sorted(log.parent.glob(log.name + ".*"),
                             key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
            parts += [p for p in rotated if p.suffix[1:].isdigit()] + [log]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())

    @property
    def db_path(self) -> Path:
        return self.server_data / "lbtx.sqlite"


@dataclass
class Outcomes:
    """What the producers reported."""

    acked: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    gave_up: list[dict] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        """The acknowledged records, with LF (as ``lbtx replay`` reads them)."""
        return [a["ack"] + "\n" for a in self.acked]


def start_producers(workdir: Path, sock: Path, job_groups: list[list[str]], *,
                    rate: float = 0.0, timeout: float = 5.0, give_up: float = 120.0
                    ) -> tuple[list[subprocess.Popen], list[Path]]:
    """One :mod:`fault_producer` process per group of jobs."""
    procs, outs = [], []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(WORKER.parent)]))
    for i, jobs in enumerate(job_groups):
        out = workdir / f"producer-{i}.jsonl"
        config = workdir / f"producer-{i}.json"
        config.write_text(json.dumps({
            "scenario": str(P01), "logger": str(sock), "jobs": jobs, "out": str(out),
            "user": default_user(), "timeout": timeout, "retry_sleep": 0.05, "rate": rate,
            "give_up": give_up}))
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(config)], env=env,
                                      stderr=open(workdir / f"producer-{i}.err", "w")))
        outs.append(out)
    return procs, outs


def phase_reached(outs: list[Path], phase: str) -> bool:
    for out in outs:
        if not out.exists() or f'"phase": "{phase}"' not in out.read_text():
            return False
    return True


def wait_producers(procs: list[subprocess.Popen], workdir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        for i, proc in enumerate(procs):
            proc.wait(max(0.1, deadline - time.monotonic()))
            assert proc.returncode == 0, (
                f"producer {i} exited {proc.returncode}:\n"
                + (workdir / f"producer-{i}.err").read_text()[-3000:])
    finally:
        kill_producers(procs)


def kill_producers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_outcomes(outs: list[Path]) -> Outcomes:
    outcomes = Outcomes()
    for out in outs:
        for text in out.read_text().splitlines():
            record = json.loads(text)
            if "ack" in record:
                outcomes.acked.append(record)
            elif "refused" in record:
                outcomes.refused.append(record)
            elif "gave_up" in record:
                outcomes.gave_up.append(record)
            else:
                outcomes.phases.setdefault(record["phase"], []).append(record["t"])
    return outcomes


@defer.inlineCallbacks
def check_delivered(db_path: Path, acked_lines: list[str], job_ids: list[str]):
    """Every acknowledged record is stored exactly once (and nothing else came from
    the producers), and every job's status equals ``lbtx replay`` of its stored
    records and of the acknowledged ones. Fires with the number of stored records."""
    expected = replayed(acked_lines)
    assert set(expected) == set(job_ids)
    statuses, events = yield stored(db_path, sorted(job_ids))
    by_job: dict[str, list[str]] = {job: [] for job in job_ids}
    for line in acked_lines:
        job = line.split(' DG.JOBID="', 1)[1].split('"', 1)[0]
        by_job[job].append(line.rstrip("\n"))
    count = 0
    for job in job_ids:
        stored_lines = sorted(events[job])
        assert len(stored_lines) == len(set(stored_lines)), f"{job}: an event stored twice"
        assert stored_lines == sorted(set(by_job[job])), f"{job}: stored != acknowledged"
        count += len(stored_lines)
    assert statuses == expected
    assert replayed([ln + "\n" for job in job_ids for ln in events[job]]) == statuses
    return count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: Quarantine reasons of pieces the logger cuts at recovery (never acknowledged records).
RECOVERY_CUTS = {"incomplete last line (no line feed)", "torn journal record", "not a ULM record"}


def quarantine_reasons(spool: Path) -> list[str]:
    """The reason of every lot in the spool's quarantine folder (prefixes of the
    reasons that carry details, such as ``not a ULM record: ...``)."""
    folder = spool / "quarantine"
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.reason")):
        reason = json.loads(path.read_text())["reason"]
        out.append(reason.split(":")[0].split(" (")[0] if reason.startswith(
            ("not a ULM", "torn journal")) else reason)
    return out


@contextlib.contextmanager
def size_limited_tmpfs(mount: Path, size: str = "2m"):
    """A tmpfs of ``size`` mounted on ``mount`` (created), unmounted at the end
    whatever happened; the test is skipped (with the reason) if it cannot be
    mounted (not root, no permission in a container)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
