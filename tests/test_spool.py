"""The logger's spool (lbtx.logger.spool): layout, group commit, failures, recovery.

Most tests drive the spool with a worker that needs no thread (lbtx.testing.workers)
and count flushes through an injected group sync function; one test runs the real
writer thread under the reactor. The full-disk and read-only tests use a real tmpfs
and need root.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.trial.unittest import SynchronousTestCase

from lbtx.jobid import JobId
from lbtx.logger import layout
from lbtx.logger.durable import flush_tree, sync_files
from lbtx.logger.journal import JOURNAL_DIR
from lbtx.logger.errors import (SpoolClosedError, SpoolFullError, SpoolLockedError,
                                SpoolWriteError)
from lbtx.logger.spool import Appended, Spool
from lbtx.testing.workers import ManualWorker, SynchronousWorker

from spool_support import jobid, read_lines, record, records_of

REPO = Path(__file__).resolve().parent.parent


class SyncRecorder:
    """A group sync function that counts calls and remembers which lines each call
    made durable (it reads the synced files' new records: the journal's)."""

    def __init__(self, real=sync_files):
        self.calls: list[list[str]] = []  # per call: the paths synced
        self.synced: set[int] = set()  # LLLIDs of the lines in synced files
        self.dir_calls = 0
        self.flushes = 0
        self.fail_with: int | None = None
        self._real = real
        self._seen: dict[str, int] = {}

    def __call__(self, fds):
        if self.fail_with is not None:
            raise OSError(self.fail_with, os.strerror(self.fail_with))
        self._real(fds)
        paths = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]
        self.calls.append(paths)
        for path in paths:
            with open(path, "rb") as f:
                f.seek(self._seen.get(path, 0))
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._seen[path] = self._seen.get(path, 0) + len(complete)
            for rec in complete.splitlines():
                self.synced.add(layout.lllid_of(rec.split(b" ", 1)[1]))

    def sync_directory(self, path):
        self.dir_calls += 1

    def flush(self, path):
        self.flushes += 1
        flush_tree(path)

    def covers(self, appended: Appended) -> bool:
        """Whether a sync so far made the appended line durable."""
        return appended.lllid in self.synced


def temp_dir(case) -> str:
    """A fresh directory name (not created) in the system's temporary area, removed after the test."""
    parent = tempfile.mkdtemp(prefix="lbtx-spool-")
    case.addCleanup(shutil.rmtree, parent, True)
    return os.path.join(parent, "spool")


def make_spool(path, worker=None, recorder=None, **kw) -> Spool:
    recorder = recorder or SyncRecorder()
    return Spool(str(path), reactor=reactor, worker=worker or SynchronousWorker(), sync=recorder,
                 sync_directory=recorder.sync_directory, flush=recorder.flush,
                 lllid_start=kw.pop("lllid_start", 1000), **kw)


class LayoutTests(SynchronousTestCase):
    def test_stem_is_a_plain_name_for_any_job_id(self):
        """Job ids with path tricks, odd characters or great length give a plain file name."""
        for text in ["https://h:9000/a/../../etc/passwd", "https://h:9000/..", "https://h/%00x",
                     "https://h:9000/" + "x" * 3000, "https://h:9000/\u00e9t\u00e9",
                     "https://h:9000/.hidden", "https://[::1]:9000/abc?info"]:
            stem = layout.spool_stem(JobId.parse(text))
            self.assertRegex(stem, r"\A[A-Za-z0-9_-]{1,64}\.[0-9a-f]{16}\Z")
            self.assertEqual(os.path.basename(stem), stem)

    def test_stem_is_stable_and_tells_servers_apart(self):
        """The same job always maps to one file; the same unique part on two servers does not."""
        a = JobId.parse("https://lb1.example.org:9000/RSwFpSI95ivvdn2OQQFcKw")
        b = JobId.parse("https://lb2.example.org:9000/RSwFpSI95ivvdn2OQQFcKw")
        self.assertEqual(layout.spool_stem(a), layout.spool_stem(JobId.parse(str(a))))
        self.assertTrue(layout.spool_stem(a).startswith("RSwFpSI95ivvdn2OQQFcKw."))
        self.assertNotEqual(layout.spool_stem(a), layout.spool_stem(b))

    def test_format_line(self):
        """A line is the LLLID prefix, the record and one LF; records that are not one line are refused."""
        self.assertEqual(layout.format_line(7, b"DATE=1 X=2\n"), b"DG.LLLID=7 DATE=1 X=2\n")
        for bad in [b"", b"\n", b"a\nb", b"a\0b"]:
            self.assertRaises(ValueError, layout.format_line, 1, bad)
        self.assertEqual(layout.lllid_of(b"DG.LLLID=42 DATE=1\n"), 42)
        self.assertIsNone(layout.lllid_of(b"DATE=1\n"))

    def test_raw_jobid_ignores_quoted_lookalikes(self):
        """DG.JOBID is found as a field, not inside another field's quoted value."""
        line = b'DG.LLLID=1 DG.USERTAG.VALUE="x DG.JOBID=\\"https://evil/x\\"" DG.JOBID="https://h/j"\n'
        self.assertEqual(layout.raw_jobid(line), b"https://h/j")


class AppendTests(SynchronousTestCase):
    def setUp(self):
        self.dir = os.path.join(tempfile.mkdtemp(prefix="lbtx-spool-"), "spool")
        self.sync = SyncRecorder()
        self.worker = ManualWorker()
        self.spool = make_spool(self.dir, self.worker, self.sync)
        self.spool.start()
        self.worker.release()

    def tearDown(self):
        self.spool.close()
        self.worker.release_all()
        shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)

    def test_line_on_disk_with_prefix(self):
        """An append puts the logger prefix and the record on one line of the job's file."""
        job = jobid(1)
        d = self.spool.append(job, record(job, 1))
        self.worker.release()
        appended = self.successResultOf(d)
        self.assertEqual(appended.lllid, 1000)
        self.assertEqual(appended.offset, 0)
        self.assertEqual(os.path.basename(appended.path), layout.event_file_name(job))
        self.assertEqual(read_lines(appended.path), [b"DG.LLLID=1000 " + record(job, 1) + b"\n"])
        self.assertEqual(appended.end, os.path.getsize(appended.path))

    def test_group_commit_one_sync_per_batch(self):
        """While one line is on the disk, 99 appends to 10 jobs collect in the next
        batch, which the writer takes as soon as it is free (before the reactor has
        heard of the first) and makes durable with one sync."""
        jobs = [jobid(i) for i in range(10)]
        first = self.spool.append(jobs[0], record(jobs[0], 0))
        self.assertEqual(len(self.worker.queued), 1)
        self.worker.run_next()   # line 0 alone on the disk; not answered yet
        ds = [first] + [self.spool.append(jobs[i % 10], record(jobs[i % 10], i))
                        for i in range(1, 100)]
        self.assertEqual(len(self.worker.queued), 1)  # one batch for the 99, already queued
        self.assertEqual(len(self.sync.calls), 1)
        for d in ds:
            self.assertNoResult(d)
        self.worker.run_next()
        self.assertEqual(len(self.sync.calls), 2)
        for d in ds:
            self.assertNoResult(d)
        self.worker.answer_all()
        results = [self.successResultOf(d) for d in ds]
        self.assertEqual(self.spool.batches, 2)
        self.assertEqual(len(self.sync.calls[1]), 1)  # one file flushed for the 10 job files
        self.assertEqual(self.sync.dir_calls, 1)  # the journal segment at start, nothing since
        for i, job in enumerate(jobs):
            lines = read_lines(os.path.join(self.dir, layout.event_file_name(job)))
            self.assertEqual(records_of(lines), [record(job, n) for n in range(i, 100, 10)])
        lllids = [r.lllid for r in results]
        self.assertEqual(lllids, list(range(1000, 1100)))

    def test_appends_join_the_batch_until_the_writer_takes_it(self):
        """Appends made before the writer starts on the queued batch are all in it."""
        jobs = [jobid(i) for i in range(3)]
        ds = [self.spool.append(jobs[i % 3], record(jobs[i % 3], i)) for i in range(30)]
        self.assertEqual(len(self.worker.queued), 1)
        self.worker.release()
        self.assertEqual([self.successResultOf(d).lllid for d in ds], list(range(1000, 1030)))
        self.assertEqual((len(self.sync.calls), self.spool.batches), (1, 1))

    def test_deferred_fires_only_after_its_sync(self):
        """Every append's Deferred fires after a sync that covered its line, never before."""
        checked = []

        def check(appended):
            checked.append(self.sync.covers(appended))

        jobs = [jobid(i) for i in range(5)]
        for i in range(50):
            self.spool.append(jobs[i % 5], record(jobs[i % 5], i)).addCallback(check)
            if i % 7 == 0:
                self.worker.release()
        self.worker.release_all()
        self.assertEqual(len(checked), 50)
        self.assertTrue(all(checked))

    def test_one_flush_per_batch_even_for_new_files(self):
        """A batch that creates job files still costs one flush: the journal, whose
        replay would create them again, covers them until the next checkpoint."""
        job = jobid(1)
        self.spool.append(job, record(job, 1))
        self.worker.release()
        self.spool.append(jobid(2), record(jobid(2), 2))
        self.worker.release()
        self.assertEqual((len(self.sync.calls), self.sync.dir_calls, self.sync.flushes), (2, 1, 0))

    def test_batch_limits(self):
        """A batch holds at most max_batch_lines lines and max_batch_bytes bytes; a
        full batch is closed and the next one queued behind it."""
        line = len(layout.format_line(1000, record(jobid(1), 1)))
        spool = make_spool(temp_dir(self), self.worker, self.sync, max_batch_lines=10,
                           max_batch_bytes=3 * line)
        spool.start()
        self.worker.release()
        batches = []
        spool.add_observer(lambda lines: batches.append([a.end - a.offset for a in lines]))
        jobs = [jobid(i) for i in range(6)]
        ds = [spool.append(jobs[i % 6], record(jobs[i % 6], i)) for i in range(25)]
        queued = len(self.worker.queued)
        self.worker.release()
        self.assertEqual([bool(d.called) for d in ds[:4]], [True] * 3 + [False])
        self.worker.release_all()
        for d in ds:
            self.successResultOf(d)
        self.assertEqual(len(batches), queued)
        self.assertEqual(sum(map(len, batches)), 25)
        for batch, after in zip(batches, batches[1:] + [None]):
            self.assertLessEqual(sum(batch), 3 * line)
            if after is not None:  # full: the next line did not fit
                self.assertGreater(sum(batch) + after[0], 3 * line)
        spool.close()
        self.worker.release_all()
        spool = make_spool(temp_dir(self), self.worker, self.sync, max_batch_lines=4)
        spool.start()
        self.worker.release()
        ds = [spool.append(jobs[0], record(jobs[0], i)) for i in range(5)]
        ds.append(spool.append_many([(jobs[1], record(jobs[1], i)) for i in range(5)]))
        self.assertEqual(len(self.worker.queued), 3)   # 4 lines, 4 lines, 2 lines
        self.worker.release(2)
        self.assertEqual([bool(d.called) for d in ds], [True] * 5 + [False])
        self.worker.release()
        self.assertEqual(len(self.successResultOf(ds[-1])), 5)
        spool.close()
        self.worker.release_all()

    def test_bad_record_refused(self):
        """A record holding a line feed is refused at once and nothing is written."""
        self.failureResultOf(self.spool.append(jobid(1), b"a\nb"), ValueError)
        self.assertEqual(self.worker.queued, [])

    def test_sync_failure_fails_the_batch(self):
        """When the flush fails (EIO), every append of the batch fails, no line of it
        reaches a job file, and the next batch works again."""
        job, other = jobid(1), jobid(2)
        self.spool.append(job, record(job, 1))
        self.worker.release()
        self.sync.fail_with = errno.EIO
        ds = [self.spool.append(job, record(job, 2)), self.spool.append(other, record(other, 3)),
              self.spool.append(job, record(job, 5))]
        self.worker.release_all()  # two batches, both fail
        self.assertEqual(len(self.sync.calls), 1)
        for d in ds:
            f = self.failureResultOf(d, SpoolWriteError)
            self.assertEqual(f.value.errno, errno.EIO)
            self.assertNotIsInstance(f.value, SpoolFullError)
        path = os.path.join(self.dir, layout.event_file_name(job))
        self.assertEqual(records_of(read_lines(path)), [record(job, 1)])
        self.assertFalse(os.path.exists(os.path.join(self.dir, layout.event_file_name(other))))
        self.sync.fail_with = None
        d = self.spool.append(job, record(job, 4))
        self.worker.release()
        self.successResultOf(d)
        self.assertEqual(records_of(read_lines(path)), [record(job, 1), record(job, 4)])

    def test_enospc_is_spool_full(self):
        """ENOSPC and EDQUOT become SpoolFullError, so the logger can answer 'disk full'."""
        self.sync.fail_with = errno.ENOSPC
        d = self.spool.append(jobid(1), record(jobid(1), 1))
        self.worker.release()
        self.assertEqual(self.failureResultOf(d, SpoolFullError).value.errno, errno.ENOSPC)

    def test_observer_sees_durable_lines(self):
        """Observers hear of the lines of each batch after they are durable."""
        seen = []
        self.spool.add_observer(lambda lines: seen.append([(a.lllid, self.sync.covers(a))
                                                           for a in lines]))
        job = jobid(1)
        self.spool.append(job, record(job, 1))
        self.worker.run_next()
        self.spool.append(job, record(job, 2))
        self.spool.append(job, record(job, 3))
        self.worker.release_all()
        self.assertEqual(seen, [[(1000, True)], [(1001, True), (1002, True)]])

    def test_append_many_one_deferred_in_order_with_single_appends(self):
        """append_many fires once, with one outcome per entry in order: the lines join
        the group commit of single appends (one sync), a record that is not one line
        gets its ValueError in its place and the others are stored."""
        jobs = [jobid(i) for i in range(3)]
        first = self.spool.append(jobs[0], record(jobs[0], 0))
        self.worker.run_next()   # on the disk now
        single = self.spool.append(jobs[1], record(jobs[1], 1))
        many = self.spool.append_many([(jobs[2], record(jobs[2], 2)), (jobs[0], b"a\nb"),
                                       (jobs[1], record(jobs[1], 3))])
        self.assertEqual(len(self.worker.queued), 1)
        self.worker.answer_all()
        self.successResultOf(first)
        self.assertNoResult(many)
        self.worker.release()
        self.assertEqual(len(self.sync.calls), 2)   # the single and the many: one batch
        self.assertEqual(self.successResultOf(single).lllid, 1001)
        outcomes = self.successResultOf(many)
        self.assertEqual(len(outcomes), 3)
        self.assertIsInstance(outcomes[1], ValueError)
        self.assertEqual([o.lllid for o in (outcomes[0], outcomes[2])], [1002, 1003])
        self.assertTrue(all(self.sync.covers(o) for o in (outcomes[0], outcomes[2])))
        path = os.path.join(self.dir, layout.event_file_name(jobs[1]))
        self.assertEqual(records_of(read_lines(path)), [record(jobs[1], 1), record(jobs[1], 3)])
        self.assertEqual((self.spool.lines, self.spool.batches), (4, 2))

    def test_append_many_edge_cases(self):
        """Nothing to append fires at once; only bad records: no batch; a closed spool
        refuses; a list longer than a batch spans two and fires after the last."""
        self.assertEqual(self.successResultOf(self.spool.append_many([])), [])
        outcomes = self.successResultOf(self.spool.append_many([(jobid(1), b"")]))
        self.assertIsInstance(outcomes[0], ValueError)
        self.assertEqual(self.worker.queued, [])
        spool = make_spool(temp_dir(self), self.worker, self.sync, max_batch_lines=4)
        spool.start()
        self.worker.release()
        job = jobid(1)
        spool.append(job, record(job, 0))
        self.worker.run_next()   # the lone line
        d = spool.append_many([(job, record(job, n)) for n in range(1, 7)])
        self.worker.release()   # the lone line answered, then 4 of the 6
        self.assertNoResult(d)
        self.worker.release()
        self.assertEqual([o.lllid for o in self.successResultOf(d)], list(range(1001, 1007)))
        spool.close()
        self.worker.release_all()
        self.failureResultOf(spool.append_many([(job, record(job, 9))]), SpoolClosedError)

    def test_append_many_failure_in_every_slot(self):
        """A failed flush puts the error in every slot of the entries; the Deferred
        still fires (with the outcomes), so the caller decides what to answer."""
        self.sync.fail_with = errno.ENOSPC
        d = self.spool.append_many([(jobid(1), record(jobid(1), 1)),
                                    (jobid(2), record(jobid(2), 2))])
        self.worker.release()
        outcomes = self.successResultOf(d)
        self.assertTrue(all(isinstance(o, SpoolFullError) for o in outcomes))

    def test_next_flush_starts_before_the_callers_hear(self):
        """When a batch is durable the writer goes on with what collected meanwhile
        before any caller of the finished batch is answered; appends made by those
        callers join one batch after it."""
        job = jobid(1)
        answered = []
        self.spool.append(job, record(job, 0)).addCallback(
            lambda _: answered.append(len(self.sync.calls)))
        self.worker.run_next()   # line 0 on the disk; the reactor has not heard yet
        chained = []

        def log_again(_):
            for n in (3, 4):
                chained.append(self.spool.append(job, record(job, n)))
        self.spool.append(job, record(job, 1)).addCallback(log_again)
        self.spool.append(job, record(job, 2))
        self.worker.run_next()   # lines 1 and 2, before line 0 is answered
        self.assertEqual((len(self.sync.calls), answered), (2, []))
        self.worker.answer_all()
        self.assertEqual(answered, [2])
        self.assertEqual(len(self.worker.queued), 1)   # lines 3 and 4: one batch
        self.worker.release()
        self.assertEqual([self.successResultOf(d).lllid for d in chained], [1003, 1004])
        self.assertEqual(self.spool.batches, 3)

    def test_close_writes_accepted_appends_then_refuses(self):
        """Closing waits for the accepted appends; later appends fail with SpoolClosedError."""
        job = jobid(1)
        ds = [self.spool.append(job, record(job, i)) for i in range(3)]
        closed = self.spool.close()
        self.failureResultOf(self.spool.append(job, record(job, 9)), SpoolClosedError)
        self.assertNoResult(closed)
        self.worker.release_all()
        self.successResultOf(closed)
        for d in ds:
            self.successResultOf(d)

    def test_one_logger_per_spool(self):
        """A second spool on a directory in use fails to start with SpoolLockedError."""
        other = make_spool(self.dir)
        self.failureResultOf(other.start(), SpoolLockedError)
        self.failureResultOf(other.append(jobid(1), record(jobid(1), 1)), SpoolClosedError)

    def test_file_removed_by_interlogger_is_recreated(self):
        """If the interlogger removes a fully delivered file, the next append creates it
        again (and syncs the directory) instead of writing into the removed file."""
        job = jobid(1)
        self.spool.append(job, record(job, 1))
        self.worker.release()
        path = os.path.join(self.dir, layout.event_file_name(job))
        fd = os.open(path, os.O_RDWR)
        self.assertTrue(layout.try_lock_exclusive(fd))
        os.unlink(path)
        os.close(fd)
        d = self.spool.append(job, record(job, 2))
        self.worker.release()
        self.assertEqual(self.successResultOf(d).offset, 0)
        self.assertEqual(records_of(read_lines(path)), [record(job, 2)])

    def test_many_files_cached_and_evicted(self):
        """More jobs than open-file slots: files are closed and reopened, lines stay in order."""
        spool = make_spool(temp_dir(self), SynchronousWorker(), max_open_files=3)
        self.successResultOf(spool.start())
        jobs = [jobid(i) for i in range(8)]
        for round_ in range(3):
            for job in jobs:
                self.successResultOf(spool.append(job, record(job, round_)))
        for job in jobs:
            lines = read_lines(os.path.join(spool.directory, layout.event_file_name(job)))
            self.assertEqual(records_of(lines), [record(job, r) for r in range(3)])
        self.assertLessEqual(len(spool._writer._open), 3)
        self.successResultOf(spool.close())


class RecoveryTests(SynchronousTestCase):
    """A crash can leave a torn last line; start() cuts it off and saves it aside."""

    def write_spool(self, tails: dict[int, bytes]) -> tuple[str, dict[int, list[bytes]]]:
        directory = temp_dir(self)
        os.makedirs(directory)
        good = {}
        for n, tail in tails.items():
            job = jobid(n)
            lines = [layout.format_line(10 * n + i, record(job, i)) for i in range(3)]
            with open(os.path.join(directory, layout.event_file_name(job)), "wb") as f:
                f.write(b"".join(lines) + tail)
            good[n] = lines
        return directory, good

    def test_torn_tails_cut_at_start(self):
        """Incomplete last lines, zero-filled blocks and partial records are cut off;
        exactly the complete lines stay, and each cut is saved with its reason."""
        job4 = jobid(4)
        full = layout.format_line(99, record(job4, 9))
        tails = {
            1: b"",                                         # clean
            2: full[:57],                                   # torn, no LF
            3: b"\0" * 4096,                                # zero-filled block
            4: full[:40] + b"\n",                           # partial record with a LF
            5: b"DG.LLLID=5 garbage\n\0\0\0",               # garbage line, then zeros
        }
        directory, good = self.write_spool(tails)
        spool = make_spool(directory)
        report = self.successResultOf(spool.start())
        cuts = report.cuts
        self.assertEqual(report.replayed, 0)
        for n in tails:
            path = os.path.join(directory, layout.event_file_name(jobid(n)))
            self.assertEqual(read_lines(path), good[n], n)
        by_file = {}
        for cut in cuts:
            by_file.setdefault(os.path.basename(cut.path), []).append(cut)
        self.assertNotIn(layout.event_file_name(jobid(1)), by_file)
        self.assertEqual(len(by_file[layout.event_file_name(jobid(5))]), 2)
        for cut in cuts:
            with open(cut.saved_to, "rb") as f:
                saved = f.read()
            self.assertEqual(len(saved), cut.length)
            with open(cut.saved_to[: -len(".ulm")] + ".reason") as f:
                note = json.load(f)
            self.assertEqual(note["reason"], cut.reason)
            self.assertEqual(note["offset"], cut.offset)
        # and appending after recovery continues on a clean line boundary
        d = spool.append(jobid(2), record(jobid(2), 7))
        self.successResultOf(d)
        path = os.path.join(directory, layout.event_file_name(jobid(2)))
        self.assertEqual(records_of(read_lines(path)),
                         [record(jobid(2), i) for i in range(3)] + [record(jobid(2), 7)])
        self.successResultOf(spool.close())

    def test_torn_tail_cut_when_file_first_opened(self):
        """A file that got a torn tail after start (written by someone else) is repaired
        before the next append to it."""
        directory, good = self.write_spool({1: b""})
        spool = make_spool(directory)
        self.successResultOf(spool.start())
        path = os.path.join(directory, layout.event_file_name(jobid(1)))
        with open(path, "ab") as f:
            f.write(b"DG.LLLID=77 DATE=2024")
        self.successResultOf(spool.append(jobid(1), record(jobid(1), 5)))
        self.assertEqual(read_lines(path), good[1] + [layout.format_line(1000, record(jobid(1), 5))])
        self.successResultOf(spool.close())


class JournalTests(SynchronousTestCase):
    """Job files are not flushed per batch: the journal is, and replay restores them."""

    def setUp(self):
        self.dir = os.path.join(tempfile.mkdtemp(prefix="lbtx-spool-"), "spool")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.dir), True)

    def journal(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.dir, JOURNAL_DIR)))

    def test_replay_restores_lost_tails_exactly(self):
        """After a crash that lost unflushed job file data (files cut anywhere, one
        gone), start-up replays the journal: every acknowledged line is back, at the
        same offsets, and new lines get higher LLLIDs."""
        spool = make_spool(self.dir, lllid_start=5000)
        self.successResultOf(spool.start())
        jobs = [jobid(i) for i in range(4)]
        for i in range(40):
            self.successResultOf(spool.append(jobs[i % 4], record(jobs[i % 4], i)))
        before = {job: open(os.path.join(self.dir, layout.event_file_name(job)), "rb").read()
                  for job in jobs}
        spool._writer.close(checkpoint=False)  # the process dies: no checkpoint
        paths = [os.path.join(self.dir, layout.event_file_name(job)) for job in jobs]
        os.truncate(paths[0], 0)
        os.truncate(paths[1], len(before[jobs[1]]) // 2)  # mid-line
        os.unlink(paths[2])
        again = make_spool(self.dir, lllid_start=1)  # a clock that went backwards
        report = self.successResultOf(again.start())
        self.assertEqual(report.max_lllid, 5039)
        self.assertGreater(report.replayed, 20)
        for job, path in zip(jobs, paths):
            self.assertEqual(open(path, "rb").read(), before[job])
        self.assertEqual(len(report.cuts), 1)  # the torn half line of job 1
        self.assertEqual(self.journal(), ["000000000001.jnl"])  # checkpointed
        appended = self.successResultOf(again.append(jobs[0], record(jobs[0], 99)))
        self.assertEqual(appended.lllid, 5040)
        self.successResultOf(again.close())

    def test_replay_skips_torn_and_bad_journal_records(self):
        """A torn journal tail (a batch never acknowledged) and malformed records are
        not replayed; they are saved to the quarantine folder."""
        spool = make_spool(self.dir)
        self.successResultOf(spool.start())
        job = jobid(1)
        self.successResultOf(spool.append(job, record(job, 1)))
        spool._writer.close(checkpoint=False)
        segment = os.path.join(self.dir, JOURNAL_DIR, "000000000001.jnl")
        stem = layout.spool_stem(job).encode()
        with open(segment, "ab") as f:
            f.write(b"no-stem-here DG.LLLID=7 x\n" + stem + b" " +
                    layout.format_line(2000, record(job, 2))[:30])
        os.unlink(os.path.join(self.dir, layout.event_file_name(job)))
        again = make_spool(self.dir)
        report = self.successResultOf(again.start())
        self.assertEqual(report.replayed, 1)
        self.assertEqual(sorted(c.reason for c in report.cuts),
                         ["journal record without a file stem", "torn journal record (no line feed)"])
        self.assertEqual(records_of(read_lines(os.path.join(self.dir, layout.event_file_name(job)))),
                         [record(job, 1)])
        self.successResultOf(again.close())

    def test_checkpoint_when_segment_is_full(self):
        """When a segment is full the journal moves on to a new one, and a checkpoint
        flushes the spool and removes the old segment; close empties the journal."""
        sync = SyncRecorder()
        spool = make_spool(self.dir, recorder=sync, segment_bytes=2000)
        self.successResultOf(spool.start())
        job = jobid(1)
        for i in range(12):
            self.successResultOf(spool.append(job, record(job, i)))
        self.assertGreaterEqual(sync.flushes, 2)
        self.assertEqual(len(self.journal()), 1)
        self.successResultOf(spool.close())
        self.assertEqual(self.journal(), [])
        path = os.path.join(self.dir, layout.event_file_name(job))
        self.assertEqual(records_of(read_lines(path)), [record(job, i) for i in range(12)])

    def test_killed_process_loses_no_acknowledged_line(self):
        """A logger process killed with SIGKILL after its appends were acknowledged:
        the next start finds every acknowledged line, even with the unflushed job
        files cut back as a power loss could leave them."""
        script = f"""
import os, sys, signal
sys.path[:0] = {[str(REPO), str(REPO / 'tests')]!r}
from twisted.internet import reactor
from lbtx.logger.spool import Spool
from lbtx.testing.workers import SynchronousWorker
from spool_support import jobid, record
spool = Spool({self.dir!r}, reactor=reactor, worker=SynchronousWorker())
spool.start()
for i in range(30):
    job = jobid(i % 3)
    spool.append(job, record(job, i)).addCallback(lambda a: print(a.lllid, flush=True))
os.kill(os.getpid(), signal.SIGKILL)
"""
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        self.assertEqual(proc.returncode, -9, proc.stderr)
        acked = {int(x) for x in proc.stdout.split()}
        self.assertEqual(len(acked), 30)
        for n in range(3):
            path = os.path.join(self.dir, layout.event_file_name(jobid(n)))
            os.truncate(path, os.path.getsize(path) // 3)
        spool = make_spool(self.dir)
        self.successResultOf(spool.start())
        found = set()
        for n in range(3):
            lines = read_lines(os.path.join(self.dir, layout.event_file_name(jobid(n))))
            self.assertEqual(records_of(lines), [record(jobid(n), i) for i in range(n, 30, 3)])
            found |= {layout.lllid_of(line) for line in lines}
        self.assertEqual(found, acked)
        self.successResultOf(spool.close())


@pytest_twisted.ensureDeferred
async def test_group_commit_with_the_writer_thread(tmp_path):
    """With the real writer thread, 2000 appends from 16 concurrent producers need far
    fewer syncs than lines, and every line is durable when its Deferred fires."""
    recorder = SyncRecorder()
    spool = Spool(str(tmp_path), reactor=reactor, sync=recorder,
                  sync_directory=recorder.sync_directory)
    await spool.start()
    not_covered = []

    async def producer(p: int) -> None:
        job = jobid(p)
        for i in range(125):
            appended = await spool.append(job, record(job, i))
            if not recorder.covers(appended):
                not_covered.append(appended)

    try:
        await gatherResults([Deferred.fromCoroutine(producer(p)) for p in range(16)])
    finally:
        await spool.close()
    assert not_covered == []
    assert spool.lines == 2000
    assert len(recorder.calls) == spool.batches < 2000 / 4
    for p in range(16):
        lines = read_lines(tmp_path / layout.event_file_name(jobid(p)))
        assert records_of(lines) == [record(jobid(p), i) for i in range(125)]


@pytest_twisted.ensureDeferred
async def test_writer_goes_on_while_the_reactor_is_busy(tmp_path):
    """With the real writer thread, a line appended while the reactor is kept busy
    (so it has not heard yet that the previous batch is durable) is made durable
    all the same: the writer does not wait for the reactor between group commits."""
    recorder = SyncRecorder()
    spool = Spool(str(tmp_path), reactor=reactor, sync=recorder,
                  sync_directory=recorder.sync_directory, lllid_start=1000)
    await spool.start()
    job = jobid(1)

    def synced_in_time(lllid: int) -> bool:
        deadline = time.monotonic() + 3
        while lllid not in recorder.synced:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    ds, synced = [], []
    for i in range(5):  # on the reactor thread, which does not return in between
        ds.append(spool.append(job, record(job, i)))
        synced.append(synced_in_time(1000 + i))
    assert synced == [True] * 5
    assert not any(d.called for d in ds)  # answered only by the reactor, afterwards
    results = await gatherResults(ds)
    await spool.close()
    assert [r.lllid for r in results] == list(range(1000, 1005))
    assert spool.batches == len(recorder.calls) == 5


# --- a real full (and a read-only) filesystem --------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="mounting a size-limited tmpfs needs root")


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted for the test, unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path) -> None:
    """Write ``path`` until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


@needs_root
def test_full_disk(tiny_tmpfs):
    """On a full filesystem appends fail with SpoolFullError, nothing failed is in the
    spool and nothing in it was refused, and appends work again once space is freed."""
    spool_dir = tiny_tmpfs / "spool"
    spool = Spool(str(spool_dir), reactor=reactor, worker=SynchronousWorker())
    tc = SynchronousTestCase()
    tc.successResultOf(spool.start())
    jobs = [jobid(i) for i in range(40)]
    acked = {job: [] for job in jobs}

    def append(job, n):
        d = spool.append(job, record(job, n))
        result = []
        d.addBoth(result.append)
        if isinstance(result[0], Appended):
            acked[job].append(record(job, n))
            return True
        assert result[0].check(SpoolFullError), result[0]
        return False

    assert append(jobs[0], 0)
    _fill(tiny_tmpfs / "filler")
    outcomes = [append(job, n) for n in range(1, 4) for job in jobs]
    assert not all(outcomes)  # new files and full pages cannot be written
    for job in jobs:
        path = spool_dir / layout.event_file_name(job)
        on_disk = records_of(read_lines(path)) if path.exists() else []
        assert on_disk == acked[job]
    os.unlink(tiny_tmpfs / "filler")
    for job in jobs:
        assert append(job, 9)
    for job in jobs:
        assert records_of(read_lines(spool_dir / layout.event_file_name(job))) == acked[job]
    tc.successResultOf(spool.close())


def _chattr(flag: str, *paths) -> None:
    result = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"chattr {flag} is not possible here: {result.stderr.strip()}")


@needs_root
def test_unwritable_spool(tmp_path):
    """When the spool cannot be written (its journal and journal folder made immutable:
    EPERM even for root) appends fail with SpoolWriteError, and work again when the
    spool is writable."""
    spool_dir = tmp_path / "spool"
    spool = Spool(str(spool_dir), reactor=reactor, worker=SynchronousWorker())
    tc = SynchronousTestCase()
    tc.successResultOf(spool.start())
    job = jobid(1)
    tc.successResultOf(spool.append(job, record(job, 1)))
    journal = spool_dir / JOURNAL_DIR
    frozen = [journal, *journal.iterdir()]
    try:
        _chattr("+i", *frozen)
        for n in range(3):
            f = tc.failureResultOf(spool.append(jobid(n), record(jobid(n), 2)), SpoolWriteError)
            assert f.value.errno == errno.EPERM
            assert not f.check(SpoolFullError)
    finally:
        subprocess.run(["chattr", "-i", *map(str, frozen)], check=False)
    tc.successResultOf(spool.append(job, record(job, 3)))
    assert records_of(read_lines(spool_dir / layout.event_file_name(job))) == [
        record(job, 1), record(job, 3)]
    assert not (spool_dir / layout.event_file_name(jobid(2))).exists()
    tc.successResultOf(spool.close())
