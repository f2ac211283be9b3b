"""Chaos (issue 4): 20,000 events from 8 producer processes while the logger, the
interlogger and the server are each SIGKILLed at random moments and restarted.

Real processes over real sockets: ``twistd lb-server`` (SQLite), ``twistd
lb-logger --no-interlogger`` and ``twistd lb-interlogger`` over the same spool,
and 8 :mod:`fault_producer` processes using the blocking producer library
(registrations, then the WMS sequence of P01 over 1,334 jobs, step by step).
A producer retries an event that was not acknowledged with the same bytes, as
a real component would, so the logger and the server see duplicates. A seeded
random schedule kills each daemon several times (``kill -9``: no clean
shutdown, torn spool lines and half-delivered batches are possible) and
restarts it at once.

Afterwards, once the spool has drained: every acknowledged record is stored
exactly once on the server, nothing else is, and every job's status equals
``lbtx replay`` of its stored records and of the acknowledged ones.
"""

from __future__ import annotations

import os
import random
import time

import pytest
import pytest_twisted

from daemon_support import spool_empty, wait_until
from delivery_fault_support import (RECORDS_PER_JOB, RECOVERY_CUTS, Daemons, check_delivered,
                                    kill_producers, quarantine_reasons, read_outcomes,
                                    start_producers, wait_producers)

EVENTS = 20_000
PRODUCERS = 8
KILLS_EACH = 3
SEED = int(os.environ.get("LBTX_CHAOS_SEED", "4"))


def kill_schedule(rng: random.Random) -> list[str]:
    victims = ["logger", "interlogger", "server"] * KILLS_EACH
    rng.shuffle(victims)
    return victims


@pytest.mark.slow  # 20,000 events through three daemons killed again and again
@pytest_twisted.inlineCallbacks
def test_sigkill_of_every_daemon_loses_and_doubles_nothing(tmp_path):
    rng = random.Random(SEED)
    daemons = Daemons(tmp_path, standalone_interlogger=True)
    jobs = daemons.jobs(-(-EVENTS // RECORDS_PER_JOB))
    groups = [jobs[i::PRODUCERS] for i in range(PRODUCERS)]
    victims = kill_schedule(rng)
    kills: list[tuple[float, str]] = []
    procs = []
    try:
        daemons.start_all()
        started = time.monotonic()
        procs, outs = start_producers(tmp_path, daemons.sock, groups, timeout=5.0, give_up=60.0)
        for victim in victims:
            time.sleep(rng.uniform(0.3, 1.5))
            daemons.kill(victim)
            kills.append((time.monotonic() - started, victim))
            time.sleep(rng.uniform(0.0, 0.3))
            daemons.start(victim)
        wait_producers(procs, tmp_path, timeout=240)
        produced = time.monotonic() - started
        wait_until(lambda: spool_empty(daemons.spool), timeout=120, what="delivery of the spool")
        drained = time.monotonic() - started
    finally:
        kill_producers(procs)
        daemons.stop_all()
    outcomes = read_outcomes(outs)
    print(f"\nseed {SEED}: kills at", ", ".join(f"{t:.1f}s {v}" for t, v in kills))
    print(f"{len(outcomes.acked)} records acknowledged in {produced:.1f} s "
          f"({sum(a['tries'] > 1 for a in outcomes.acked)} after a retry); "
          f"spool drained at {drained:.1f} s")
    assert not outcomes.refused and not outcomes.gave_up
    assert len(outcomes.acked) == len(jobs) * RECORDS_PER_JOB >= EVENTS
    # torn tails may be cut at recovery; nothing may be taken out of delivery
    assert set(quarantine_reasons(daemons.spool)) <= RECOVERY_CUTS
    count = yield check_delivered(daemons.db_path, outcomes.lines, jobs)
    assert count == len(outcomes.acked)

