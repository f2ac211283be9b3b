"""Outages of what the interlogger delivers to (issue 4), with real daemons.

* The server stopped for a minute: producers' logging latency stays what it was
  (the logger never waits on anything remote); the backlog drains when the server
  returns.
* A destination that accepts connections and never answers (a listening socket of
  the test: one that never writes a byte, one that shakes hands and then never
  acknowledges) delays only its own jobs; its queue times out and backs off.
* The spool on a full filesystem (a 2 MiB tmpfs; needs root): the producer gets
  an error, never OK; every acknowledged event is stored; logging resumes by
  itself when space returns.
"""

from __future__ import annotations

import errno
import os
import time

import pytest
import pytest_twisted

from daemon_support import spool_empty, wait_until
from delivery_fault_support import (P01, QUICK_DELIVERY, Daemons, check_delivered, kill_producers,
                                    percentile, phase_reached, quarantine_reasons, read_outcomes,
                                    size_limited_tmpfs, start_producers, wait_producers)
from fault_producer import wms_steps
from hanging_destination import HangingDestination
from lbtx.jobid import JobId
from lbtx.logger import layout
from lbtx.producer import Producer, UnavailableError
from lbtx.producer.address import server_address
from lbtx.producer.context import default_user


class _Logging:
    """The WMS sequence for some registered jobs, one record at a time, each retried
    with the same bytes until acknowledged (as in :mod:`fault_producer`)."""

    def __init__(self, sock, jobs, steps):
        self.sock = str(sock)
        self.steps = steps
        self.todo = [(i, job) for i in range(1, len(steps)) for job in jobs]
        self.codes: dict[str, str] = {}
        self.producers: dict = {}
        self.acked: list[str] = []
        self.errors: list[Exception] = []
        self.pending: tuple | None = None

    def producer(self, source) -> Producer:
        if source not in self.producers:
            self.producers[source] = Producer(self.sock, source=source, user=default_user(),
                                              host="wms.example.org", timeout=10)
        return self.producers[source]

    def register(self, job) -> None:
        source, _, attrs = self.steps[0]
        producer = self.producer(source)
        ctx, line, copy = producer._registration(job, None, attrs, text=False, exclusive=False)
        producer._check(producer._send(server_address(ctx.job_id), [line]))
        producer._check(producer._send(producer.logger, [copy]))
        ctx.sequence.advance()
        self.codes[job] = ctx.seqcode
        self.acked.append(copy.decode() + "\n")

    def attempt(self) -> bool:
        """One attempt at the next record: True once it is acknowledged."""
        if self.pending is None:
            step, job = self.todo.pop(0)
            source, type_name, attrs = self.steps[step]
            producer = self.producer(source)
            ctx = producer.context(job, self.codes[job])
            self.pending = (producer, ctx, producer._record(ctx, type_name, attrs, text=False))
        producer, ctx, line = self.pending
        try:
            producer._check(producer._send(producer.logger, [line]))
        except UnavailableError as e:
            self.errors.append(e)
            return False
        ctx.sequence.advance()
        self.codes[str(ctx.job_id)] = ctx.seqcode
        self.acked.append(line.decode() + "\n")
        self.pending = None
        return True

    def close(self) -> None:
        for producer in self.producers.values():
            producer.close()


# --- the server stopped for a minute ----------------------------------------------

OUTAGE = 60.0          # the minute
BEFORE = 6.0           # logging with the server up, before it stops
AFTER = 4.0            # and after it returns
RATE = 100.0           # records per second per producer
OUTAGE_PRODUCERS = 2


@pytest.mark.slow  # the outage lasts the full minute
@pytest_twisted.inlineCallbacks
def test_server_stopped_for_a_minute(tmp_path):
    """Ack latency while the server is down stays that of before (medians and p99
    compared, generously; the figures are printed); all of the backlog is stored
    once it returns and every status equals replay."""
    daemons = Daemons(tmp_path, standalone_interlogger=False,
                      delivery_args=["--rescan-period", "5", "--backoff-max", "1"])
    per_producer = int(RATE * (BEFORE + OUTAGE + AFTER + 2) / 14) + 1
    jobs = daemons.jobs(per_producer * OUTAGE_PRODUCERS)
    groups = [jobs[i::OUTAGE_PRODUCERS] for i in range(OUTAGE_PRODUCERS)]
    procs = []
    try:
        daemons.start_all()
        procs, outs = start_producers(tmp_path, daemons.sock, groups, rate=RATE)
        wait_until(lambda: phase_reached(outs, "registered"), timeout=120,
                   what="the registrations")
        time.sleep(BEFORE)
        down = time.time()
        daemons.stop("server")
        time.sleep(OUTAGE)
        up = time.time()
        daemons.start("server")
        wait_producers(procs, tmp_path, timeout=120)
        wait_until(lambda: spool_empty(daemons.spool), timeout=120, what="the backlog to drain")
        drained = time.time()
    finally:
        kill_producers(procs)
        daemons.stop_all()
    outcomes = read_outcomes(outs)
    registered = max(outcomes.phases["registered"])
    before = [a["lat"] for a in outcomes.acked if registered <= a["t"] < down]
    during = [a["lat"] for a in outcomes.acked if down <= a["t"] < up]
    for name, lat in (("before", before), ("during", during)):
        print(f"\n{name} the outage: {len(lat)} acks, latency p50 {percentile(lat, .5)*1e3:.1f}"
              f" ms, p90 {percentile(lat, .9)*1e3:.1f} ms, p99 {percentile(lat, .99)*1e3:.1f} ms,"
              f" max {max(lat)*1e3:.1f} ms")
    print(f"backlog drained {drained - up:.1f} s after the server returned")
    assert len(before) > RATE and len(during) > RATE * OUTAGE  # the producers went on
    assert not outcomes.refused and not outcomes.gave_up
    assert sum(a["tries"] > 1 for a in outcomes.acked) == 0   # never an error either
    # generous: the same order of magnitude, not a timing benchmark (bench/ has those)
    assert percentile(during, .5) <= 3 * percentile(before, .5) + 0.02
    assert percentile(during, .99) <= max(0.5, 3 * percentile(before, .99))
    assert not quarantine_reasons(daemons.spool)
    count = yield check_delivered(daemons.db_path, outcomes.lines, jobs)
    assert count == len(outcomes.acked)


# --- a destination that hangs -------------------------------------------------------

HANG_TIMEOUT = 10.0    # connect and acknowledgement deadline of the interlogger


def _failures_logged(daemons: Daemons, hanging: HangingDestination) -> list[str]:
    needle = f"delivery to 127.0.0.1:{hanging.port + 1} failed ("
    return [ln for ln in daemons.log_text("logger").splitlines() if needle in ln]


def _log_unregistered(sock, jobs, steps, count: int) -> list[str]:
    """The first ``count`` events of the sequence for ``jobs`` (no registration:
    their server would not answer it); the acknowledged lines."""
    acked = []
    for job in jobs:
        code = None
        for source, type_name, attrs in steps[1:1 + count]:
            with Producer(str(sock), source=source, user=default_user(), host="wms.example.org",
                          timeout=10) as producer:
                ctx = producer.context(job, code)
                line = producer._record(ctx, type_name, attrs, text=False)
                producer._check(producer._send(producer.logger, [line]))
                ctx.sequence.advance()
                code = ctx.seqcode
                acked.append(line.decode())
    return acked


@pytest_twisted.inlineCallbacks
def test_a_hanging_destination_delays_no_other(tmp_path):
    """Jobs of the real server are delivered in full while the queues of two hanging
    destinations are still stuck in their first attempt; those then time out
    (handshake, acknowledgement), back off and connect again, keeping their events."""
    silent, welcoming = HangingDestination("silent"), HangingDestination("welcomes")
    daemons = Daemons(tmp_path, standalone_interlogger=False, delivery_args=[
        *QUICK_DELIVERY, "--connect-timeout", str(HANG_TIMEOUT), "--ack-timeout",
        str(HANG_TIMEOUT)])
    steps = wms_steps(str(P01))
    hung_jobs = {h: [str(JobId.generate(h.server_name)) for _ in range(3)]
                 for h in (silent, welcoming)}
    good_jobs = daemons.jobs(10)
    try:
        daemons.start("server")
        daemons.start("logger")
        for hanging, jobs in hung_jobs.items():
            _log_unregistered(daemons.sock, jobs, steps, 3)
        wait_until(lambda: silent.accepted and welcoming.unanswered, timeout=30,
                   what="both hanging destinations holding a connection (and a batch)")
        assert (silent.accepted, welcoming.accepted) == (1, 1)
        good = _Logging(daemons.sock, good_jobs, steps)
        for job in good_jobs:
            good.register(job)
        while good.todo:
            assert good.attempt()
        good.close()
        good_stems = {layout.spool_stem(JobId.parse(j)) for j in good_jobs}

        def good_delivered() -> bool:
            names = set(os.listdir(daemons.spool))
            return not any(s + layout.EVENT_SUFFIX in names for s in good_stems)

        wait_until(good_delivered, timeout=60, what="delivery of the good jobs")
        # ... while both hanging queues are still in their first attempt
        blocked = [(h.mode, h.accepted, len(_failures_logged(daemons, h)))
                   for h in (silent, welcoming)]
        hung_files = [f for f in os.listdir(daemons.spool) if f.endswith(layout.EVENT_SUFFIX)]

        def backed_off() -> bool:
            return all(h.accepted >= 2 and _failures_logged(daemons, h)
                       for h in (silent, welcoming))

        wait_until(backed_off, timeout=4 * HANG_TIMEOUT,
                   what="both hanging queues timing out and connecting again")
        failures = {h.mode: _failures_logged(daemons, h) for h in (silent, welcoming)}
    finally:
        daemons.stop_all()
        silent.close()
        welcoming.close()
    assert blocked == [("silent", 1, 0), ("welcomes", 1, 0)]
    assert len(hung_files) == 6   # the hanging destinations' jobs wait in the spool
    for mode, lines in failures.items():
        print(f"\n{mode}: {lines[0]}")
        assert "TimeoutError" in lines[0] or "timed out" in lines[0].lower(), lines[0]
        assert "retry 1 in" in lines[0]
    assert "connect:" in failures["silent"][0]   # the handshake never completed
    assert "connect:" not in failures["welcomes"][0]   # the acknowledgement never came
    assert not quarantine_reasons(daemons.spool)
    count = yield check_delivered(daemons.db_path, good.acked, good_jobs)
    assert count == len(good_jobs) * 15


# --- a full filesystem ---------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs (unmounted at the end, whatever happened)."""
    with size_limited_tmpfs(tmp_path / "spoolfs", "2m") as mount:
        yield mount


def _fill(path) -> int:
    """Write zeros to ``path`` until the filesystem is full; the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        chunk = b"\0" * 65536
        while True:
            try:
                written += os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


@pytest_twisted.inlineCallbacks
def test_a_full_spool_filesystem(tmp_path, small_tmpfs):
    """With the spool's filesystem full every attempt is answered with an error
    (UnavailableError), never OK; the event that failed is acknowledged by itself
    once a filler file is deleted; every acknowledged event is stored once."""
    daemons = Daemons(tmp_path, standalone_interlogger=False, delivery_args=QUICK_DELIVERY,
                      spool=small_tmpfs / "spool")
    steps = wms_steps(str(P01))
    jobs = daemons.jobs(30)
    logging = _Logging(daemons.sock, jobs, steps)
    filler = small_tmpfs / "filler"
    try:
        daemons.start_all()
        for job in jobs:
            logging.register(job)
        wait_until(lambda: spool_empty(daemons.spool), timeout=30, what="the registrations")
        daemons.stop("server")      # nothing is delivered (and removed) while it is full
        _fill(filler)
        acked_before = len(logging.acked)
        streak = 0
        for _ in range(500):   # the last room (tmpfs pages, the journal's) may take a few
            streak = 0 if logging.attempt() else streak + 1
            if streak == 20:   # full: 20 attempts in a row answered with an error
                break
        full_acks = len(logging.acked) - acked_before
        os.unlink(filler)           # space returns: the same logger goes on by itself
        wait_until(logging.attempt, timeout=30, what="logging to resume")
        for _ in range(len(logging.todo) // 2):
            assert logging.attempt()
        daemons.start("server")
        wait_until(lambda: spool_empty(daemons.spool), timeout=60, what="delivery of the spool")
        # full again, with the server up: the interlogger cannot write positions,
        # removing delivered files (and the journal) frees a little room now and then
        _fill(filler)
        errors = len(logging.errors)
        while logging.todo and len(logging.errors) < errors + 50:
            if not logging.attempt():
                time.sleep(0.02)
        errors_with_server = len(logging.errors) - errors
        os.unlink(filler)
        while logging.todo or logging.pending:
            wait_until(logging.attempt, timeout=30, what="logging to resume")
        wait_until(lambda: spool_empty(daemons.spool), timeout=60, what="delivery of the spool")
    finally:
        logging.close()
        daemons.stop_all()
    print(f"\n{full_acks} records still fitted after the filler, then {len(logging.errors)}"
          f" errors: {logging.errors[0]}")
    print(f"full with the server up: {errors_with_server} errors")  # may be none
    assert streak == 20
    assert all(e.retryable for e in logging.errors)
    assert not quarantine_reasons(daemons.spool)
    count = yield check_delivered(daemons.db_path, logging.acked, jobs)
    assert count == len(logging.acked) == len(jobs) * len(steps)
