"""Delivery positions (lbtx.interlogger.positions): format, checks, group writes in place."""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib

from twisted.trial.unittest import SynchronousTestCase

from lbtx.interlogger.positions import (Position, PositionStore, check_position, decode_position,
                                        encode_position, position_path, read_position,
                                        write_positions)
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
                    b"other 1\nj\n12\n-\n", b"lbtx-position 1\nj\n12\n7x\n",
                    encode_position("https://h/j", Position(120, 77))[:-3] + b"\n"]:
            with open(path, "wb") as f:
                f.write(bad)
            self.assertIsNone(read_position(path), bad)

    def test_group_write_has_one_sync(self):
        """Many positions written together are flushed by one group sync call, after
        all of them are written; existing files are overwritten in place (same inode,
        no temporary file)."""
        calls = []
        entries = [(position_path(self.dir, f"s{i}"), encode_position("j", Position(i, i)))
                   for i in range(1, 20)]
        write_positions(entries, sync=lambda fds: calls.append(len(fds)))
        inode = os.stat(position_path(self.dir, "s7")).st_ino

        def sync(fds):
            calls.append(len(fds))
            self.assertEqual(read_position(position_path(self.dir, "s7")), Position(700, 7))

        entries = [(position_path(self.dir, f"s{i}"), encode_position("j", Position(100 * i, i)))
                   for i in range(1, 20)]
        write_positions(entries, sync=sync)
        self.assertEqual(calls, [19, 19])
        self.assertEqual(os.stat(position_path(self.dir, "s7")).st_ino, inode)
        self.assertEqual(sorted(os.listdir(self.dir)), sorted(f"s{i}.pos" for i in range(1, 20)))

    def test_shorter_position_cuts_the_file(self):
        """A position shorter than the one it overwrites leaves no old bytes behind."""
        path = position_path(self.dir, "s")
        write_positions([(path, encode_position("https://h/long-job-id", Position(10**12, 10**15)))],
                        sync=lambda fds: None)
        write_positions([(path, encode_position("https://h/j", Position()))], sync=lambda fds: None)
        self.assertEqual(read_position(path), Position())
        with open(path, "rb") as f:
            self.assertEqual(f.read(), encode_position("https://h/j", Position()))

    def test_torn_record_is_rejected(self):
        """A record torn by a power failure during its overwrite (any mixture of the old
        and the new bytes, or a cut) fails its CRC and reads as None (the file is then
        delivered from its start), never as a wrong position."""
        old = encode_position("https://h/j", Position(1234, 5678))
        new = encode_position("https://h/j", Position(1299, 5699))
        self.assertEqual(len(old), len(new))
        for cut in range(1, len(new)):
            mixed = new[:cut] + old[cut:]
            self.assertIn(decode_position(mixed),
                          (None, Position(1234, 5678), Position(1299, 5699)), cut)
            self.assertIsNone(decode_position(new[:cut]), cut)
            self.assertIsNone(decode_position(new + old[cut:]), cut)
        flipped = bytearray(new)
        flipped[new.index(b"1299")] = ord("2")
        self.assertIsNone(decode_position(bytes(flipped)))

    def test_version_1_is_read_and_upgraded_in_place(self):
        """A position file of version 1 (no CRC, left by an older interlogger) reads as
        before; the next write overwrites it with version 2."""
        path = position_path(self.dir, "s")
        with open(path, "wb") as f:
            f.write(b"lbtx-position 1\nhttps://h/j\n120\n77\n")
        with open(path + ".tmp", "wb") as f:  # a version 1 write cut short
            f.write(b"lbtx-pos")
        self.assertEqual(read_position(path), Position(120, 77))
        write_positions([(path, encode_position("https://h/j", Position(240, 78)))],
                        sync=lambda fds: None)
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(b"lbtx-position 2\n"))
        self.assertEqual(read_position(path), Position(240, 78))
        for bad in [b"lbtx-position 1\nj\n12\n-\nextra\n", b"lbtx-position 1\nj\n12\n-"]:
            self.assertIsNone(decode_position(bad), bad)

    def test_hostile_content(self):
        """Garbage, wrong CRCs, binary and oversized content read as None."""
        body = b"lbtx-position 2\nj\n12\n-\n"
        good = body + b"%08x\n" % zlib.crc32(body)
        self.assertEqual(decode_position(good), Position(12, None))
        for bad in [b"", b"\n", b"\n\n\n\n\n\n", body, body + b"0000000\n", body + b"zzzzzzzz\n",
                    good + b"\n", good[:-1], b"\xff\xfe" + good, good.replace(b"12", b"-1"),
                    b"lbtx-position 2\n" * 10000, os.urandom(300)]:
            self.assertIsNone(decode_position(bad), bad[:80])
        body = b"lbtx-position 2\nj\n1x\n-\n"
        self.assertIsNone(decode_position(body + b"%08x\n" % zlib.crc32(body)))

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
        """A write whose flush fails keeps its positions for the next attempt, which
        writes and flushes them again."""
        store = PositionStore(self.dir, SynchronousWorker(), self.fail_once)
        self.failed = False
        store.commit("a", "ja", Position(10, 1))
        self.assertEqual(self.syncs, [1])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        os.unlink(position_path(self.dir, "a"))  # whatever the failed write left
        self.successResultOf(store.flush())
        self.assertEqual(self.syncs, [1, 1])
        self.assertEqual(read_position(position_path(self.dir, "a")), Position(10, 1))
        self.successResultOf(store.flush())
        self.assertEqual(self.syncs, [1, 1])  # nothing left to write

    def fail_once(self, fds):
        self.syncs.append(len(fds))
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
