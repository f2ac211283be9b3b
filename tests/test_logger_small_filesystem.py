"""A spool filesystem smaller than a journal segment (found with the full-disk
test of tests/test_delivery_outages.py).

The logger's write-ahead journal (docs/spool.md, "Checkpoints") was checkpointed
and emptied only when a segment exceeded 64 MiB, at start-up and at a clean
shutdown. On a spool filesystem with less room than that the journal itself
filled the disk: every event was refused from then on, although every event file
had been delivered and removed, until the logger was restarted. Now a journal
append that fails with ENOSPC starts a new segment, checkpoints the old ones
(which frees their room) and tries once more, so logging goes on by itself once
the spool has drained.
"""

from __future__ import annotations

import errno

from daemon_support import spool_empty, wait_until
from delivery_fault_support import P01, QUICK_DELIVERY, Daemons, size_limited_tmpfs
from fault_producer import wms_steps
from lbtx.producer import Producer, UnavailableError
from lbtx.logger import layout
from lbtx.logger.errors import SpoolFullError
from lbtx.logger.writer import Appended, SpoolWriter
from lbtx.producer.context import default_user
from spool_support import jobid, read_lines, record


def test_logging_resumes_once_a_small_spool_has_drained(tmp_path):
    with size_limited_tmpfs(tmp_path / "spoolfs", "1m") as mount:
        daemons = Daemons(tmp_path, standalone_interlogger=False, delivery_args=QUICK_DELIVERY,
                          spool=mount / "spool")
        steps = wms_steps(str(P01))
        source, type_name, attrs = steps[-3]      # Running, by the LogMonitor
        job = daemons.jobs(1)[0]
        registrar = Producer(str(daemons.sock), source=steps[0][0], user=default_user(),
                             host="wms.example.org", timeout=10)
        producer = Producer(str(daemons.sock), source=source, user=default_user(),
                            host="wms.example.org", timeout=10)
        try:
            daemons.start_all()
            ctx = registrar.register(job, **steps[0][2])
            ctx = producer.context(job, ctx.seqcode)
            counts = []
            for _ in range(8):  # fill the spool, let it drain, again and again
                logged = 0
                while logged < 5000:              # ~1 KiB of spool per event
                    try:
                        producer.log(ctx, type_name, **attrs)
                    except UnavailableError:
                        break
                    logged += 1
                counts.append(logged)
                wait_until(lambda: spool_empty(daemons.spool), timeout=60,
                           what="delivery of the spool")
        finally:
            registrar.close()
            producer.close()
            daemons.stop_all()
    print("\nevents logged between a drained spool and a full one:", counts)
    # with the journal kept, each round had about half the room of the one before,
    # and from the fifth on none (logging refused for good: [1269, 604, 286, 143, 0 ...])
    assert min(counts) > counts[0] // 10



def test_a_journal_append_refused_for_space_trims_the_journal(tmp_path):
    """Without a tmpfs: the journal's flush fails with ENOSPC once; the writer starts
    a new segment, checkpoints (removes) the old one and appends again: the batch
    succeeds and the journal holds only its record."""
    refuse = []

    def sync(fds):
        if refuse:
            refuse.pop()
            raise OSError(errno.ENOSPC, "No space left on device")

    flushed = []
    writer = SpoolWriter(str(tmp_path / "spool"), sync=sync, flush=flushed.append)
    writer.start()
    try:
        job = jobid(1)
        stem = layout.spool_stem(job)
        first = layout.format_line(1, record(job, 1))
        outcomes, _, _ = writer.write_batch([(stem, first, 1)])
        assert isinstance(outcomes[0], Appended)
        refuse.append(True)
        second = layout.format_line(2, record(job, 2))
        outcomes, _, _ = writer.write_batch([(stem, second, 2)])
        assert isinstance(outcomes[0], Appended)
        journal = tmp_path / "spool" / "journal"
        segments = sorted(journal.iterdir())
        assert len(segments) == 1 and segments[0].read_bytes().endswith(second)
        assert b"DG.LLLID=1 " not in segments[0].read_bytes()
        assert flushed        # the job files were made durable before the old segment went
        assert read_lines(tmp_path / "spool" / layout.event_file_name(job)) == [first, second]
        refuse.append(True)   # an empty journal has nothing to give: the batch fails
        writer._journal.open_new()
        for old in segments:
            old.unlink()
        outcomes, _, _ = writer.write_batch([(stem, layout.format_line(3, record(job, 3)), 3)])
        assert isinstance(outcomes[0], SpoolFullError)
    finally:
        writer.close(checkpoint=False)
