"""``glite-lb-job_log``: list the events of a job (cli.md §3.5).

::

    glite-lb-job_log [-r repeat] [-d delay] [-x | -X serve_sock] jobid

stdout: every event the server returns (below the DEBUG level, in the server's
order) as the legacy library writes it (:func:`lbtx.cli.event_text.unparse_event`,
``DG.PRIORITY=0``),
each followed by an empty line, then one more empty line and ``Found <N> events``.
With ``-r R`` the query is repeated R more times, ``-d`` seconds apart (default 1),
printing ``Sleeping ...`` and ``OK`` (or the error on stderr) each time; repeated
results are not printed. ``-x`` asks the L&B proxy (``GLITE_WMS_LBPROXY_SERVE_SOCK``),
``-X`` the given serve socket.

A failed query prints ``<prog>: <strerror> (<desc>)`` on stderr and ``Found 0
events``, *quirk*: with exit status 0. Only argument problems give 1: no job id or
a bad option (usage on stderr), an unparsable id (``<arg>: can't parse job ID``).
"""

from __future__ import annotations

import time
from typing import TextIO

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import Address, AddressError, Settings, query_address
from lbtx.cli.event_text import unparse_event
from lbtx.cli.program import begin, run
from lbtx.cli.query_client import QueryClient
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode

__all__ = ["main"]

DEFAULT_DELAY = 1.0  # seconds between repetitions


def usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-r repeat] [-d delay] [-x | -X serve_sock] job_id\n"
              "  -r REPEAT   repeat the query REPEAT more times\n"
              "  -d DELAY    seconds between repetitions (default 1)\n"
              "  -x          ask the L&B proxy on its default serve socket\n"
              "  -X SOCK     ask the L&B proxy on SOCK\n")


def _number(text: str, kind):
    value = kind(text)
    if value < 0:
        raise ValueError(text)
    return value


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, settings: Settings | None = None,
         sleep=time.sleep) -> int:
    begun = begin(argv, out, err, settings, "r:d:xX:h", usage=usage,
                  status=1)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    repeat, delay, proxy = 0, DEFAULT_DELAY, None
    try:
        for opt, value in opts:
            if opt == "-r":
                repeat = _number(value, int)
            elif opt == "-d":
                delay = _number(value, float)
            elif opt == "-x":
                proxy = Address.unix(settings.proxy_serve_sock)
            elif opt == "-X":
                proxy = Address.unix(value)
            elif opt == "-h":
                usage(prog, err)
                return 1
    except ValueError:
        err.write(f"{prog}: {opt} needs a non-negative number, not {value!r}\n")
        usage(prog, err)
        return 1
    if not rest:
        usage(prog, err)
        return 1
    try:
        job_id = JobId.parse(rest[0])
    except LBFormatError:
        err.write(f"{rest[0]}: can't parse job ID\n")
        return 1

    def query():
        address = proxy or query_address(settings, job_id)
        return QueryClient(address, timeout=settings.query_timeout).job_log(job_id)

    def report(e: ClientError) -> None:
        err.write(f"{prog}: {e.text()}\n")

    try:
        events = query()
    except AddressError as e:
        report(ClientError(ErrorCode.EINVAL, str(e)))
        events = []
    except ClientError as e:
        report(e)
        events = []
    for ev in events:
        out.write(unparse_event(ev, priority=0))
        out.write("\n")
    out.write(f"\nFound {len(events)} events\n")
    for _ in range(repeat):
        out.write("Sleeping ...\n")
        out.flush()
        sleep(delay)
        try:
            query()
        except AddressError as e:
            report(ClientError(ErrorCode.EINVAL, str(e)))
        except ClientError as e:
            report(e)
        else:
            out.write("OK\n")
    return 0


def console() -> None:
    """The ``glite-lb-job_log`` console script."""
    run(main)


if __name__ == "__main__":
    console()
