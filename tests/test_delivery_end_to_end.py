"""Local delivery end to end, with real processes: ``twistd lb-server`` (SQLite)
and ``twistd lb-logger`` with its in-process interlogger.

Jobs are registered with the producer library (synchronously, straight to the
server) and the standard WMS sequence of P01 is logged through the logger, each
event by the component that logs it, passing the sequence code along. The
logger is killed with SIGKILL half way and restarted. Afterwards every
acknowledged event is stored exactly once and every job's status equals what
``lbtx replay`` computes from the logged records.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from conftest import SCENARIOS
from daemon_support import free_port_pair, spool_empty, start_daemon, start_server, stop_daemon, wait_until
from lbtx.jobid import JobId
from lbtx.producer import DeferredProducer, Producer, RefusedError
from lbtx.producer.context import default_user
from lbtx.protocols.box.messages import ResultCode
from lbtx.server.store import open_store
from lbtx.status import to_json
from scenario_support import load, scenario_event
from test_interlogger_daemon import replayed

WMS = load(SCENARIOS / "P01-simple-job-full-life.json")


class RecordingProducer(Producer):
    """A producer that keeps every record it sent and had acknowledged."""

    def __init__(self, *args, sent, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent = sent

    def _send(self, address, lines):
        results = super()._send(address, lines)
        if address == self.logger:
            self.sent += [ln.decode() + "\n" for ln in lines]
        return results


def wms_steps():
    """(source, type, attributes) of each step of the standard WMS sequence."""
    out = []
    for step in WMS["steps"]:
        ev = scenario_event(WMS, step["event"])
        out.append((ev.source, ev.type_name, ev.attrs()))
    return out


def start_logger(tmp_path, data):
    return start_daemon("lb-logger", ["-d", str(data), "--rescan-period", "0.2",
                                      "--backoff-max", "0.3"], tmp_path, data / "logger.sock",
                        tag="logger")


@defer.inlineCallbacks
def stored(db_path, job_ids):
    store = open_store("sqlite:///" + str(db_path), reactor)
    yield store.start()
    try:
        statuses, events = {}, {}
        for job_id in job_ids:
            statuses[job_id] = to_json((yield store.job_status(job_id)).status)
            events[job_id] = [re.sub(r"^DG\.LLLID=[0-9]+ ", "", e.line)
                              for e in (yield store.job_events(job_id))
                              if 'DG.SOURCE="LBServer"' not in e.line]
    finally:
        yield store.stop()
    return statuses, events


@pytest_twisted.inlineCallbacks
def test_wms_sequence_survives_sigkill_of_logger_and_server(tmp_path):
    port = free_port_pair()
    data = tmp_path / "logger-data"
    sock = str(data / "logger.sock")
    server = start_server(tmp_path, port)
    logger = start_logger(tmp_path, data)
    sent: list[str] = []
    steps = wms_steps()
    jobs = [JobId.generate(f"127.0.0.1:{port}") for _ in range(6)]
    user = default_user()
    try:
        codes = {}
        registrar = RecordingProducer(sock, source=steps[0][0], user=user, sent=sent, timeout=10)
        for job in jobs:   # registration reaches the server before register returns
            _, type_name, attrs = steps[0]
            codes[job] = registrar.register(job, **attrs).seqcode
        producers = {}
        half = len(steps) // 2
        for i, (source, type_name, attrs) in enumerate(steps[1:], start=1):
            if i == half:
                stop_daemon(logger, kill=True)       # SIGKILL, mid-delivery
                logger = start_logger(tmp_path, data)
            if i == half + 2:
                stop_daemon(server, kill=True)       # the server too, while events flow
                server = start_server(tmp_path, port)
            producer = producers.get(source)
            if producer is None:
                producer = producers[source] = RecordingProducer(sock, source=source, user=user,
                                                                 sent=sent, timeout=10)
            for job in jobs:
                ctx = producer.context(job, codes[job])
                codes[job] = producer.log(ctx, type_name, **attrs)
        wait_until(lambda: spool_empty(data / "spool"), timeout=60, what="delivery of the spool")
    finally:
        stop_daemon(logger)
        stop_daemon(server)
    expected = replayed(sent)
    assert set(expected) == {str(j) for j in jobs}
    statuses, events = yield stored(tmp_path / "server-data" / "lbtx.sqlite", sorted(expected))
    assert statuses == expected
    assert {s["state"] for s in statuses.values()} == {"Cleared"}
    for job in jobs:   # exactly once: every logged record once, nothing else
        logged = sorted(ln.rstrip("\n") for ln in sent if str(job) in ln)
        assert sorted(events[str(job)]) == logged


@pytest_twisted.inlineCallbacks
def test_deferred_producer_registers_and_logs(tmp_path):
    port = free_port_pair()
    data = tmp_path / "logger-data"
    server = start_server(tmp_path, port)
    logger = start_logger(tmp_path, data)
    steps = wms_steps()
    producer = DeferredProducer(reactor, str(data / "logger.sock"), source=steps[0][0],
                                user=default_user(), timeout=10)
    job = JobId.generate(f"127.0.0.1:{port}")
    try:
        ctx = yield producer.register(job, **steps[0][2])
        assert ctx.seqcode.startswith("UI=000000:NS=0000000002")
        source, type_name, attrs = steps[1]
        assert source == producer.source
        code = yield producer.log(ctx, type_name, **attrs)
        assert code.startswith("UI=000000:NS=0000000003")
        producer.close()
        wait_until(lambda: spool_empty(data / "spool"), timeout=30, what="delivery")
    finally:
        stop_daemon(logger)
        stop_daemon(server)
    statuses, events = yield stored(tmp_path / "server-data" / "lbtx.sqlite", [str(job)])
    assert len(events[str(job)]) == 2


def lbtx_log(sock, *args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "lbtx"), "log",
                           "-l", sock, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


@pytest_twisted.inlineCallbacks
def test_lbtx_log_registers_and_logs_from_the_command_line(tmp_path):
    port = free_port_pair()
    data = tmp_path / "logger-data"
    sock = str(data / "logger.sock")
    server = start_server(tmp_path, port)
    logger = start_logger(tmp_path, data)
    job = str(JobId.generate(f"127.0.0.1:{port}"))
    try:
        reg = lbtx_log(sock, "-j", job, "-s", "UserInterface", "-e", "RegJob", "ns=wms.example.org",
                       "jobtype=SIMPLE", "jdl=[ Executable = \"/bin/true\" ]")
        assert reg.returncode == 0, reg.stderr
        assert reg.stdout.startswith("UI=000002:NS=0000000000")   # RegJob went with UI=000001
        code = reg.stdout.strip()
        nxt = lbtx_log(sock, "-j", job, "-s", "NetworkServer", "-e", "Accepted",
                       "from=UserInterface", "from_host=ui.example.org", "local_jobid=x",
                       env={"EDG_WL_SEQUENCE": code})
        assert nxt.returncode == 0, nxt.stderr
        assert nxt.stdout.strip() == code.replace("NS=0000000000", "NS=0000000002")
        bad = lbtx_log(sock, "-j", job, "-s", "LRMS", "-e", "Running", "nosuch=1")
        assert bad.returncode == 2 and "invalid event" in bad.stderr
        wait_until(lambda: spool_empty(data / "spool"), timeout=30, what="delivery")
    finally:
        stop_daemon(logger)
        stop_daemon(server)
    statuses, events = yield stored(tmp_path / "server-data" / "lbtx.sqlite", [job])
    assert len(events[job]) == 2
    assert statuses[job]["state"] == "Waiting"


@pytest_twisted.inlineCallbacks
def test_exclusive_registration_and_logging_flags(tmp_path):
    """RegJob goes DIRECT (16; 80 exclusive) to the server, events LOCAL (4) through
    the logger; the logger's copy of an exclusive registration is a duplicate, not
    an ``exists`` that would be quarantined."""
    port = free_port_pair()
    data = tmp_path / "logger-data"
    server = start_server(tmp_path, port)
    logger = start_logger(tmp_path, data)
    sent: list[str] = []
    steps = wms_steps()
    job = JobId.generate(f"127.0.0.1:{port}")
    producer = RecordingProducer(str(data / "logger.sock"), source=steps[0][0], sent=sent,
                                 timeout=10)
    try:
        ctx = producer.register(job, exclusive=True, **steps[0][2])
        with pytest.raises(RefusedError) as caught:
            producer.register(job, exclusive=True, **steps[0][2])
        assert caught.value.code is ResultCode.EXISTS
        producer.log(ctx, steps[1][1], **steps[1][2])
        wait_until(lambda: spool_empty(data / "spool"), timeout=30, what="delivery")
    finally:
        producer.close()
        stop_daemon(logger)
        stop_daemon(server)
    assert [ln.split(" DG.PRIORITY=")[1].split(" ")[0] for ln in sent] == ["16", "4"]
    quarantine = data / "spool" / "quarantine"
    assert not quarantine.exists() or not list(quarantine.iterdir())
    statuses, events = yield stored(tmp_path / "server-data" / "lbtx.sqlite", [str(job)])
    assert len(events[str(job)]) == 2
    assert "DG.PRIORITY=80" in events[str(job)][0]
