"""A logger and an interlogger of its own (``lb-logger --no-interlogger`` beside
``twistd lb-interlogger``): flushes and synchronous events over the interlogger's
control socket (lbtx.interlogger.control, lbtx.logger.interlogger_link).

Unit tests of the remembered replies and of the control handler, then the real
three daemons with DGLOG and box producers.
"""

from __future__ import annotations

import errno
import time
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from delivery_fault_support import logger_with_server
from lbtx.commands import confirm_record, flush_record
from lbtx.interlogger.control import ControlHandler, jobs_waiting
from lbtx.interlogger.interfaces import DeliveryResult, Reply
from lbtx.logger.confirmations import Confirmations
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.box.messages import ResultCode
from lbtx.protocols.legacy_framing.codes import EDG_WLL_IL_EVENTS_WAITING, EDG_WLL_IL_SYS
from test_logger_daemon import dglog
from test_logger_flush import SLOW_DELIVERY, SYNC_TIMEOUT, _nodes, _timed, _wait_for_log
from test_logger_synchronous import LOCAL, SYNC, _Job


def _line(lllid: int, priority: int) -> SimpleNamespace:
    return SimpleNamespace(lllid=lllid, line=b"DG.LLLID=%d DATE=1 DG.PRIORITY=%d X=1"
                                              % (lllid, priority))


# --- remembered replies --------------------------------------------------------------

def test_a_reply_heard_before_it_is_asked_for_is_remembered():
    clock = Clock()
    c = Confirmations(clock, remember=2)
    stored = Reply(DeliveryResult.STORED)
    c.settle([_line(1, SYNC), _line(2, LOCAL), _line(3, SYNC | LOCAL), _line(4, 1)],
             [stored, stored, Reply(DeliveryResult.UNKNOWN_JOB, "x"), stored])
    got = []
    c.expect(3, 5).addCallback(got.append)
    c.expect(4, 5).addCallback(got.append)
    assert got == [Reply(DeliveryResult.UNKNOWN_JOB, "x"), stored]   # at once
    failures = []
    c.expect(1, 5).addErrback(failures.append)   # pushed out by 3 and 4 (remember=2)
    c.expect(2, 5).addErrback(failures.append)   # not synchronous: never kept
    clock.advance(5)
    assert [f.check(defer.TimeoutError) for f in failures] == [defer.TimeoutError] * 2
    c.expect(3, 5).addErrback(failures.append)   # an answer is handed out once
    clock.advance(5)
    assert len(failures) == 3


def test_without_memory_nothing_is_kept():
    clock = Clock()
    c = Confirmations(clock)
    c.settle([_line(1, SYNC)], [Reply(DeliveryResult.STORED)])
    failures = []
    c.expect(1, 1).addErrback(failures.append)
    clock.advance(1)
    assert len(failures) == 1


# --- the control handler ---------------------------------------------------------------

class _Delivery:
    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = []

    def flush(self, job_id, *, timeout):
        self.calls.append((job_id, timeout))
        return self.outcome() if callable(self.outcome) else defer.succeed(self.outcome)


def _handle(handler, *lines):
    d = handler.handle_batch("unix:someone", [line.encode() for line in lines])
    results = []
    d.addCallback(results.extend)
    return results


def test_control_answers_each_line_on_its_own():
    clock = Clock()
    confirmations = Confirmations(clock, remember=10)
    handler = ControlHandler(_Delivery(0), confirmations, max_wait=60)
    confirmations.settle([_line(7, SYNC)], [Reply(DeliveryResult.NOT_OWNER, "not mine")])
    job = "https://lb.example.org:9000/controlJobAAAAAAAAAAA"
    results = _handle(handler, flush_record(job, timeout=5), confirm_record(7, timeout=5),
                      flush_record(None, timeout=5).replace('"flush"', '"reboot"'),
                      'DATE=1 HOST="h" DG.EVNT="Running"', "garbage")
    assert [r.code for r in results] == [ResultCode.STORED, ResultCode.NOT_OWNER,
                                         ResultCode.INVALID, ResultCode.INVALID,
                                         ResultCode.INVALID]
    assert results[1].reason == "not mine"
    assert "commands only" in results[3].reason
    assert [str(j) for j, _ in handler._delivery.calls] == [job]


def test_control_waits_at_most_its_limit_and_reports_what_still_waits():
    clock = Clock()
    delivery = _Delivery(2)
    handler = ControlHandler(delivery, Confirmations(clock), max_wait=30)
    (waiting,) = _handle(handler, flush_record(None, timeout=3600))
    assert delivery.calls == [(None, 30)]
    assert (waiting.code, waiting.detail) == (ResultCode.INVALID, "IL_EVENTS_WAITING")
    assert "events of 2 job(s) still wait" in waiting.reason
    assert jobs_waiting(waiting) == 2   # what the logger's InterloggerLink reads of it
    results = _handle(handler, confirm_record(99, timeout=3600))
    assert results == []
    clock.advance(30)
    assert [(r.code, r.detail) for r in results] == [(ResultCode.INVALID, "TIMEOUT")]
    failing = ControlHandler(_Delivery(lambda: defer.fail(RuntimeError("disk gone"))),
                             Confirmations(clock), max_wait=30)
    (failed,) = _handle(failing, flush_record(None))
    assert failed.detail == "IL_SYS" and "disk gone" in failed.reason


# --- the daemons -----------------------------------------------------------------------

@pytest.fixture
def separate(tmp_path):
    # both daemons take these options: not the logger's --sync-timeout (60 s here)
    args = [a for a in SLOW_DELIVERY if a not in ("--sync-timeout", str(SYNC_TIMEOUT))]
    with logger_with_server(tmp_path, args, standalone=True) as pair:
        yield pair


@pytest_twisted.inlineCallbacks
def test_a_separate_interlogger_confirms_and_flushes_for_the_logger(separate):
    d, producer = separate
    job = _Job(producer, d.jobs(1)[0])
    answer, _ = _timed(dglog, d.sock, job.record("sync", SYNC), timeout=30)
    assert answer == 0
    assert "sync" in (yield _nodes(d, job.job_id))   # the server had it when 0 came
    unknown = _Job(producer, d.jobs(1)[0], register=False)
    answer, took = _timed(dglog, d.sock, unknown.record("sync-unknown", SYNC), timeout=30)
    assert answer == errno.ENOENT and took < SYNC_TIMEOUT
    # the unknown job's events are held for a minute; registered, a flush sends them
    ctx = producer.register(unknown.job_id)
    producer.log(ctx, "Running", node="late")
    _, took = _timed(producer.flush, ctx, timeout=SYNC_TIMEOUT - 1)
    assert took < SYNC_TIMEOUT - 1
    assert (yield _nodes(d, unknown.job_id)) == ["late", "sync-unknown"]
    # the server down: events wait
    d.stop("server")
    producer.log(ctx, "Running", node="down")
    answer, took = _timed(dglog, d.sock, flush_record(unknown.job_id, timeout=2).encode(),
                          timeout=30)
    assert answer == EDG_WLL_IL_EVENTS_WAITING and 2 <= took < SYNC_TIMEOUT


def test_with_the_interlogger_down_flushes_fail_and_sync_events_are_answered_on_disk(
        separate):
    d, producer = separate
    job = _Job(producer, d.jobs(1)[0])
    d.stop("interlogger")
    assert dglog(d.sock, flush_record(None, timeout=1).encode(), timeout=30) == EDG_WLL_IL_SYS
    with pytest.raises(UnavailableError):
        producer.flush(timeout=1)
    answer, _ = _timed(dglog, d.sock, job.record("sync-alone", SYNC), timeout=30)
    assert answer == 0
    _wait_for_log(d, "logger", "cannot reach the interlogger at")
    d.start("interlogger")   # and it delivers what was logged meanwhile
    deadline = time.monotonic() + 30
    while dglog(d.sock, flush_record(None, timeout=5).encode(), timeout=30) != 0:
        assert time.monotonic() < deadline


def test_a_logger_and_an_interlogger_with_one_data_directory_find_each_other(tmp_path):
    from lbtx.interlogger.options import InterloggerOptions
    from lbtx.logger.options import LoggerOptions

    il, lg = InterloggerOptions(), LoggerOptions()
    il.parseOptions(["-d", str(tmp_path)])
    lg.parseOptions(["-d", str(tmp_path), "--no-interlogger"])
    assert il["control"] == lg["interlogger-control"] == str(tmp_path / "interlogger.sock")
    il, lg = InterloggerOptions(), LoggerOptions()
    il.parseOptions(["-d", str(tmp_path), "--control", str(tmp_path / "c.sock")])
    lg.parseOptions(["--no-interlogger", "--interlogger-control", str(tmp_path / "c.sock")])
    assert il["control"] == lg["interlogger-control"]
    il = InterloggerOptions()
    il.parseOptions(["--no-control"])
    assert il["control"] is None


@pytest_twisted.inlineCallbacks
def test_the_link_takes_any_timeout_and_answers_on_disk_without_an_interlogger(tmp_path):
    """A logger's --sync-timeout may exceed what a command carries (a day): the
    link sends the most it may instead of failing; with nobody on the control
    socket a synchronous line is answered as stored on the logger's disk, and a
    flush fails."""
    from twisted.internet import reactor

    from lbtx.logger.interlogger_link import InterloggerLink

    link = InterloggerLink(reactor, str(tmp_path / "nobody.sock"), timeout=10)
    try:
        reply = yield link.expect(5, 10.0 ** 6)
        assert reply == Reply(DeliveryResult.STORED, "")
        with pytest.raises(UnavailableError):
            yield link.flush(None, timeout=10.0 ** 6)
    finally:
        link.close()
