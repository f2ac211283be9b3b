"""Flush commands (formats.md §4.7, §5.9) through real daemons: ``twistd lb-server``
and ``twistd lb-logger`` with its interlogger in the process, a DGLOG producer and
the producer library (:meth:`lbtx.producer.Producer.flush`)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import defer

from daemon_support import start_daemon, stop_daemon
from delivery_fault_support import Daemons, logger_with_server
from lbtx.commands import flush_record
from lbtx.producer import Producer
from lbtx.producer.context import default_user
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.legacy_framing.codes import EDG_WLL_IL_EVENTS_WAITING, EDG_WLL_IL_SYS
from test_delivery_end_to_end import stored
from test_logger_daemon import dglog

SYNC_TIMEOUT = 10
#: the interlogger's pauses are long, so that only a flush can cut them short
SLOW_DELIVERY = ["--rescan-period", "60", "--backoff-max", "60", "--unknown-job-retry", "60",
                 "--sync-timeout", str(SYNC_TIMEOUT)]


@pytest.fixture
def daemons(tmp_path):
    with logger_with_server(tmp_path, SLOW_DELIVERY) as pair:
        yield pair


@defer.inlineCallbacks
def _nodes(d: Daemons, job_id: str):
    """DG.RUNNING.NODE of the job's events in the server's store now."""
    _, events = yield stored(d.db_path, [job_id])
    return sorted(line.split('DG.RUNNING.NODE="', 1)[1].split('"', 1)[0]
                  for line in events[job_id] if 'DG.RUNNING.NODE="' in line)


def _wait_for_log(d: Daemons, name: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in d.log_text(name):
        assert time.monotonic() < deadline, f"{text!r} not in the {name}'s log"
        time.sleep(0.1)


def _lbtx_flush(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lbtx.cli.main", "flush", *args],
                          capture_output=True, text=True, timeout=120)


def _timed(func, *args, **kwargs):
    started = time.monotonic()
    result = func(*args, **kwargs)
    return result, time.monotonic() - started


@pytest_twisted.inlineCallbacks
def test_a_flush_sends_a_held_job_at_once_and_answers_when_it_is_stored(daemons):
    """An event of a job its server did not know yet is held for a minute
    (--unknown-job-retry 60). The job is registered; a flush sends the events
    again at once and is answered once the server has them."""
    d, producer = daemons
    job_id = d.jobs(1)[0]
    early = producer.context(job_id, None)
    producer.log(early, "Running", node="early")
    _wait_for_log(d, "logger", "is unknown to")
    ctx = producer.register(job_id)
    producer.log(ctx, "Running", node="late")
    assert (yield _nodes(d, job_id)) == []   # held: nothing delivered
    _, took = _timed(producer.flush, ctx, timeout=SYNC_TIMEOUT - 1)
    assert took < SYNC_TIMEOUT - 1
    assert (yield _nodes(d, job_id)) == ["early", "late"]
    # the DGLOG framing, and a flush of every job: nothing waits, 0 at once
    line = flush_record(None, timeout=5, host="wn.example.org").encode()
    answer, took = _timed(dglog, d.sock, line, timeout=30)
    assert answer == 0 and took < 5
    # and `lbtx flush`
    producer.log(ctx, "Running", node="cli")
    done = _lbtx_flush("-l", str(d.sock), "-j", job_id, "-t", "5")
    assert (done.returncode, done.stdout) == (0, f"delivered: {job_id}\n"), done.stderr
    assert (yield _nodes(d, job_id)) == ["cli", "early", "late"]


@pytest_twisted.inlineCallbacks
def test_events_that_still_wait_after_the_timeout(daemons):
    """Server down: a flush answers EDG_WLL_IL_EVENTS_WAITING after its DG.TIMEOUT
    (the box producer: UnavailableError); the events stay and are stored once the
    server is back and a flush cuts the back-off short."""
    d, producer = daemons
    job_id = d.jobs(1)[0]
    ctx = producer.register(job_id)
    d.stop("server")
    producer.log(ctx, "Running", node="while-down")
    line = flush_record(job_id, timeout=2, host="wn.example.org").encode()
    answer, took = _timed(dglog, d.sock, line, timeout=30)
    assert answer == EDG_WLL_IL_EVENTS_WAITING and 2 <= took < SYNC_TIMEOUT
    with pytest.raises(UnavailableError) as raised:
        producer.flush(ctx, timeout=1)
    assert "still wait for delivery" in str(raised.value)
    # a DG.TIMEOUT above the logger's --sync-timeout is cut to it
    answer, took = _timed(dglog, d.sock, flush_record(job_id, timeout=3600).encode(),
                          timeout=60)
    assert answer == EDG_WLL_IL_EVENTS_WAITING and SYNC_TIMEOUT <= took < SYNC_TIMEOUT + 10
    _wait_for_log(d, "logger", "retry 4 in")   # backing off by 4-8 s now, up to 60 s
    d.start("server")
    _, took = _timed(producer.flush, None, timeout=SYNC_TIMEOUT - 1)
    assert took < 4
    assert (yield _nodes(d, job_id)) == ["while-down"]


def test_without_an_interlogger_flushes_fail_and_bad_commands_are_invalid(tmp_path):
    """lb-logger --no-interlogger with no lb-interlogger on its control socket cannot
    flush: EDG_WLL_IL_SYS (the producer library: UnavailableError). Unknown or
    malformed commands are invalid, and no command is ever spooled."""
    data = tmp_path / "data"
    sock = data / "logger.sock"
    proc = start_daemon("lb-logger", ["--data-dir", str(data), "--no-interlogger"],
                        tmp_path, sock, tag="logger")
    job_id = "https://127.0.0.1:1/flushedJobAAAAAAAAAAA"
    try:
        assert dglog(sock, flush_record(job_id, timeout=1).encode()) == EDG_WLL_IL_SYS
        producer = Producer(str(sock), source="LRMS", user=default_user(), host="wn",
                            timeout=30)
        try:
            with pytest.raises(UnavailableError) as raised:
                producer.flush()
            assert "could not flush: cannot connect to" in str(raised.value)
        finally:
            producer.close()
        done = _lbtx_flush("-l", str(sock))
        assert done.returncode == 1 and "interlogger.sock" in done.stderr
        done = _lbtx_flush("-l", str(sock), "-j", "not-a-job")
        assert done.returncode == 2 and "bad job id" in done.stderr
        good = flush_record(job_id, timeout=1)
        assert dglog(sock, good.replace('"flush"', '"reboot"').encode()) == 1402  # EVENT_UNDEF
        for bad in (good.replace('DG.TIMEOUT="1"', 'DG.TIMEOUT="-5"'),
                    good.replace(job_id, "no job"),
                    good.replace('DG.COMMAND="flush"', ""),
                    good[:-5]):
            assert dglog(sock, bad.encode()) not in (0, EDG_WLL_IL_SYS), bad
    finally:
        stop_daemon(proc)
    spooled = [p.name for p in (data / "spool").iterdir() if p.name.endswith(".ulm")]
    assert spooled == []
