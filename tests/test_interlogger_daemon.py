"""``twistd lb-interlogger`` as a process: it delivers a logger's spool to a real
``twistd lb-server``, which then holds the states ``lbtx replay`` computes; an
event logged while the server is down is delivered when it returns."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.task import deferLater
from twisted.python import usage

from conftest import SCENARIOS
from daemon_support import (free_port_pair, spool_empty, start_daemon, start_server, stop_daemon,
                            wait_until)
from lbtx.interlogger.options import InterloggerOptions, delivery_config
from lbtx.interlogger.positions import read_position
from lbtx.protocols.box.client import connect_box
from lbtx.protocols.box.messages import ResultCode
from lbtx.replay import Replay
from lbtx.server.store import open_store
from lbtx.status import to_json
from scenario_support import load, scenario_lines

SCENARIO = "P01-simple-job-full-life.json"


def scenario_for(port: int, name: str = SCENARIO) -> list[str]:
    """The scenario's records with its job ids moved to the server on ``port``."""
    scenario = load(SCENARIOS / name)
    for alias, job in scenario["jobs"].items():
        scenario["jobs"][alias] = "https://127.0.0.1:%d/%s" % (port, job.rsplit("/", 1)[1])
    return scenario_lines(scenario)


def replayed(lines) -> dict:
    replay = Replay()
    for _ in replay.feed_stream(io.StringIO("".join(lines)), "all"):
        pass
    return {str(rec.job_id): to_json(rec.status) for rec in replay.jobs()}


@defer.inlineCallbacks
def stored_statuses(db_path, job_ids):
    store = open_store("sqlite:///" + str(db_path), reactor)
    yield store.start()
    try:
        out = {}
        for job_id in job_ids:
            rec = yield store.job_status(job_id)
            out[job_id] = to_json(rec.status)
    finally:
        yield store.stop()
    return out


@defer.inlineCallbacks
def log_through(sock, lines):
    client = yield connect_box(UNIXClientEndpoint(reactor, str(sock)), clock=reactor)
    try:
        results = yield client.send_batch([ln.rstrip("\n").encode() for ln in lines])
    finally:
        client.transport.loseConnection()
    assert [r.code for r in results] == [ResultCode.STORED] * len(lines)


def test_options():
    options = InterloggerOptions()
    options.parseOptions(["-d", "/tmp/x", "--backoff-max", "0.5", "--destination-template",
                          "lbtls:{host}:{port}"])
    assert options["spool"] == "/tmp/x/spool"
    config = delivery_config(options)
    assert config.queue_policy.backoff.maximum == 0.5
    with pytest.raises(usage.UsageError):
        InterloggerOptions().parseOptions(["--destination-template", "tcp:{port}"])
    assert config.queue_policy.linger == 0.02   # the daemons' default
    for text, linger in (("0", 0.0), ("0.25", 0.25)):
        options = InterloggerOptions()
        options.parseOptions(["--batch-linger", text])
        assert delivery_config(options).queue_policy.linger == linger
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(usage.UsageError, match="--batch-linger"):
            InterloggerOptions().parseOptions(["--batch-linger", bad])


def logger_alone(tmp_path):
    """``(server port, logger data dir, its socket, P01's lines for that server,
    the process)`` of a started ``lb-logger --no-interlogger``."""
    port = free_port_pair()
    data = tmp_path / "logger-data"
    sock = data / "logger.sock"
    logger = start_daemon("lb-logger", ["-d", str(data), "--no-interlogger"], tmp_path, sock,
                          tag="logger")
    return port, data, sock, scenario_for(port), logger


def stop_all(*procs) -> None:
    for proc in procs:
        if proc is not None:
            stop_daemon(proc)


@defer.inlineCallbacks
def assert_stored_as_replayed(tmp_path, lines):
    """The stopped server's SQLite store holds the states ``lbtx replay`` computes."""
    expected = replayed(lines)
    stored = yield stored_statuses(tmp_path / "server-data" / "lbtx.sqlite", sorted(expected))
    assert stored == expected


@pytest_twisted.inlineCallbacks
def test_lb_interlogger_delivers_the_spool_to_lb_server(tmp_path):
    port, data, sock, lines, logger = logger_alone(tmp_path)
    server = interlogger = None
    try:
        # the server is down: the logger still answers at once, the interlogger waits
        yield log_through(sock, lines[:3])
        interlogger = start_daemon("lb-interlogger", [
            "-d", str(data), "--rescan-period", "0.2", "--backoff-max", "0.3"],
            tmp_path, sock, tag="interlogger")
        server = start_server(tmp_path, port)
        yield log_through(sock, lines[3:])
        wait_until(lambda: spool_empty(data / "spool"), what="delivery of the spool")
    finally:
        stop_all(interlogger, logger, server)
    yield assert_stored_as_replayed(tmp_path, lines)


class _Hints:
    def __init__(self):
        self.stems: list[set] = []

    def hint(self, stems):
        self.stems.append(set(stems))


@pytest_twisted.inlineCallbacks
def test_spool_watch_hints_changed_job_files(tmp_path):
    """The watch hands over the stems of job files created or appended to, once
    per reactor turn, and ignores positions and other files."""
    from lbtx.interlogger.watch import SpoolWatch
    from lbtx.logger import layout
    from lbtx.jobid import JobId
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    hints = _Hints()
    watch = SpoolWatch(hints, str(tmp_path), reactor, 60)
    watch.startService()
    try:
        jobs = [JobId.parse(f"https://lb.example.org:9000/job{i}") for i in range(3)]
        names = [layout.event_file_name(j) for j in jobs]
        for name in names:
            (tmp_path / name).write_bytes(b"DG.LLLID=1 DATE=1\n")
        (tmp_path / (layout.spool_stem(jobs[0]) + layout.POSITION_SUFFIX)).write_bytes(b"x")
        (tmp_path / "unrelated.txt").write_bytes(b"x")
        yield deferLater(reactor, 0.2, lambda: None)
        seen = set().union(*hints.stems) if hints.stems else set()
        assert seen == {layout.spool_stem(j) for j in jobs}
        before = len(hints.stems)
        with open(tmp_path / names[1], "ab") as f:
            f.write(b"DG.LLLID=2 DATE=2\n")
        yield deferLater(reactor, 0.2, lambda: None)
        assert hints.stems[before:] == [{layout.spool_stem(jobs[1])}]
    finally:
        watch.stopService()
    with open(tmp_path / names[2], "ab") as f:
        f.write(b"DG.LLLID=3 DATE=3\n")
    count = len(hints.stems)
    yield deferLater(reactor, 0.2, lambda: None)
    assert len(hints.stems) == count   # stopped: nothing more


def _wait_delivering(workdir, tag: str) -> None:
    """Until the interlogger logging to ``workdir/TAG.log`` has taken the spool and
    finished its start-up scan (it says so only then). Its socket cannot tell: it
    has none, and a fixed pause is too short on a loaded machine."""
    log = workdir / f"{tag}.log"
    wait_until(lambda: log.exists() and "interlogger delivering" in log.read_text(),
               what=f"{tag} to finish its start-up scan")


@pytest_twisted.inlineCallbacks
def test_lb_interlogger_alone_delivers_without_waiting_for_its_rescan(tmp_path):
    """Run on its own with a rescan only every 300 s, lb-interlogger still delivers
    events as they are logged (its watch of the spool); with --no-watch it does not."""
    port, data, sock, lines, logger = logger_alone(tmp_path)
    server = interlogger = None

    def delivered() -> bool:
        files = [n for n in os.listdir(data / "spool") if n.endswith(".ulm")]
        if not files:
            return False
        for name in files:
            pos = read_position(str(data / "spool" / (name[:-4] + ".pos")))
            if pos is None or pos.offset != os.path.getsize(data / "spool" / name):
                return False
        return True

    try:
        server = start_server(tmp_path, port)
        interlogger = start_daemon("lb-interlogger", [
            "-d", str(data), "--rescan-period", "300", "--no-watch"],
            tmp_path, sock, tag="interlogger-nowatch")
        _wait_delivering(tmp_path, "interlogger-nowatch")   # its start-up scan is over
        yield log_through(sock, lines[:2])
        yield deferLater(reactor, 3.0, lambda: None)
        assert not delivered()   # waits for its rescan
        stop_daemon(interlogger)
        interlogger = start_daemon("lb-interlogger", [
            "-d", str(data), "--rescan-period", "300"], tmp_path, sock, tag="interlogger")
        _wait_delivering(tmp_path, "interlogger")
        yield log_through(sock, lines[2:])
        started = time.monotonic()
        while not delivered():
            assert time.monotonic() - started < 20, "not delivered within 20 s"
            yield deferLater(reactor, 0.05, lambda: None)
    finally:
        stop_all(interlogger, logger, server)
    yield assert_stored_as_replayed(tmp_path, lines)
