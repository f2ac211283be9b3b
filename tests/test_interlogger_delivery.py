"""Spool delivery (lbtx.interlogger.delivery) over real spool files and the fake server.

The logger's spool and the interlogger run with workers that need no thread and a
Clock, so one append flows through spool, queue, fake server and position at once,
and timeouts, holds and rescans happen exactly when the test advances the Clock.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from lbtx.interlogger.backoff import Backoff
from lbtx.interlogger.delivery import DeliveryConfig, SpoolDelivery
from lbtx.interlogger.interfaces import Destination
from lbtx.interlogger.positions import Position, encode_position, position_path, read_position
from lbtx.interlogger.queue import QueuePolicy
from lbtx.logger import layout
from lbtx.logger.errors import SpoolLockedError
from lbtx.logger.quarantine import QUARANTINE_DIR
from lbtx.logger.spool import Spool
from lbtx.testing.delivery import FakeNetwork, record_of
from lbtx.testing.workers import ManualWorker, SynchronousWorker

from spool_support import OTHER_SERVER, jobid, read_lines, record

DEST = Destination("lb.example.org", 9001)
OTHER = Destination("lb.other.org", 9001)
CONFIG = DeliveryConfig(
    rescan_period=60, unknown_job_retry=5, unknown_job_window=20,
    queue_policy=QueuePolicy(connect_timeout=10, send_timeout=10, ack_timeout=10,
                             idle_timeout=30, backoff=Backoff(initial=1, maximum=8, jitter=0)))


class DeliveryTestCase(SynchronousTestCase):
    def setUp(self):
        self.dir = os.path.join(tempfile.mkdtemp(prefix="lbtx-il-"), "spool")
        os.makedirs(self.dir)
        self.addCleanup(shutil.rmtree, os.path.dirname(self.dir), True)
        self.clock = Clock()
        self.network = FakeNetwork()
        self.server = self.network.server(DEST)
        self.spool: Spool | None = None
        self.delivery: SpoolDelivery | None = None

    def start_spool(self) -> Spool:
        self.spool = Spool(self.dir, reactor=reactor, worker=SynchronousWorker())
        self.successResultOf(self.spool.start())
        self.addCleanup(lambda: self.spool.close())
        return self.spool

    def start_delivery(self, config: DeliveryConfig = CONFIG, observe: bool = True) -> SpoolDelivery:
        delivery = SpoolDelivery(self.dir, self.network, clock=self.clock,
                                 read_worker=SynchronousWorker(),
                                 write_worker=SynchronousWorker(), config=config)
        self.successResultOf(delivery.start())
        if observe and self.spool is not None:
            self.spool.add_observer(delivery.notify)
        self.delivery = delivery
        self.addCleanup(delivery.stop)
        return delivery

    def stop_delivery(self) -> None:
        """Stop the interlogger (as a crash would, but releasing its lock)."""
        self.successResultOf(self.delivery.stop())
        if self.spool is not None:
            self.spool._observers.clear()

    def log(self, job, n):
        self.successResultOf(self.spool.append(job, record(job, n)))

    def path(self, job) -> str:
        return os.path.join(self.dir, layout.event_file_name(job))

    def position(self, job) -> Position | None:
        return read_position(position_path(self.dir, layout.spool_stem(job)))

    def quarantined(self) -> list[tuple[list[bytes], dict]]:
        folder = os.path.join(self.dir, QUARANTINE_DIR)
        out = []
        if not os.path.isdir(folder):
            return out
        for name in sorted(os.listdir(folder)):
            if name.endswith(".ulm"):
                with open(os.path.join(folder, name[:-4] + ".reason")) as f:
                    out.append((read_lines(os.path.join(folder, name)), json.load(f)))
        return out


class DeliveryTests(DeliveryTestCase):
    def test_delivers_commits_and_removes(self):
        """Logged events reach the server in order, each job's position follows the
        acknowledgements to the end of its file, and the rescan removes delivered files."""
        self.start_spool()
        self.start_delivery()
        jobs = [jobid(i) for i in range(3)]
        for i in range(30):
            self.log(jobs[i % 3], i)
        for n, job in enumerate(jobs):
            mine = [r for r in self.server.stored if job.unique.encode() in r]
            self.assertEqual(mine, [record(job, i) for i in range(n, 30, 3)])
            size = os.path.getsize(self.path(job))
            self.assertEqual(self.position(job).offset, size)
            self.assertEqual(self.position(job).lllid, layout.lllid_of(read_lines(self.path(job))[-1]))
        self.successResultOf(self.delivery.rescan())
        for job in jobs:
            self.assertFalse(os.path.exists(self.path(job)))
            self.assertIsNone(self.position(job))
        self.assertEqual(self.delivery.stores, {})
        self.log(jobs[0], 99)  # the logger creates the file again; delivery goes on
        self.assertEqual(self.server.stored[-1], record(jobs[0], 99))
        self.assertEqual(self.position(jobs[0]).offset, os.path.getsize(self.path(jobs[0])))

    def test_notified_lines_are_not_read_back(self):
        """Lines the in-process logger just wrote reach the server without the
        interlogger reading them from the disk, once it has read what came before;
        a file it is behind on is read as before."""
        self.start_spool()
        delivery = self.start_delivery()
        job = jobid(1)
        self.log(job, 0)   # a new file: discovered and read
        reads = delivery._read_worker.calls
        for i in range(1, 20):
            self.log(job, i)
        self.assertEqual(delivery._read_worker.calls, reads)
        self.assertEqual(self.server.stored, [record(job, i) for i in range(20)])
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))
        self.spool._observers.clear()   # five lines the interlogger does not hear of
        for i in range(20, 25):
            self.log(job, i)
        self.spool.add_observer(delivery.notify)
        self.log(job, 25)   # not where its reading stands: the file is read
        self.assertGreater(delivery._read_worker.calls, reads)
        self.assertEqual(self.server.stored, [record(job, i) for i in range(26)])
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_position_advances_only_on_ack(self):
        """While the server hangs, timeouts come and go and the position stays; after
        a restart the events are sent again and stored once."""
        self.start_spool()
        self.start_delivery()
        self.server.hang = "ack"
        job = jobid(1)
        for i in range(5):
            self.log(job, i)
        for _ in range(4):
            self.clock.advance(10)  # ack timeout
            self.assertIsNone(self.position(job))
            self.clock.advance(8)   # back-off, then a new attempt that hangs again
        self.assertIsNone(self.position(job))
        self.stop_delivery()
        self.server.hang = None
        self.start_delivery()
        self.assertEqual(self.server.stored, [record(job, i) for i in range(5)])
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_connect_and_send_timeouts_leave_the_position(self):
        """A connection attempt or a send that hangs leaves the position where it was."""
        self.start_spool()
        self.start_delivery(DeliveryConfig(rescan_period=1000, queue_policy=CONFIG.queue_policy))
        job = jobid(1)
        self.log(job, 0)
        first = self.position(job)
        for n, hang in enumerate(("connect", "send")):
            self.server.hang = hang
            self.clock.advance(30)  # the idle connection closes; the next event reconnects
            self.log(job, 10 + n)
            self.clock.advance(10)
            self.assertEqual(self.position(job), first)
            self.server.hang = None
            self.clock.advance(8)
            self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))
            first = self.position(job)
        self.assertEqual(self.server.stored, [record(job, 0), record(job, 10), record(job, 11)])

    def test_positions_survive_restart(self):
        """A partial acknowledgement, then the interlogger stops: the position covers
        exactly the acknowledged lines, and the next run sends only the rest."""
        self.start_spool()
        job = jobid(1)
        for i in range(10):
            self.log(job, i)
        self.server.drop_after = 4
        self.start_delivery()
        lines = read_lines(self.path(job))
        self.assertEqual(self.position(job).offset, sum(map(len, lines[:4])))
        self.assertEqual(self.position(job).lllid, layout.lllid_of(lines[3]))
        self.stop_delivery()
        self.start_delivery()
        self.assertEqual(self.server.batches[-1], [line[:-1] for line in lines[4:]])
        self.assertEqual(self.server.stored, [record(job, i) for i in range(10)])

    def test_duplicates_after_lost_ack_are_fine(self):
        """The server stored a batch but its answer was lost: the batch is sent again,
        answered DUPLICATE, and the position moves on; the server has every event once."""
        self.start_spool()
        self.start_delivery()
        self.server.lose_ack = True
        job = jobid(1)
        for i in range(3):
            self.log(job, i)
        self.assertIsNone(self.position(job))
        self.server.lose_ack = False
        self.clock.advance(8)
        self.assertEqual(self.server.stored, [record(job, i) for i in range(3)])
        self.assertGreater(sum(len(b) for b in self.server.batches), 3)
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_rescan_finds_files_of_another_logger(self):
        """Without hints (a stand-alone interlogger) the periodic rescan finds new
        files and new lines."""
        self.start_spool()
        self.start_delivery(observe=False)
        job = jobid(1)
        self.log(job, 1)
        self.assertEqual(self.server.stored, [])
        self.clock.advance(60)
        self.assertEqual(self.server.stored, [record(job, 1)])
        self.log(job, 2)
        self.clock.advance(60)
        self.assertEqual(self.server.stored, [record(job, 1), record(job, 2)])

    def test_one_interlogger_per_spool(self):
        """A second interlogger on the same spool fails to start."""
        self.start_delivery()
        other = SpoolDelivery(self.dir, self.network, clock=self.clock,
                              read_worker=SynchronousWorker(), write_worker=SynchronousWorker())
        self.failureResultOf(other.start(), SpoolLockedError)

    def test_stale_position_is_not_trusted(self):
        """A position whose LLLID does not match the line before it (the file is not
        the one it was written for) is replaced by 0, with a warning."""
        job = jobid(1)
        with open(self.path(job), "wb") as f:
            for i in range(3):
                f.write(layout.format_line(100 + i, record(job, i)))
        first = len(layout.format_line(100, record(job, 0)))
        with open(position_path(self.dir, layout.spool_stem(job)), "wb") as f:
            f.write(encode_position(str(job), Position(first, 999)))
        with capturedLogs() as events:
            self.start_delivery()
        self.assertEqual(self.server.stored, [record(job, i) for i in range(3)])
        self.assertTrue(any("again from its start" in e.get("log_format", "") for e in events))


class RecoveryTests(DeliveryTestCase):
    def write_torn(self) -> dict:
        """Job files as a crash can leave them: complete lines, then torn tails."""
        good = {}
        for n, tail in enumerate([b"", b"DG.LLLID=9 DATE=2024", b"\0" * 512,
                                  b'DG.LLLID=8 DATE="x"\n']):
            job = jobid(n)
            lines = [layout.format_line(10 * n + i, record(job, i)) for i in range(3)]
            with open(self.path(job), "wb") as f:
                f.write(b"".join(lines) + tail)
            good[job] = [record(job, i) for i in range(3)]
        return good

    def test_recovery_delivers_exactly_the_complete_lines(self):
        """After a crash the logger's recovery cuts the torn tails and the interlogger
        then delivers exactly the complete lines, nothing of the tails."""
        good = self.write_torn()
        self.start_spool()
        self.start_delivery()
        self.assertEqual(sorted(self.server.stored), sorted(r for rs in good.values() for r in rs))
        cuts = self.quarantined()  # the tails were saved aside by the recovery, not sent
        self.assertEqual(len(cuts), 3)
        self.assertEqual({note["detail"] for _, note in cuts}, {"cut off at recovery"})
        for job in good:
            self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_interlogger_alone_never_sends_an_incomplete_line(self):
        """A stand-alone interlogger on a spool whose logger is down leaves a last line
        without LF alone; once the line is complete it is delivered."""
        job = jobid(1)
        line = layout.format_line(7, record(job, 7))
        with open(self.path(job), "wb") as f:
            f.write(layout.format_line(6, record(job, 6)) + line[:50])
        self.start_delivery()
        self.assertEqual(self.server.stored, [record(job, 6)])
        with open(self.path(job), "ab") as f:
            f.write(line[50:])
        self.clock.advance(60)
        self.assertEqual(self.server.stored, [record(job, 6), record(job, 7)])

    def test_malformed_lines_are_quarantined(self):
        """Lines that cannot be sent (no logger prefix, NUL, another job's) are moved
        to the quarantine folder with the reason; the good lines around them go out."""
        job, other = jobid(1), jobid(2)
        lines = [layout.format_line(1, record(job, 1)),
                 record(job, 2) + b"\n",                               # no prefix
                 layout.format_line(3, record(other, 3)),              # another job's
                 layout.format_line(4, record(job, 4))[:20] + b"\0\n",  # garbage
                 layout.format_line(5, record(job, 5))]
        with open(self.path(job), "wb") as f:
            f.write(b"".join(lines))
        with capturedLogs() as events:
            self.start_delivery()
        self.assertEqual(self.server.stored, [record(job, 1), record(job, 5)])
        found = self.quarantined()
        self.assertEqual(sorted(line for q, _ in found for line in q), sorted(lines[1:4]))
        self.assertEqual({note["reason"] for _, note in found}, {"malformed spool line"})
        self.assertTrue(all(note["jobid"] == str(job) for _, note in found))
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))
        self.assertEqual(sum("quarantined" in e.get("log_format", "") for e in events), len(found))


class ServerAnswerTests(DeliveryTestCase):
    def test_unknown_job_retried_until_registered(self):
        """Events of a job the server does not know yet are held and sent again every
        few seconds, without delaying other jobs; once it is registered they go in."""
        self.start_spool()
        self.start_delivery()
        late, known = jobid(1), jobid(2)
        self.server.unknown_jobs.add(str(late))
        self.log(late, 1)
        self.log(late, 2)
        self.log(known, 3)
        self.assertEqual(self.server.stored, [record(known, 3)])
        self.assertIsNone(self.position(late))
        self.clock.advance(5)
        self.assertEqual(self.server.stored, [record(known, 3)])
        self.server.unknown_jobs.clear()
        self.clock.advance(5)
        self.assertEqual(self.server.stored, [record(known, 3), record(late, 1), record(late, 2)])
        self.assertEqual(self.position(late).offset, os.path.getsize(self.path(late)))
        self.assertEqual(self.quarantined(), [])

    def test_unknown_job_quarantined_after_window(self):
        """A job still unknown after the window: its events go to the quarantine folder
        with the reason and a log line, the position passes them, the file is removed."""
        self.start_spool()
        self.start_delivery()
        job = jobid(1)
        self.server.unknown_jobs.add(str(job))
        self.log(job, 1)
        self.log(job, 2)
        with capturedLogs() as events:
            for _ in range(3):
                self.clock.advance(5)
                self.assertEqual(self.quarantined(), [])
            self.clock.advance(5)  # 20 s after the first "unknown job"
        ((lines, note),) = self.quarantined()
        self.assertEqual([record_of(line) for line in lines], [record(job, 1), record(job, 2)])
        self.assertEqual(note["reason"], "unknown job")
        self.assertEqual(note["jobid"], str(job))
        self.assertEqual(note["lines"], 2)
        self.assertIn("still unknown after 20 s", note["detail"])
        self.assertTrue(any("quarantined" in e.get("log_format", "") for e in events))
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))
        self.assertEqual(self.server.stored, [])
        self.successResultOf(self.delivery.rescan())
        self.assertFalse(os.path.exists(self.path(job)))

    def test_refused_events_are_quarantined(self):
        """NOT_OWNER and INVALID are final: those events are quarantined with the
        server's reason, the others delivered, and every position reaches the end."""
        self.start_spool()
        self.start_delivery()
        good, stray = jobid(1), jobid(2)
        self.server.not_owner.add(str(stray))
        self.server.invalid = lambda line: b'DG.RUNNING.NODE="wn2"' in line
        for n in range(4):
            self.log(good, n)
        self.log(stray, 9)
        self.assertEqual(self.server.stored, [record(good, n) for n in (0, 1, 3)])
        reasons = sorted((note["reason"], note["jobid"]) for _, note in self.quarantined())
        self.assertEqual(reasons, [("server answered invalid", str(good)),
                                   ("server answered not owner", str(stray))])
        for job in (good, stray):
            self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))


class IsolationTests(DeliveryTestCase):
    def test_hanging_destination_does_not_delay_another(self):
        """One server accepts connections and never answers; the other server's events
        are delivered at once, and keep flowing while the first one's time out."""
        self.start_spool()
        self.start_delivery()
        self.server.hang = "ack"
        other_server = self.network.server(OTHER)
        stuck, fine = jobid(1), jobid(2, OTHER_SERVER)
        for i in range(10):
            self.log(stuck, i)
            self.log(fine, i)
            self.assertEqual(len(other_server.stored), i + 1)  # no time has passed
            self.assertEqual(self.position(fine).offset, os.path.getsize(self.path(fine)))
            self.clock.advance(3)
        self.assertIsNone(self.position(stuck))
        self.assertEqual(self.server.stored, [])

    def test_full_queue_leaves_events_in_the_spool(self):
        """A destination's queue takes at most queue_high events; the rest wait in the
        spool and are read once the queue has room."""
        config = DeliveryConfig(read_bytes=10, queue_high=3, queue_policy=CONFIG.queue_policy,
                                rescan_period=60)
        self.start_spool()
        job = jobid(1)
        for i in range(12):
            self.log(job, i)
        self.server.hang = "ack"
        delivery = self.start_delivery(config)
        (queue,) = delivery.queues.values()
        self.assertEqual(queue.load, 3)
        self.assertLess(delivery.stores[layout.spool_stem(job)].read_offset,
                        os.path.getsize(self.path(job)))
        self.server.hang = None
        self.clock.advance(10)  # the ack deadline
        self.clock.advance(1)   # the back-off
        self.assertEqual(self.server.stored, [record(job, i) for i in range(12)])


class FlushTests(DeliveryTestCase):
    """SpoolDelivery.flush (formats.md §5.9): deliver now, answer when delivered."""

    def test_a_flush_retries_a_destination_backing_off_at_once(self):
        """The server was down and is back: the flush does not wait out the
        back-off; it fires with 0 once the job's events are stored."""
        self.start_spool()
        delivery = self.start_delivery()
        job = jobid(1)
        self.server.refuse = True
        for i in range(3):
            self.log(job, i)
        self.clock.advance(1)   # the 1st retry failed too; the next is 2 s away
        self.server.refuse = False
        d = delivery.flush(job, timeout=30)
        self.assertEqual(self.successResultOf(d), 0)   # no time has passed
        self.assertEqual(self.server.stored, [record(job, i) for i in range(3)])
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_a_flush_times_out_with_the_files_still_waiting(self):
        self.start_spool()
        delivery = self.start_delivery()
        job, other = jobid(1), jobid(2)
        self.server.hang = "ack"
        self.log(job, 0)
        self.log(other, 1)
        d = delivery.flush(job, timeout=5)
        everything = delivery.flush(timeout=5)
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.assertNoResult(everything)
        self.clock.advance(0.2)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(self.successResultOf(everything), 2)
        self.assertEqual(delivery._flushes, [])

    def test_a_flush_sends_a_held_unknown_job_again_at_once(self):
        """Events of a job the server did not know are held for unknown_job_retry;
        a flush sends them again now (the registration has arrived meanwhile)."""
        self.start_spool()
        delivery = self.start_delivery()
        job = jobid(1)
        self.server.unknown_jobs.add(str(job))
        self.log(job, 0)
        self.assertEqual(self.server.stored, [])
        self.server.unknown_jobs.clear()
        self.assertEqual(self.successResultOf(delivery.flush(job, timeout=3)), 0)
        self.assertEqual(self.server.stored, [record(job, 0)])

    def test_a_job_still_unknown_keeps_the_flush_waiting(self):
        self.start_spool()
        delivery = self.start_delivery()
        job = jobid(1)
        self.server.unknown_jobs.add(str(job))
        self.log(job, 0)
        d = delivery.flush(job, timeout=3)
        self.clock.advance(3)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(self.server.stored, [])

    def test_flush_everything_across_destinations(self):
        """Without a job, every file is waited for: one destination answers at once,
        the other once it is back."""
        self.start_spool()
        delivery = self.start_delivery()
        other_server = self.network.server(OTHER)
        here, there = jobid(1), jobid(2, OTHER_SERVER)
        other_server.manual = True
        self.log(here, 0)
        self.log(there, 1)
        d = delivery.flush(timeout=10)
        self.assertNoResult(d)
        other_server.answer_all()
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual((self.server.stored, other_server.stored),
                         ([record(here, 0)], [record(there, 1)]))

    def test_nothing_to_flush(self):
        """A job without a spool file, a delivered job, an empty spool: 0 at once."""
        self.start_spool()
        delivery = self.start_delivery()
        self.assertEqual(self.successResultOf(delivery.flush(jobid(7), timeout=5)), 0)
        self.assertEqual(self.successResultOf(delivery.flush(timeout=5)), 0)
        self.log(jobid(1), 0)
        self.assertEqual(self.successResultOf(delivery.flush(jobid(1), timeout=5)), 0)
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), 30)  # only the idle timer

    def test_a_file_the_interlogger_has_not_seen_yet(self):
        """Lines a separate logger wrote (no hint): the flush reads the file itself."""
        self.start_spool()
        job = jobid(1)
        self.log(job, 0)
        delivery = self.start_delivery(DeliveryConfig(rescan_period=1000,
                                                      queue_policy=CONFIG.queue_policy),
                                       observe=False)
        self.log(job, 1)   # not observed: only a rescan would find it
        self.assertEqual(self.server.stored, [record(job, 0)])
        self.assertEqual(self.successResultOf(delivery.flush(job, timeout=5)), 0)
        self.assertEqual(self.server.stored, [record(job, 0), record(job, 1)])

    def test_flushes_of_every_job_share_one_rescan(self):
        """Flushes of every job that arrive while a rescan for one runs wait for that
        rescan: a producer sending a hundred costs one scan of the spool."""
        self.start_spool()
        self.log(jobid(1), 0)
        reads = ManualWorker()
        delivery = SpoolDelivery(self.dir, self.network, clock=self.clock, read_worker=reads,
                                 write_worker=SynchronousWorker(), config=CONFIG)
        delivery.start()
        self.addCleanup(delivery.stop)
        reads.release_all()   # the start-up scan, the file's opening and reading
        self.assertEqual(len(self.server.stored), 1)
        flushes = [delivery.flush(timeout=5) for _ in range(100)]
        self.assertEqual([call[0].__name__ for call in reads.queued], ["scan_spool"])
        reads.release_all()
        self.assertEqual([self.successResultOf(d) for d in flushes], [0] * 100)
        self.failIf(reads.queued)
        self.assertIsNone(delivery._scan_waiters)

    def test_stop_ends_a_flush_under_way_and_a_stopped_one_fails(self):
        self.start_spool()
        delivery = self.start_delivery()
        self.server.hang = "ack"
        self.log(jobid(1), 0)
        d = delivery.flush(timeout=60)
        self.stop_delivery()
        self.assertEqual(self.successResultOf(d), 1)
        self.failureResultOf(delivery.flush(timeout=1), RuntimeError)


@pytest_twisted.ensureDeferred
async def test_threads_end_to_end(tmp_path):
    """The real worker threads: 16 producers log 50 events each for jobs of two
    servers through the spool; the interlogger in the same process delivers every
    one exactly once, then the stores are removed."""
    network = FakeNetwork()
    spool = Spool(str(tmp_path), reactor=reactor)
    await spool.start()
    config = DeliveryConfig(queue_policy=QueuePolicy(backoff=Backoff(initial=0.01, maximum=0.1)))
    delivery = SpoolDelivery(str(tmp_path), network, clock=reactor, reactor=reactor, config=config)
    await delivery.start()
    spool.add_observer(delivery.notify)
    network.server(OTHER).lose_ack = True  # the first batch to this one is answered twice

    async def producer(p: int) -> None:
        job = jobid(p, OTHER_SERVER if p % 2 else "lb.example.org:9000")
        for i in range(50):
            if i == 10 and p == 1:
                network.server(OTHER).lose_ack = False
            await spool.append(job, record(job, i))

    try:
        await gatherResults([Deferred.fromCoroutine(producer(p)) for p in range(16)])
        await gatherResults([network.server(DEST).when_stored(400),
                             network.server(OTHER).when_stored(400)])
        await delivery._positions.flush()
        await delivery.rescan()
        await gatherResults(list(delivery._inflight))
    finally:
        await delivery.stop()
        await spool.close()
    for server in (network.server(DEST), network.server(OTHER)):
        assert len(server.stored) == len(set(server.stored)) == 400
    assert [n for n in os.listdir(tmp_path) if n.endswith((".ulm", ".pos"))] == []
