"""``glite-lb-query_ext``: conditional job and event queries (cli.md §3.8).

::

    glite-lb-query_ext [-h] [-v] [-s] [-e] [-m host:port] [-i file] [-P] [-p sock]
                       [-C] [-S] [-N] [-r limited|all|none] [-J n] [-E n] [-R n]

Reads queries in the condition language of :mod:`lbtx.cli.condition_text` from
``-i file`` (an unopenable file silently falls back to stdin) or stdin: condition
lines, an empty line after each query; with ``-e`` every query is a block of job
conditions and then a block of event conditions. The server is ``-m`` or
``GLITE_WMS_QUERY_SERVER``; ``-P``/``-p sock`` ask the L&B proxy serve socket.

Output: per matching job ``jobId: <jobid>``; with ``-s`` its state instead
(:func:`lbtx.cli.status_text.flat_block`); with ``-e`` per event ``event:
<EventName padded to 11> (jobid <jobid>)``. Flags: ``-C`` class-ad data, ``-S``
children states, ``-N`` no job ids. Limits: ``-J n`` jobs and ``-E n`` events per
query (defaults ``GLITE_WMS_QUERY_JOBS_LIMIT``/``_EVENTS_LIMIT``), ``-R n`` both,
``-r`` what happens beyond them (default ``GLITE_WMS_QUERY_RESULTS``).

A query the server refuses prints, *quirk*, only ` (<desc>)` on stderr and leaves
the exit status 0 (a partial result is still printed). A parse error prints
``<prog>: <reason>`` and exits 1; a bad flag gives usage and ``EINVAL`` (22); a
server that cannot be reached ``<prog>: <strerror> (<desc>)`` and 1. ``-h``:
usage on stderr, exit 0. ``-v`` echoes the parsed queries on stdout.
"""

from __future__ import annotations

import errno
import sys
from typing import TextIO

from lbtx.cli.client_error import ClientError
from lbtx.cli.condition_text import ConditionSyntaxError, parse_lines, split_queries
from lbtx.cli.environment import Address, AddressError, Settings, query_address
from lbtx.cli.program import begin, run
from lbtx.cli.query_client import QueryClient
from lbtx.cli.status_text import flat_block
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.messages import QueryResults, ResultLimit, StatusFlag

__all__ = ["main"]

_MODES = {"limited": QueryResults.LIMITED, "all": QueryResults.ALL, "none": QueryResults.NONE}


def usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-h] [-v] [-s] [-e] [-m host:port] [-i file] [-P] [-p sock]\n"
              f"       {' ' * len(prog)} [-C] [-S] [-N] [-r limited|all|none] [-J n] [-E n] "
              f"[-R n]\n"
              "  -m HOST:PORT  server (default GLITE_WMS_QUERY_SERVER)\n"
              "  -i FILE       read the conditions from FILE (default stdin)\n"
              "  -s            print job states instead of job ids\n"
              "  -e            query events (a block of event conditions follows)\n"
              "  -C            ask for class-ad data (needed for jdl_attr)\n"
              "  -S            ask for the children's states\n"
              "  -N            ask for no job ids\n"
              "  -r MODE       beyond a limit: limited, all or none\n"
              "  -J N, -E N    limit on jobs, on events; -R N both\n"
              "  -P, -p SOCK   ask the L&B proxy (on SOCK)\n"
              "  -v            verbose\n"
              "  -h            this help\n")


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _mode(settings: Settings) -> QueryResults:
    return _MODES.get((settings.query_results or "").lower(), QueryResults.UNSET)


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, inp: TextIO | None = None,
         settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "hvsem:i:Pp:CSNr:J:E:R:", usage=usage,
                  status=errno.EINVAL)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    verbose = states = events = False
    server = infile = None
    proxy: Address | None = None
    flags = StatusFlag.NONE
    mode = _mode(settings)
    jobs_limit, events_limit = settings.jobs_limit, settings.events_limit
    try:
        for opt, value in opts:
            if opt == "-h":
                usage(prog, err)
                return 0
            elif opt == "-v":
                verbose = True
            elif opt == "-s":
                states = True
            elif opt == "-e":
                events = True
            elif opt == "-m":
                server = value
            elif opt == "-i":
                infile = value
            elif opt == "-P":
                proxy = Address.unix(settings.proxy_serve_sock)
            elif opt == "-p":
                proxy = Address.unix(value)
            elif opt == "-C":
                flags |= StatusFlag.CLASSADS
            elif opt == "-S":
                flags |= StatusFlag.CHILDSTAT
            elif opt == "-N":
                flags |= StatusFlag.NO_JOBS
            elif opt == "-r":
                if value.lower() not in _MODES:
                    raise ValueError(value)
                mode = _MODES[value.lower()]
            elif opt == "-J":
                jobs_limit = _limit(value)
            elif opt == "-E":
                events_limit = _limit(value)
            elif opt == "-R":
                jobs_limit = events_limit = _limit(value)
    except ValueError:
        err.write(f"{prog}: bad value {value!r} for {opt}\n")
        usage(prog, err)
        return errno.EINVAL
    if rest:
        err.write(f"{prog}: unexpected argument {rest[0]!r}\n")
        usage(prog, err)
        return errno.EINVAL
    if not states:
        flags |= StatusFlag.NO_STATES
    text = _read_input(infile, inp or sys.stdin, out if verbose else None)
    blocks = split_queries(text)
    if events and len(blocks) % 2:
        err.write(f"{prog}: the last query has no block of event conditions\n")
        return 1
    step = 2 if events else 1
    try:
        address = proxy or query_address(settings, server=server)
    except AddressError as e:
        err.write(f"{prog}: {ClientError(ErrorCode.EINVAL, str(e)).text()}\n")
        return 1
    client = QueryClient(address, timeout=settings.query_timeout)
    for i in range(0, len(blocks), step):
        try:
            job_conditions = parse_lines(blocks[i])
            event_conditions = parse_lines(blocks[i + 1], events=True) if events else ()
        except ConditionSyntaxError as e:
            err.write(f"{prog}: {e}\n")
            return 1
        if verbose:
            out.write(f"query {i // step + 1}: jobs {job_conditions!r}"
                      + (f" events {event_conditions!r}" if events else "") + "\n")
        try:
            if events:
                error, found = client.query_events(job_conditions, event_conditions,
                                                   ResultLimit(events_limit, mode))
            else:
                error, found = client.query_jobs(job_conditions, flags,
                                                 ResultLimit(jobs_limit, mode))
        except ClientError as e:
            err.write(f"{prog}: {e.text()}\n")
            return 1
        if error is not None:
            err.write(f" ({error[1]})\n")
        if events:
            for ev in found:
                out.write(f"event: {ev.type_name:<11} (jobid {ev.job_id})\n")
        elif states:
            for _, view in found:
                if view is not None:
                    out.write(flat_block(view))
        else:
            for job_id, _ in found:
                out.write(f"jobId: {job_id if job_id is not None else '(null)'}\n")
    return 0


def _read_input(path: str | None, stdin: TextIO, verbose_out: TextIO | None) -> str:
    if path is not None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                return f.read()
        except OSError:
            pass  # cli.md: an unopenable file silently falls back to stdin
    if verbose_out is not None and stdin.isatty():
        verbose_out.write("Enter conditions, one group per line; an empty line ends a query.\n")
    return stdin.read()


def console() -> None:
    """The ``glite-lb-query_ext`` console script."""
    run(main)


if __name__ == "__main__":
    console()
