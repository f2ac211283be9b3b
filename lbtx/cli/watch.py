"""``lbtx watch``: follow jobs until each reaches a terminal state.

lbtx watch [--server HOST:PORT] [--timeout S] JOBID...

Registers one pull notification for the jobs (a job list, formats.md §9.1), prints
each job's current state, then one line per state change as the server notifies
it::

    <jobid>\\t<State>\\t<changed fields, comma separated>

until every job is in a terminal state (Done, Aborted, Cancelled, Cleared,
Purged), then drops the registration and exits 0. The server is ``--server``,
else ``GLITE_WMS_NOTIF_SERVER``, else the server in the first job id. Exit 1 for
an error (message on stderr), 2 when ``--timeout`` passed first.
"""

from __future__ import annotations

import sys
import time

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import AddressError, parse_server, setting
from lbtx.cli.notify_client import NotifyClient
from lbtx.cli.notify_receive import Receiver
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op

__all__ = ["add_parser", "run", "FINAL_STATES"]

#: states after which a job is not followed any more
FINAL_STATES = frozenset({"Done", "Aborted", "Cancelled", "Cleared", "Purged"})
_VALIDITY = 24 * 3600


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="follow jobs until they reach a terminal state",
                       description=__doc__.split("\n\n")[2])
    p.add_argument("--server", help="host:port of the server's query port "
                                    "(default: GLITE_WMS_NOTIF_SERVER, else the job's server)")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="give up after this many seconds (0: never) [0]")
    p.add_argument("jobs", nargs="+", metavar="JOBID", help="job ids to follow")
    p.set_defaults(run=run)


def _line(doc: dict, fields=None) -> str:
    status = doc.get("status") or {}
    changed = ",".join(str(c) for c in doc.get("changed") or ())
    return f"{doc.get('jobid')}\t{status.get('state')}\t{changed}"


def run(args, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        jobs = [JobId.parse(text) for text in args.jobs]
    except (LBFormatError, ValueError) as e:
        err.write(f"lbtx watch: bad job id: {e}\n")
        return 1
    try:
        server = args.server or setting("NOTIF_SERVER") or f"{jobs[0].host}:{jobs[0].port}"
        client = NotifyClient(parse_server(server))
    except AddressError as e:
        err.write(f"lbtx watch: {e}\n")
        return 1
    conditions = (tuple(Condition(Attr.JOBID, Op.EQUAL, j) for j in jobs),)
    try:
        reg = client.new(conditions=conditions, validity=_VALIDITY)
    except ClientError as e:
        err.write(f"lbtx watch: {e.text()}\n")
        return 1
    notif_id = reg["id"]
    waiting = {str(j) for j in jobs}
    try:
        # the current states, after registering so that no change falls in between
        for job in jobs:
            try:
                state = client.job(str(job)).get("state")
            except ClientError as e:
                err.write(f"lbtx watch: {job}: {e.text()}\n")
                continue
            out.write(f"{job}\t{state}\t\n")
            if state in FINAL_STATES:
                waiting.discard(str(job))
        out.flush()

        def seen(doc: dict) -> bool:
            if (doc.get("status") or {}).get("state") in FINAL_STATES:
                waiting.discard(str(doc.get("jobid")))
            return not waiting

        receiver = Receiver([notif_id], client_of=lambda _: client, out=out, err=err,
                            fields=None, bind=False, line=_line, on_message=seen,
                            report_validity=False)
        deadline = time.monotonic() + (args.timeout if args.timeout > 0 else 10 * 365 * 86400)
        if waiting:
            receiver.run(deadline)
        if waiting:
            err.write(f"lbtx watch: gave up with {len(waiting)} job(s) still going\n")
            return 2
        return 0
    except ClientError as e:
        err.write(f"lbtx watch: {e.text()}\n")
        return 1
    finally:
        try:
            client.drop(notif_id)
        except ClientError as e:
            err.write(f"lbtx watch: dropping {notif_id}: {e.text()}\n")
