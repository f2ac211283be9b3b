"""``lbtx status``, ``lbtx events``, ``lbtx jobs``: the consumer queries, readable.

::

    lbtx status [--json] [--server HOST:PORT] [--timeout S] JOBID...
    lbtx events [--json] [--server HOST:PORT] [--timeout S] JOBID...
    lbtx jobs   [--json] [--server HOST:PORT] [--timeout S] [--owner ID]

The same operations as ``glite-lb-job_status``, ``glite-lb-job_log`` and
``glite-lb-user_jobs``, over the same client (:mod:`lbtx.cli.query_client`), with
tables for people and ``--json`` for programs: one JSON object per line, a status
with the keys of :func:`lbtx.status.to_json`, an event with its header fields and
``attrs``. The server is the one in each job id, or ``--server`` /
``GLITE_WMS_QUERY_SERVER`` (which ``lbtx jobs`` needs); timeouts default to
``GLITE_WMS_QUERY_TIMEOUT``. ``--owner`` defaults to the caller as the server
knows it.

Errors go to stderr as ``lbtx <command>: [<jobid>: ]<strerror> (<desc>)``; the
exit status is 1 if any query failed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterable, Sequence

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import AddressError, Settings, query_address
from lbtx.cli.query_client import QueryClient
from lbtx.cli.replay import event_attrs_json
from lbtx.errors import LBFormatError
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.messages import StatusFlag
from lbtx.status import JobStatus, to_json
from lbtx.timeval import NULL_TIME

__all__ = ["add_parsers", "status_table", "events_table", "event_json"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--server", metavar="HOST:PORT",
                   help="server to ask (default: the job id's, or GLITE_WMS_QUERY_SERVER)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="seconds per query (default GLITE_WMS_QUERY_TIMEOUT or 120)")


def add_parsers(sub) -> None:
    p = sub.add_parser("status", help="job states from a server",
                       description="Print the current state of jobs.")
    _common(p)
    p.add_argument("jobs", nargs="+", metavar="JOBID")
    p.set_defaults(run=run_status)
    p = sub.add_parser("events", help="job events from a server",
                       description="Print the events of jobs, in the server's order.")
    _common(p)
    p.add_argument("jobs", nargs="+", metavar="JOBID")
    p.set_defaults(run=run_events)
    p = sub.add_parser("jobs", help="a user's jobs from a server",
                       description="Print the jobs of a user (default: the caller).")
    _common(p)
    p.add_argument("--owner", metavar="ID", help="the owner's identity (default: the caller)")
    p.set_defaults(run=run_jobs)


# --- formatting -------------------------------------------------------------------

def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _dash(value) -> str:
    return "-" if value is None or value == "" else str(value)


def status_table(statuses: Iterable[JobStatus]) -> str:
    """JOBID, TYPE, STATE, DONE, DESTINATION, LAST UPDATE per job."""
    rows = [("JOBID", "TYPE", "STATE", "DONE", "DESTINATION", "LAST UPDATE")]
    for st in statuses:
        rows.append((
            _dash(st.job_id),
            st.jobtype.text if st.jobtype is not None else "-",
            st.state.text if st.state is not None else "-",
            st.done_code.name if st.done_code is not None else "-",
            _dash(st.destination),
            st.last_update_time.to_iso() if st.last_update_time != NULL_TIME else "-",
        ))
    return _table(rows)


def _details(ev: Event) -> str:
    parts = []
    for name, value in event_attrs_json(ev).items():
        if value is None or value == "" or value == {} or value == "UNDEFINED":
            continue
        parts.append(f"{name}={value}")
    return " ".join(parts)


def events_table(events: Iterable[Event], with_job: bool) -> str:
    """TIME, [JOBID,] SOURCE, EVENT, SEQCODE, DETAILS per event."""
    head = ("TIME",) + (("JOBID",) if with_job else ()) + ("SOURCE", "EVENT", "SEQCODE",
                                                           "DETAILS")
    rows = [head]
    for ev in events:
        rows.append((ev.timestamp.to_iso(),) + ((str(ev.job_id),) if with_job else ())
                    + (ev.source.text, ev.type_name, ev.seqcode or "-", _details(ev)))
    return _table(rows)


def event_json(ev: Event) -> dict:
    """An event as JSON: header fields, then ``attrs`` (as ``lbtx replay --trace``)."""
    return {
        "jobid": str(ev.job_id) if ev.job_id is not None else None,
        "event": ev.type_name,
        "timestamp": ev.timestamp.to_iso(),
        "arrived": ev.arrived.to_iso() if ev.arrived not in (None, NULL_TIME) else None,
        "host": ev.host,
        "level": ev.level.name,
        "source": ev.source.text,
        "src_instance": ev.src_instance,
        "seqcode": ev.seqcode,
        "user": ev.user,
        "attrs": event_attrs_json(ev),
    }


def _emit_json(out, objects) -> None:
    for obj in objects:
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")


# --- commands ---------------------------------------------------------------------

def _settings(args) -> tuple[Settings, float]:
    settings = Settings.from_env()
    timeout = args.timeout if args.timeout and args.timeout > 0 else settings.query_timeout
    return settings, timeout


def _fail(command: str, e: Exception, job: str | None = None) -> None:
    if isinstance(e, AddressError):
        e = ClientError(ErrorCode.EINVAL, str(e))
    where = f"{job}: " if job else ""
    text = e.text() if isinstance(e, ClientError) else str(e)
    print(f"lbtx {command}: {where}{text}", file=sys.stderr)


def _per_job(args, command, fetch):
    """``fetch(client, job_id)`` for every job argument: the results and the status."""
    settings, timeout = _settings(args)
    results, status = [], 0
    for text in args.jobs:
        try:
            job_id = JobId.parse(text)
        except LBFormatError as e:
            _fail(command, ClientError(ErrorCode.EINVAL, e.reason), text)
            status = 1
            continue
        try:
            address = query_address(settings, job_id, args.server)
            results.append(fetch(QueryClient(address, timeout=timeout), job_id))
        except (ClientError, AddressError) as e:
            _fail(command, e, text)
            status = 1
    return results, status


def run_status(args) -> int:
    views, status = _per_job(args, "status",
                             lambda c, j: c.job_status(j, StatusFlag.CLASSADS | StatusFlag.CHILDREN))
    statuses = [v.status for v in views]
    if args.json:
        _emit_json(sys.stdout, (to_json(st) for st in statuses))
    elif statuses:
        sys.stdout.write(status_table(statuses))
    return status


def run_events(args) -> int:
    lists, status = _per_job(args, "events", lambda c, j: c.job_log(j))
    events = [ev for evs in lists for ev in evs]
    if args.json:
        _emit_json(sys.stdout, (event_json(ev) for ev in events))
    elif events:
        sys.stdout.write(events_table(events, with_job=len(args.jobs) > 1))
    return status


def run_jobs(args) -> int:
    settings, timeout = _settings(args)
    try:
        client = QueryClient(query_address(settings, server=args.server), timeout=timeout)
        error, jobs = client.user_jobs(StatusFlag.NONE, owner=args.owner)
    except (ClientError, AddressError) as e:
        _fail("jobs", e)
        return 1
    statuses = [view.status for _, view in jobs if view is not None]
    if args.json:
        _emit_json(sys.stdout, (to_json(st) for st in statuses))
    elif statuses:
        sys.stdout.write(status_table(statuses))
    if error is not None:
        _fail("jobs", ClientError(*error))
        return 1
    return 0
