"""kill -9 of ``twistd lb-server`` during intake loses no acknowledged event.

Batches are pipelined to a real server process, which is SIGKILLed while some are
in flight. After a restart on the same data directory every event is sent again:
each one acknowledged before the kill comes back ``duplicate`` (it was committed),
the others are stored now or were committed just before the kill, and the final
statuses equal ``lbtx replay`` of the events.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from conftest import SCENARIOS
from lbtx.protocols.box.client import connect_box
from lbtx.protocols.box.messages import ResultCode
from lbtx.replay import Replay
from lbtx.server.store import open_store
from lbtx.status import to_json
from scenario_support import load, scenario_lines
from test_server_intake import free_port

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def start(tmp_path, data, port, n):
    proc = subprocess.Popen(
        [TWISTD, "-n", "--logfile", str(tmp_path / f"server{n}.log"),
         "--pidfile", str(tmp_path / f"server{n}.pid"), "lb-server", "--data-dir", str(data),
         "--listen-store", f"tcp:{port}:interface=127.0.0.1",
         "--listen-query", f"tcp:{free_port()}:interface=127.0.0.1"], cwd=tmp_path)
    import socket
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            assert proc.poll() is None, (tmp_path / f"server{n}.log").read_text()
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("lb-server did not listen")


def encode(lines):
    return [ln.rstrip("\n").encode("utf-8") for ln in lines]


@pytest.mark.slow  # a server killed under load, restarted and checked
@pytest_twisted.inlineCallbacks
def test_kill_during_intake_loses_no_acknowledged_event(tmp_path):
    lines = []
    for path in sorted(SCENARIOS.glob("*.json")):
        lines += scenario_lines(load(path))
    batches = [lines[i:i + 4] for i in range(0, len(lines), 4)]
    data, port = tmp_path / "data", free_port()
    proc = start(tmp_path, data, port, 1)
    acked: set[str] = set()
    client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port), clock=reactor)
    for batch in batches[:20]:
        results = yield client.send_batch(encode(batch))
        acked.update(ln for ln, r in zip(batch, results) if r.accepted)
    # pipeline the rest and kill the server while they are in flight
    pending = [client.send_batch(encode(b)) for b in batches[20:]]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    outcomes = yield defer.DeferredList(pending, consumeErrors=True)
    for (ok, results), batch in zip(outcomes, batches[20:]):
        if ok:
            acked.update(ln for ln, r in zip(batch, results) if r.accepted)
    assert len(acked) >= 20 * 4 and len(acked) < len(lines)  # the kill hit mid-stream

    proc = start(tmp_path, data, port, 2)
    try:
        client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port), clock=reactor)
        for batch in batches:
            results = yield client.send_batch(encode(batch))
            for ln, r in zip(batch, results):
                assert r.accepted, (r, ln[:120])
                if ln in acked:
                    assert r.code is ResultCode.DUPLICATE, ln[:120]
        client.transport.loseConnection()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)

    replay = Replay()
    for _ in replay.feed_stream(io.StringIO("".join(lines)), "all"):
        pass
    store = open_store("sqlite:///" + str(data / "lbtx.sqlite"), reactor)
    yield store.start()
    try:
        for rec in replay.jobs():
            got = yield store.job_status(rec.job_id)
            assert to_json(got.status) == to_json(rec.status), rec.job_id
            events = yield store.job_events(rec.job_id)
            assert len(events) == len({e.event.dedupe_key() for e in events})  # stored once
    finally:
        yield store.stop()
