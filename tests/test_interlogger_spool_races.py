"""Spool files the interlogger meets while the logger is still writing them.

Found by the chaos test (tests/test_delivery_chaos.py): a standalone interlogger
rescanning the spool can open a job file the logger has just created and not yet
written (empty), or whose first line is not complete yet. No line names the job
then; the lines that follow must be delivered, not quarantined as "no line of
this file names its job".
"""

from __future__ import annotations

import os

from lbtx.logger import layout

from spool_support import jobid, record
from test_interlogger_delivery import DeliveryTestCase


class UnfinishedFirstLineTests(DeliveryTestCase):
    def held_by_the_logger(self, path: str) -> int:
        """Open ``path`` (creating it) and hold its exclusive lock, as the logger
        does while it appends."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        layout.lock_exclusive(fd)
        self.addCleanup(os.close, fd)
        return fd

    def test_a_file_found_empty_is_delivered_once_written(self):
        """A file the rescan finds empty and cannot remove (the logger holds it) is
        delivered when its first line arrives."""
        job = jobid(1)
        self.start_spool()
        fd = self.held_by_the_logger(self.path(job))
        delivery = self.start_delivery(observe=False)   # a standalone interlogger
        self.assertIn(layout.spool_stem(job), delivery.stores)
        layout.unlock(fd)
        self.log(job, 1)
        self.log(job, 2)
        self.successResultOf(delivery.rescan())
        self.assertEqual(self.quarantined(), [])
        self.assertEqual(self.server.stored, [record(job, 1), record(job, 2)])
        self.assertEqual(self.position(job).offset, os.path.getsize(self.path(job)))

    def test_a_first_line_still_being_written(self):
        """A file whose only bytes are an unfinished first line is read again once
        the line is complete; its job comes from that line."""
        job = jobid(2)
        self.start_spool()
        fd = self.held_by_the_logger(self.path(job))
        line = b"DG.LLLID=17 " + record(job, 1) + b"\n"
        os.write(fd, line[:40])
        delivery = self.start_delivery(observe=False)
        os.write(fd, line[40:])
        layout.unlock(fd)
        self.successResultOf(delivery.rescan())
        self.assertEqual(self.quarantined(), [])
        self.assertEqual(self.server.stored, [record(job, 1)])
        self.log(job, 2)
        self.successResultOf(delivery.rescan())
        self.assertEqual(self.server.stored, [record(job, 1), record(job, 2)])

    def test_a_file_no_line_of_which_names_its_job_is_still_quarantined(self):
        """Complete lines that name another job are quarantined, as before."""
        job, other = jobid(3), jobid(4)
        self.start_spool()
        with open(self.path(job), "wb") as f:
            f.write(b"DG.LLLID=5 " + record(other, 1) + b"\n")
        self.start_delivery(observe=False)
        [(lines, reason)] = self.quarantined()
        self.assertEqual(reason["reason"], "malformed spool line")
        self.assertEqual(self.server.stored, [])
