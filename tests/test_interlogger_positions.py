"""Delivery positions (lbtx.interlogger.positions): format, checks, atomic group writes."""

from __future__ import annotations

import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from lbtx.interlogger.positions import (Position, PositionStore, check_position, encode_position,
                                        position_path, read_position, write_positions)
from lbtx.logger import layout
from lbtx.testing.workers import ManualWorker, SynchronousWorker

from spool_support import jobid, record


class PositionFileTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lbtx-pos-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_round_trip(self):
        """A written position reads back; a missing or damaged file reads as None."""
        path = position_path(self.dir, "s")
        self.assertIsNone(read_position(path))
        write_positions([(path, encode_position("https://h/j", Position(120, 77)))],
                        sync=lambda fds: None)
        self.assertEqual(read_position(path), Position(120, 77))
        self.assertEqual(os.listdir(self.dir), ["s.pos"])  # no temporary file left
        for bad in [b"", b"lbtx-position 1\nj\n12\n", b"lbtx-position 1\nj\nx\n-\n",
                    b"other 1\nj\n12\n-\n", b"lbtx-position 1\nj\n12\n7x\n"]:
            with open(path, "wb") as f:
                f.write(bad)
            self.assertIsNone(read_position(path), bad)

    def test_group_write_has_one_sync(self):
        """Many positions written together are flushed by one group sync call,
        before any of them is renamed into place."""
        calls = []

        def sync(fds):
            calls.append(len(fds))
            self.assertEqual([n for n in os.listdir(self.dir) if not n.endswith(".tmp")], [])

        entries = [(position_path(self.dir, f"s{i}"), encode_position("j", Position(i, i)))
                   for i in range(1, 20)]
        write_positions(entries, sync=sync)
        self.assertEqual(calls, [19])
        self.assertEqual(read_position(position_path(self.dir, "s7")), Position(7, 7))

    def test_check_position(self):
        """A position is good only at a line boundary whose line carries its LLLID."""
        job = jobid(1)
        lines = [layout.format_line(10 + i, record(job, i)) for i in range(3)]
        path = os.path.join(self.dir, "f.ulm")
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        fd = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        end1 = len(lines[0])
        self.assertIsNone(check_position(fd, Position()))
        self.assertIsNone(check_position(fd, Position(end1, 10)))
        self.assertIsNone(check_position(fd, Position(os.path.getsize(path), 12)))
        self.assertIsNotNone(check_position(fd, Position(end1, 11)))        # another line
        self.assertIsNotNone(check_position(fd, Position(end1 - 5, 10)))    # mid-line
        self.assertIsNotNone(check_position(fd, Position(10**6, 12)))       # beyond the end


class PositionStoreTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lbtx-pos-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.syncs = []

    def sync(self, fds):
        self.syncs.append(len(fds))

    def test_commits_coalesce_while_writing(self):
        """Commits made while a write is on the disk are written next, together, with
        only the newest position of each file."""
        worker = ManualWorker()
        store = PositionStore(self.dir, worker, self.sync)
        store.commit("a", "ja", Position(10, 1))
        for i in range(2, 6):
            store.commit("a", "ja", Position(10 * i, i))
            store.commit("b", "jb", Position(i, i))
        done = store.flush()
        self.assertEqual(len(worker.queued), 1)
        worker.release()
        self.assertNoResult(done)
        worker.release()
        self.successResultOf(done)
        self.assertEqual(self.syncs, [1, 2])
        self.assertEqual(read_position(position_path(self.dir, "a")), Position(50, 5))
        self.assertEqual(read_position(position_path(self.dir, "b")), Position(5, 5))

    def test_failed_write_is_retried(self):
        """A write that fails keeps its positions for the next attempt."""
        store = PositionStore(self.dir, SynchronousWorker(), self.fail_once)
        self.failed = False
        store.commit("a", "ja", Position(10, 1))
        self.assertIsNone(read_position(position_path(self.dir, "a")))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.successResultOf(store.flush())
        self.assertEqual(read_position(position_path(self.dir, "a")), Position(10, 1))

    def fail_once(self, fds):
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")

    def test_forget(self):
        """A forgotten position is not written (its file is being removed)."""
        worker = ManualWorker()
        store = PositionStore(self.dir, worker, self.sync)
        store.commit("a", "ja", Position(10, 1))
        store.commit("b", "jb", Position(10, 1))
        store.forget("b")
        worker.release_all()
        self.assertIsNone(read_position(position_path(self.dir, "b")))
