"""``glite-lb-job_status``: print the state of jobs (cli.md §3.3).

::

    glite-lb-job_status [-fullhist | -fasthist] [-nochildrenstates] jobid [jobid ...]
    glite-lb-job_status -x proxy_serve_sock jobid ...
    glite-lb-job_status -all

stdout starts with one empty line (also before a usage message), then one block
per job (:func:`lbtx.cli.status_text.status_block`), each ending in an empty
line. The JDL, the children and their states are asked for unless
``-nochildrenstates``; ``-fullhist``/``-fasthist`` add the thorough/fast children
histogram and print ``Found a FULLHIST flag`` (``FASTHIST``) between empty
lines. Each job's server is the one in its id (``GLITE_WMS_QUERY_SERVER`` with
``GLITE_WMS_QUERY_SERVER_OVERRIDE``); ``-x`` asks the proxy serve socket, ``-all``
lists the caller's jobs on ``GLITE_WMS_QUERY_SERVER``.

Errors go to stderr as ``<prog>: edg_wll_JobStatus: <strerror> (<desc>)`` and make
the exit status 1; an unparsable id only prints ``<prog>: <arg>: cannot parse
jobId`` (*quirk*: the status stays 0, and ``-nochildrenstates`` itself is reported
so). No argument or ``--help``: usage on stderr, exit 0.
"""

from __future__ import annotations

import sys
from typing import TextIO

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import Address, AddressError, Settings, query_address
from lbtx.cli.program import exit_status, program_name, run
from lbtx.cli.query_client import QueryClient
from lbtx.cli.status_text import status_block
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.messages import StatusFlag

__all__ = ["main", "DEFAULT_FLAGS"]

#: what the tool asks for unless told otherwise (the JDL, children and their states)
DEFAULT_FLAGS = StatusFlag.CLASSADS | StatusFlag.CHILDREN | StatusFlag.CHILDSTAT
_HIST_FLAGS = {"-fullhist": (StatusFlag.CHILDHIST_THOROUGH, "FULLHIST"),
               "-fasthist": (StatusFlag.CHILDHIST_FAST, "FASTHIST")}


def usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-fullhist | -fasthist] [-nochildrenstates] "
              f"job_id [job_id [...]]\n"
              f"       {prog} -x proxy_serve_sock job_id [job_id [...]]\n"
              f"       {prog} -all\n"
              "  -fullhist          thorough recount of the children histogram\n"
              "  -fasthist          the children histogram as the server keeps it\n"
              "  -nochildrenstates  do not ask for the children and their states\n"
              "  -x SOCK            ask the L&B proxy on its serve socket\n"
              "  -all               all jobs of the caller (GLITE_WMS_QUERY_SERVER)\n")


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, settings: Settings | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    out = out or sys.stdout
    err = err or sys.stderr
    settings = settings or Settings.from_env()
    prog = program_name()
    out.write("\n")
    if not args or args[0] in ("--help", "-help", "-h"):
        usage(prog, err)
        return 0
    if args[0] == "-all":
        return _all_jobs(prog, settings, out, err)
    if args[0] == "-x":
        if len(args) < 2:
            usage(prog, err)
            return 0
        proxy = Address.unix(args[1])
        return _statuses(prog, args[2:], DEFAULT_FLAGS, settings, out, err,
                         where="edg_wll_JobStatusProxy", proxy=proxy)
    flags = DEFAULT_FLAGS
    for arg in args:
        if arg in _HIST_FLAGS:
            bit, name = _HIST_FLAGS[arg]
            flags |= bit
            out.write(f"\nFound a {name} flag\n\n")
        elif arg == "-nochildrenstates":
            flags &= ~(StatusFlag.CHILDREN | StatusFlag.CHILDSTAT)
    ids = [a for a in args if a not in _HIST_FLAGS]
    return _statuses(prog, ids, flags, settings, out, err, where="edg_wll_JobStatus")


def _statuses(prog, ids, flags, settings, out, err, *, where, proxy=None) -> int:
    status = 0
    for arg in ids:
        try:
            job_id = JobId.parse(arg)
        except LBFormatError:
            err.write(f"{prog}: {arg}: cannot parse jobId\n")
            continue
        try:
            address = proxy or query_address(settings, job_id)
            view = QueryClient(address, timeout=settings.query_timeout).job_status(job_id, flags)
        except AddressError as e:
            err.write(f"{prog}: {where}: {ClientError(ErrorCode.EINVAL, str(e)).text()}\n")
            status = 1
            continue
        except ClientError as e:
            err.write(f"{prog}: {where}: {e.text()}\n")
            status = 1
            continue
        out.write(status_block(view))
    return status


def _all_jobs(prog, settings, out, err) -> int:
    where = "edg_wll_QueryJobs"
    try:
        client = QueryClient(query_address(settings), timeout=settings.query_timeout)
        error, jobs = client.user_jobs(DEFAULT_FLAGS)
    except AddressError as e:
        err.write(f"{prog}: {where}: {ClientError(ErrorCode.EINVAL, str(e)).text()}\n")
        return exit_status(ErrorCode.EINVAL)
    except ClientError as e:
        err.write(f"{prog}: {where}: {e.text()}\n")
        return exit_status(e.code)
    for _, view in jobs:
        if view is not None:
            out.write(status_block(view))
    if error is not None:
        if error[0] == ErrorCode.E2BIG:
            out.write("Warning: only limited result returned!\n")
        else:
            err.write(f"{prog}: {where}: {ClientError(*error).text()}\n")
            return exit_status(error[0])
    return 0


def console() -> None:
    """The ``glite-lb-job_status`` console script."""
    run(main)


if __name__ == "__main__":
    console()
