"""``glite-lb-user_jobs``: list the caller's jobs (cli.md §3.7).

::

    glite-lb-user_jobs [-h] [-x|--proxy] [-n|--no-states]

Asks ``GLITE_WMS_QUERY_SERVER`` (or with ``-x`` the L&B proxy serve socket) for
the jobs the caller owns. Output, then an empty line and ``Found <N> jobs`` (N
counts every returned job)::

          <jobid> .... <State> <DONE_CODE_x only when Done>
    COLL  <jobid> .... <State>             (DAG   for a DAG)
     `-       <subjobid> .... <State>

Only top-level simple jobs, DAGs and collections are listed, the subjobs under
their parent; CREAM, PBS, file-transfer and VM jobs are not listed. With ``-n`` the
lines are ``\\t<jobid>``. ``-h``: usage on stderr, exit 0. Errors: ``<prog>:
<strerror> (<desc>)`` on stderr, exit 1.
"""

from __future__ import annotations

from typing import TextIO

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import Address, AddressError, Settings, query_address
from lbtx.cli.program import begin, run
from lbtx.cli.query_client import QueryClient
from lbtx.cli.status_text import state_name
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.messages import StatusFlag
from lbtx.schema import JobState, StatJobtype

__all__ = ["main", "job_lines"]

_PARENTS = {StatJobtype.DAG: "DAG ", StatJobtype.COLLECTION: "COLL"}


def usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-h] [-x|--proxy] [-n|--no-states]\n"
              "  -h, --help       this help\n"
              "  -x, --proxy      ask the L&B proxy on its serve socket\n"
              "  -n, --no-states  list the job ids only\n"
              "The server is GLITE_WMS_QUERY_SERVER.\n")


def _tail(st) -> str:
    done = st.done_code.name if st.state == JobState.DONE and st.done_code is not None else None
    return f"DONE_CODE_{done}" if done else ""


def job_lines(jobs) -> list[str]:
    """The listing of ``[(job id, view)]`` with states (see the module docstring)."""
    lines = []
    states = [(jid, view.status) for jid, view in jobs if view is not None]
    for job_id, st in states:
        if st.parent_job is not None:
            continue
        jid = str(st.job_id or job_id)
        if st.jobtype is StatJobtype.SIMPLE:
            lines.append(f"      {jid} .... {state_name(st.state)} {_tail(st)}")
        elif st.jobtype in _PARENTS:
            lines.append(f"{_PARENTS[st.jobtype]}  {jid} .... {state_name(st.state)} {_tail(st)}")
            for sub_id, sub in states:
                if sub.parent_job is not None and str(sub.parent_job) == jid:
                    lines.append(f" `-       {sub.job_id or sub_id} .... "
                                 f"{state_name(sub.state)} {_tail(sub)}")
    return lines


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "hxn", ["help", "proxy", "no-states"], usage=usage,
                  status=1)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    proxy, no_states = False, False
    for opt, _ in opts:
        if opt in ("-h", "--help"):
            usage(prog, err)
            return 0
        if opt in ("-x", "--proxy"):
            proxy = True
        elif opt in ("-n", "--no-states"):
            no_states = True
    if rest:
        err.write(f"{prog}: unexpected argument {rest[0]!r}\n")
        usage(prog, err)
        return 1
    try:
        address = Address.unix(settings.proxy_serve_sock) if proxy else query_address(settings)
        client = QueryClient(address, timeout=settings.query_timeout)
        error, jobs = client.user_jobs(StatusFlag.NO_STATES if no_states else StatusFlag.NONE)
    except AddressError as e:
        err.write(f"{prog}: {ClientError(ErrorCode.EINVAL, str(e)).text()}\n")
        return 1
    except ClientError as e:
        err.write(f"{prog}: {e.text()}\n")
        return 1
    if error is not None:
        err.write(f"{prog}: {ClientError(*error).text()}\n")
        if not jobs:
            return 1
    if no_states:
        lines = [f"\t{job_id}" for job_id, _ in jobs]
    else:
        lines = job_lines(jobs)
    for line in lines:
        out.write(line + "\n")
    out.write(f"\nFound {len(jobs)} jobs\n")
    return 1 if error is not None else 0


def console() -> None:
    """The ``glite-lb-user_jobs`` console script."""
    run(main)


if __name__ == "__main__":
    console()
