"""Spool line checks (lbtx.logger.layout) and the number of job files kept open."""

from __future__ import annotations

import os
import random

from lbtx.logger import layout

from spool_support import jobid, record


def _lines():
    job = jobid(1)
    good = layout.format_line(12, record(job, 0))
    yield good
    yield good[:-1]                                  # no line feed
    yield good.replace(b" ", b"\0", 3)               # NUL bytes
    yield good[len(b"DG.LLLID="):]                   # no prefix
    yield b"DG.LLLID=1 DG.EVNT=\"x\"\n"              # no job id
    yield b"DG.LLLID=1 dg.jobid=\"https://h:9000/a\\\"b\"\n"  # escaped quote, other case
    yield b"DG.LLLID=1 X=\"DG.JOBID=\\\"no\\\"\" DG.JOBID=\"https://h:9000/j\"\n"
    yield b""
    yield b"\n"
    yield b"DG.LLLID=" + b"9" * 30 + b" DG.JOBID=\"j\"\n"  # oversized LLLID
    yield good * 3
    rng = random.Random(4)
    for _ in range(200):
        cut = rng.randrange(len(good) + 1)
        yield good[:cut] + os.urandom(rng.randrange(8)) + good[cut:]


def _reference(line: bytes) -> str | None:
    """The checks step by step, each through its own function."""
    if not line.endswith(b"\n"):
        return "no line feed at the end"
    if b"\0" in line:
        return "NUL byte in the line"
    if layout.lllid_of(line) is None:
        return "no DG.LLLID prefix"
    if layout.raw_jobid(line) is None:
        return "no DG.JOBID"
    return None


def test_checked_jobid_matches_the_step_by_step_checks():
    """For good, truncated, hostile and random lines, checked_jobid (and check_line)
    give the step-by-step verdict and, for good lines, raw_jobid's value."""
    seen_good = seen_bad = 0
    for line in _lines():
        reason, raw = layout.checked_jobid(line)
        assert reason == _reference(line) == layout.check_line(line), line
        if reason is None:
            seen_good += 1
            assert raw == layout.raw_jobid(line) and raw is not None, line
        else:
            seen_bad += 1
            assert raw is None, line
    assert seen_good and seen_bad


def test_good_line_names_its_job():
    job = jobid(3)
    reason, raw = layout.checked_jobid(layout.format_line(5, record(job, 1)))
    assert reason is None
    assert raw == str(job).encode()


def test_open_job_files_follow_the_open_file_limit():
    """The writer keeps a quarter of the soft open-file limit open, within [64, 4096]."""
    import resource
    import subprocess
    import sys

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code = "from lbtx.logger.writer import default_max_open_files as f; print(f())"
    for limit, expected in [(200, 64), (1200, 300), (40000, 4096)]:
        if hard != resource.RLIM_INFINITY and limit > hard:
            continue

        def lower(limit=limit):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

        out = subprocess.run([sys.executable, "-c", code], preexec_fn=lower, check=True,
                             capture_output=True, text=True).stdout
        assert int(out) == expected, (limit, out)
