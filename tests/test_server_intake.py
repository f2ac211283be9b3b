"""``twistd lb-server`` intake end to end: a real server process, a real socket, real SQLite.

Every public scenario is sent through the box protocol to a running server; the
statuses in its store then equal what ``lbtx replay`` computes for the same events.
Bad lines in a batch are answered ``invalid`` and lose nothing else.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from conftest import REPO, SCENARIOS
from lbtx.protocols.box.client import connect_box
from lbtx.protocols.box.messages import ResultCode
from lbtx.replay import Replay
from lbtx.server.store import open_store
from lbtx.status import to_json
from lbtx.testing.ports import free_port
from scenario_support import load, scenario_lines

SCENARIO_FILES = sorted(SCENARIOS.glob("*.json"))


@pytest.fixture
def server(tmp_path):
    """A running ``twistd -n lb-server`` on SQLite in a temporary data directory."""
    port = free_port()
    data = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "-n",
         "--logfile", str(tmp_path / "server.log"),
         "--pidfile", str(tmp_path / "server.pid"), "lb-server", "--data-dir", str(data),
         "--listen-store", f"tcp:{port}:interface=127.0.0.1",
         "--listen-query", f"tcp:{free_port()}:interface=127.0.0.1",
         "--peer-identity", "/DC=org/DC=example/CN=Test Interlogger"],
        cwd=tmp_path, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "server.log").read_text())
            time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("lb-server did not listen within 30 s")
    yield port, data, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@defer.inlineCallbacks
def _send(port, lines, batch=7):
    client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port), clock=reactor)
    results = []
    try:
        for i in range(0, len(lines), batch):
            chunk = [ln.rstrip("\n").encode("utf-8") for ln in lines[i:i + batch]]
            results += (yield client.send_batch(chunk))
    finally:
        client.transport.loseConnection()
    return results


@defer.inlineCallbacks
def _statuses(db_path):
    store = open_store("sqlite:///" + str(db_path), reactor)
    yield store.start()
    try:
        out = {}
        for job_id in sorted(_replayed_ids):
            rec = yield store.job_status(job_id)
            out[str(job_id)] = to_json(rec.status)
    finally:
        yield store.stop()
    return out


_replayed_ids: set = set()


@pytest_twisted.inlineCallbacks
def test_every_scenario_through_intake_matches_replay(server):
    """All 14 scenarios, interleaved into one stream, through a real server."""
    port, data, proc = server
    lines = []
    for path in SCENARIO_FILES:
        lines += scenario_lines(load(path))
    results = yield _send(port, lines)
    assert len(results) == len(lines)
    assert all(r.code is ResultCode.STORED for r in results), [r for r in results if not r.accepted]
    # the same events again are all duplicates: nothing counted twice
    again = yield _send(port, lines[:20])
    assert [r.code for r in again] == [ResultCode.DUPLICATE] * 20
    replay = Replay()
    for _ in replay.feed_stream(io.StringIO("".join(lines)), "all"):
        pass
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    _replayed_ids.clear()
    _replayed_ids.update(rec.job_id for rec in replay.jobs())
    stored = yield _statuses(data / "lbtx.sqlite")
    expected = {str(rec.job_id): to_json(rec.status) for rec in replay.jobs()}
    assert stored == expected


@pytest_twisted.inlineCallbacks
def test_bad_lines_are_invalid_and_lose_nothing(server):
    """A batch mixing good, malformed and unregistered events gets one result each."""
    port, data, proc = server
    good = scenario_lines(load(SCENARIOS / "P01-simple-job-full-life.json"))
    unregistered = scenario_lines(load(SCENARIOS / "P03-aborted-no-resources.json"))[1]
    batch = [good[0], 'DATE=2012 HOST="broken', good[1], "\x00\x01 binary", unregistered, good[2]]
    results = yield _send(port, batch, batch=len(batch))
    codes = [r.code for r in results]
    assert codes == [ResultCode.STORED, ResultCode.INVALID, ResultCode.STORED,
                     ResultCode.INVALID, ResultCode.UNKNOWN_JOB, ResultCode.STORED]
    assert "unterminated" in results[1].reason or "quote" in results[1].reason
    # the server keeps serving
    more = yield _send(port, good[3:5])
    assert [r.code for r in more] == [ResultCode.STORED] * 2


@pytest_twisted.inlineCallbacks
def test_undecodable_job_id_is_invalid_not_a_poisoned_batch(server):
    """A record whose job id holds bytes that are not UTF-8 is refused alone; the
    other events of its batch are stored."""
    port, data, proc = server
    good = scenario_lines(load(SCENARIOS / "P01-simple-job-full-life.json"))
    bad = good[0].replace("9fNCdbnzCbuQZAX7wwrmrw", "9fNCdbnz\udcffQZAX7wwrmrw")
    client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port), clock=reactor)
    try:
        lines = [good[0].rstrip("\n").encode(),
                 bad.rstrip("\n").encode("utf-8", "surrogateescape"),
                 good[1].rstrip("\n").encode()]
        results = yield client.send_batch(lines)
    finally:
        client.transport.loseConnection()
    assert [r.code for r in results] == [ResultCode.STORED, ResultCode.INVALID, ResultCode.STORED]
    assert "UTF-8" in results[1].reason
