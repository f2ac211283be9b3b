"""Synchronous events (``DG.PRIORITY & 3``, formats.md §4.3, §4.5): the logger
answers them with the server's answer, not when they are on its disk.

Unit tests of :class:`lbtx.logger.confirmations.Confirmations` on a
``task.Clock``; then real ``twistd lb-server`` and ``twistd lb-logger`` (its
interlogger in the process) with DGLOG and box-protocol producers.
"""

from __future__ import annotations

import errno
import time
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.task import Clock
from twisted.python import usage

from daemon_support import start_daemon, stop_daemon
from delivery_fault_support import QUICK_DELIVERY, Daemons, logger_with_server
from lbtx.interlogger.interfaces import DeliveryResult, Reply
from lbtx.logger.confirmations import Confirmations, is_synchronous
from lbtx.logger.handler import confirmed_result
from lbtx.logger.options import LoggerOptions
from lbtx.producer import Producer
from lbtx.producer.context import default_user
from lbtx.protocols.box.client import BoxRemoteError, connect_box
from lbtx.protocols.box.messages import ResultCode
from test_delivery_end_to_end import stored
from test_logger_daemon import dglog

LOCAL, SYNC_COMPAT, SYNC = 4, 1, 2


# --- the registry -------------------------------------------------------------------

def test_is_synchronous():
    assert [is_synchronous(p) for p in (0, 1, 2, 3, 4, 5, 6, 16, 20, 128)] == [
        False, True, True, True, False, True, True, False, False, False]
    assert not is_synchronous(None) and not is_synchronous("x")


def _lines(*lllids):
    """Stand-ins for the spool entries a reply answers (all settle reads is .lllid)."""
    return [SimpleNamespace(lllid=n) for n in lllids]


def test_a_reply_fires_every_waiter_of_its_line_and_no_other():
    clock = Clock()
    c = Confirmations(clock)
    got: dict[str, object] = {}
    c.expect(7, 10).addCallback(lambda r: got.setdefault("a", r))
    c.expect(7, 10).addCallback(lambda r: got.setdefault("b", r))
    c.expect(8, 10).addCallback(lambda r: got.setdefault("c", r))
    assert c.waiting == 2
    stored_reply = Reply(DeliveryResult.STORED)
    c.settle(_lines(5, 7), [Reply(DeliveryResult.INVALID, "x"), stored_reply])
    assert got == {"a": stored_reply, "b": stored_reply}
    assert c.waiting == 1
    c.settle(_lines(7), [Reply(DeliveryResult.INVALID)])   # nobody waits for 7 any more
    assert got == {"a": stored_reply, "b": stored_reply}
    assert len(clock.getDelayedCalls()) == 1   # 8's deadline; 7's went with its reply


def test_no_reply_in_time_is_a_timeout_and_is_forgotten():
    clock = Clock()
    c = Confirmations(clock)
    failures = []
    c.expect(3, 5).addErrback(failures.append)
    clock.advance(4.9)
    assert not failures and c.waiting == 1
    clock.advance(0.2)
    assert len(failures) == 1 and failures[0].check(defer.TimeoutError)
    assert c.waiting == 0 and not clock.getDelayedCalls()
    c.settle(_lines(3), [Reply(DeliveryResult.STORED)])   # late: nobody to tell, no error


def test_a_cancelled_wait_is_forgotten():
    clock = Clock()
    c = Confirmations(clock)
    d = c.expect(3, 5)
    d.addErrback(lambda f: f.trap(defer.CancelledError))
    d.cancel()
    assert c.waiting == 0 and not clock.getDelayedCalls()


def test_confirmed_results():
    assert confirmed_result(Reply(DeliveryResult.STORED, "ok")).code is ResultCode.STORED
    assert confirmed_result(Reply(DeliveryResult.STORED, "ok")).reason == ""
    assert confirmed_result(Reply(DeliveryResult.DUPLICATE)).accepted
    unknown = confirmed_result(Reply(DeliveryResult.UNKNOWN_JOB, "no such job"))
    assert (unknown.code, unknown.reason) == (ResultCode.UNKNOWN_JOB, "no such job")
    assert confirmed_result(Reply(DeliveryResult.NOT_OWNER)).code is ResultCode.NOT_OWNER
    assert confirmed_result(Reply(DeliveryResult.INVALID, "bad")).code is ResultCode.INVALID


def test_sync_timeout_option():
    options = LoggerOptions()
    options.parseOptions([])
    assert options["sync-timeout"] == 60.0
    options = LoggerOptions()
    options.parseOptions(["--sync-timeout", "2.5"])
    assert options["sync-timeout"] == 2.5
    for bad in (["--sync-timeout", "0"], ["--sync-timeout", "-1"], ["--sync-timeout", "soon"],
                ["--sync-timeout", "nan"], ["--sync-timeout", "120"],
                ["--sync-timeout", "30", "--request-timeout", "20"]):
        with pytest.raises(usage.UsageError):
            LoggerOptions().parseOptions(bad)


# --- real daemons -------------------------------------------------------------------

SYNC_TIMEOUT = 3.0


def _dglog(sock_path, line: bytes) -> tuple[int, float]:
    """Send one DGLOG frame; (the answer, seconds it took)."""
    started = time.monotonic()
    answer = dglog(sock_path, line, timeout=30)
    return answer, time.monotonic() - started


class _Job:
    """A job registered on the daemons' server and its records, built with a
    chosen DG.PRIORITY (the sequence code advanced as the producer does)."""

    def __init__(self, producer: Producer, job_id: str, register: bool = True):
        self.producer = producer
        if register:
            self.ctx = producer.register(job_id)
        else:
            self.ctx = producer.context(job_id, None)
        self.job_id = job_id

    def record(self, node: str, priority: int) -> bytes:
        line = self.producer._record(self.ctx, "Running", {"node": node}, text=False,
                                     priority=priority)
        self.ctx.sequence.advance()
        return line


@defer.inlineCallbacks
def _stored_nodes(daemons: Daemons, job_id: str):
    """The DG.RUNNING.NODE values of the job's events the server has stored now."""
    _, events = yield stored(daemons.db_path, [job_id])
    return [line.split('DG.RUNNING.NODE="', 1)[1].split('"', 1)[0]
            for line in events[job_id] if 'DG.RUNNING.NODE="' in line]


@pytest.fixture
def daemons(tmp_path):
    args = [*QUICK_DELIVERY, "--sync-timeout", str(SYNC_TIMEOUT)]
    with logger_with_server(tmp_path, args) as pair:
        yield pair


@pytest_twisted.inlineCallbacks
def test_a_synchronous_dglog_event_is_answered_once_the_server_stored_it(daemons):
    d, producer = daemons
    job = _Job(producer, d.jobs(1)[0])
    for i, priority in enumerate((SYNC, SYNC_COMPAT, LOCAL | SYNC)):
        answer, _ = _dglog(d.sock, job.record(f"sync{i}", priority))
        assert answer == 0
        # the answer came after the server's: the event is in its store already
        nodes = yield _stored_nodes(d, job.job_id)
        assert f"sync{i}" in nodes


@pytest_twisted.inlineCallbacks
def test_the_servers_refusal_reaches_the_synchronous_producer(daemons):
    """An unregistered job: the server answers unknown job, the producer ENOENT at
    once (not 0 when on disk; not a timeout). An asynchronous event of that job is
    answered 0, as always."""
    d, producer = daemons
    job = _Job(producer, d.jobs(1)[0], register=False)
    answer, took = _dglog(d.sock, job.record("sync", SYNC))
    assert answer == errno.ENOENT and took < SYNC_TIMEOUT
    answer, _ = _dglog(d.sock, job.record("async", LOCAL))
    assert answer == 0
    # and the box protocol: the result is the server's
    client = yield connect_box(UNIXClientEndpoint(reactor, str(d.sock)), clock=reactor)
    try:
        results = yield client.send_batch([job.record("box-sync", LOCAL | SYNC)])
        assert [r.code for r in results] == [ResultCode.UNKNOWN_JOB]
        registered = _Job(producer, d.jobs(1)[0])
        results = yield client.send_batch([registered.record("box-sync", LOCAL | SYNC),
                                            registered.record("box-async", LOCAL)])
        assert [r.code for r in results] == [ResultCode.STORED, ResultCode.STORED]
        nodes = yield _stored_nodes(d, registered.job_id)
        assert "box-sync" in nodes
    finally:
        client.transport.loseConnection()


@pytest_twisted.inlineCallbacks
def test_with_the_server_down_a_synchronous_event_times_out_and_is_kept(daemons):
    """EAGAIN after --sync-timeout (DGLOG), a retryable error (box); an
    asynchronous event is answered at once meanwhile; all of them are stored once
    the server returns."""
    d, producer = daemons
    job = _Job(producer, d.jobs(1)[0])
    d.stop("server")
    answer, took = _dglog(d.sock, job.record("sync-down", SYNC))
    assert answer == errno.EAGAIN and SYNC_TIMEOUT - 0.5 <= took < SYNC_TIMEOUT + 10
    answer, took = _dglog(d.sock, job.record("async-down", LOCAL))
    assert answer == 0 and took < SYNC_TIMEOUT
    client = yield connect_box(UNIXClientEndpoint(reactor, str(d.sock)), clock=reactor)
    try:
        with pytest.raises(BoxRemoteError) as raised:
            yield client.send_batch([job.record("box-sync-down", LOCAL | SYNC)])
        assert raised.value.retryable
    finally:
        client.transport.loseConnection()
    d.start("server")
    deadline = time.monotonic() + 30
    while True:
        nodes = yield _stored_nodes(d, job.job_id)
        if len(nodes) == 3 or time.monotonic() > deadline:
            break
        yield _sleep(0.2)
    assert sorted(nodes) == ["async-down", "box-sync-down", "sync-down"]


def test_without_an_interlogger_a_synchronous_event_is_answered_on_disk(tmp_path):
    """lb-logger --no-interlogger cannot hear the server: it answers once on disk
    (and says so in its log)."""
    sock = tmp_path / "data" / "logger.sock"
    proc = start_daemon("lb-logger", ["--data-dir", str(tmp_path / "data"), "--no-interlogger"],
                        tmp_path, sock, tag="logger")
    try:
        producer = Producer(str(sock), source="LRMS", user=default_user(), host="wn", timeout=30)
        job = _Job(producer, "https://127.0.0.1:1/unregisteredJobAAAAAAAA", register=False)
        answer, _ = _dglog(sock, job.record("sync", SYNC))
        assert answer == 0
        producer.close()
    finally:
        stop_daemon(proc)
    assert "synchronous events are answered once they are on disk" in (
        tmp_path / "logger.log").read_text()


def _sleep(seconds: float):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
