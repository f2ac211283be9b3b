"""Helpers for the spool and interlogger tests: records, job ids, reading spool files."""

from __future__ import annotations

import os

from lbtx.jobid import JobId

SERVER = "lb.example.org:9000"
OTHER_SERVER = "lb.other.org:9000"


def jobid(n: int, server: str = SERVER) -> JobId:
    return JobId.parse(f"https://{server}/job{n:04d}AAAAAAAAAAAAAAAAA")


def record(job: JobId, n: int) -> bytes:
    """A valid ULM Running event for ``job``; ``n`` makes it distinct."""
    return ('DATE=20240301121500.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM '
            'DG.PRIORITY=0 DG.SOURCE="LRMS" DG.SRC_INSTANCE="" DG.EVNT="Running" '
            f'DG.JOBID="{job}" DG.SEQCODE="UI=000002:NS=0000000004:WM=000003:BH=0000000001:'
            f'JSS=000002:LM=000001:LRMS={n:06d}:APP=000000:LBS=000000" '
            f'DG.USER="/DC=org/CN=Alice" DG.RUNNING.NODE="wn{n}"').encode()


def read_lines(path) -> list[bytes]:
    """The lines of a file, each with its LF (a torn last piece without it)."""
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def records_of(lines) -> list[bytes]:
    """The records of spool lines: without the DG.LLLID prefix and the LF."""
    out = []
    for line in lines:
        assert line.startswith(b"DG.LLLID="), line
        out.append(line.rstrip(b"\n").split(b" ", 1)[1])
    return out


def event_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".ulm"))
