"""``lbtx flush``: have the local logger deliver what it holds now, and wait for it.

Usage: ``lbtx flush [-j JOBID] [-t SECONDS] [-l LOGGER]``. Sends a flush command
(formats.md §4.7) for the job, or for every job without ``-j``, and returns once
the server has all of it (exit 0), or when events still wait after the timeout or
the logger cannot flush (exit 1; the events stay with the logger and are
delivered later). A bad job id or timeout: exit 2, nothing sent.
"""

from __future__ import annotations

import sys

from lbtx.commands import MAX_TIMEOUT
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.producer import LoggingError, Producer

__all__ = ["add_parser", "run"]


def _seconds(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_TIMEOUT:
        raise ValueError(text)
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("flush", help="deliver what the local logger holds now, and wait",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("-j", "--jobid", help="the job (default: every job)")
    p.add_argument("-t", "--timeout", type=_seconds, default=None,
                   help="whole seconds the logger may take (default and most: its "
                        "--sync-timeout)")
    p.add_argument("-l", "--logger", help="logger address: a Unix socket path or host[:port] "
                                          "(default: LBTX_LOGGER, GLITE_WMS_LOG_DESTINATION, "
                                          "lbtx-data/logger.sock)")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        job = None if args.jobid is None else JobId.parse(args.jobid)
    except LBFormatError as e:
        print(f"lbtx flush: bad job id: {e}", file=sys.stderr)
        return 2
    # the answer may take the whole flush timeout: wait a little longer than that
    wait = 120.0 if args.timeout is None else max(120.0, args.timeout + 30.0)
    try:
        with Producer(args.logger, timeout=wait) as producer:
            producer.flush(job, timeout=args.timeout)
    except LoggingError as e:
        print(f"lbtx flush: not delivered: {e}", file=sys.stderr)
        return 1
    print("delivered" if job is None else f"delivered: {job}")
    return 0
