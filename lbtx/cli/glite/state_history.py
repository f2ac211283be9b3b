"""``glite-lb-state_history``: the job's state after each of its events (cli.md §3.6).

::

    glite-lb-state_history [-f field1,field2,...] jobid

Fetches the job's events, sorts them by sequence code, replays them through the
job's state machine (the same :mod:`lbtx.machines` the server runs) and prints
one line per event and nothing else::

    <EventName>\\t<jobid>\\t<State>\\t<field>\\t<field>...\\t

Fields are status field names (``network_server``, ``destination``,
``done_code``, ``reason``, ``owner`` ...; case-insensitive) or ``jdl:Attr`` for an
attribute of the job's JDL; the default list is
``network_server,jdl:VirtualOrganisation,destination,done_code,reason``. Unset
texts print ``(null)``, numbers and coded values as numbers (``done_code`` unset
is ``-1``). Errors: ``<prog>: <strerror> (<desc>)`` on stderr, exit 1.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, TextIO

from lbtx import seqcode
from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import AddressError, Settings, query_address
from lbtx.cli.jdl import jdl_attribute
from lbtx.cli.program import begin, run
from lbtx.cli.query_client import QueryClient
from lbtx.cli.status_text import NULL, state_name
from lbtx.errors import LBFormatError
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.machines import machine_for
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.schema import STATUS_FIELDS, FieldSpec
from lbtx.status import JobStatus
from lbtx.timeval import NULL_TIME

__all__ = ["main", "DEFAULT_FIELDS", "history", "sort_events", "field_getter"]

DEFAULT_FIELDS = "network_server,jdl:VirtualOrganisation,destination,done_code,reason"
_FIELDS = {}
for _f in STATUS_FIELDS:
    _FIELDS.setdefault(_f.name.casefold(), _f)
    _FIELDS.setdefault(_f.py_name.casefold(), _f)


def usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-f field1,field2,...] job_id\n"
              f"  -f FIELDS  status fields to print (default {DEFAULT_FIELDS});\n"
              "             jdl:Attr prints an attribute of the job's JDL\n")


def _format(f: FieldSpec, value: Any) -> str:
    if f.type == "timeval":
        tv = value or NULL_TIME
        return f"{tv.sec}.{tv.usec:06d}"
    if f.name == "state":
        return state_name(value)
    if f.type in ("int", "bool"):
        if value is None:
            return str(f.null if isinstance(f.null, int) else -1)
        return str(int(value))
    if value is None:
        return NULL
    if f.type in ("strlist", "intlist"):
        return ",".join(str(v) for v in value) if value else NULL
    if f.type == "taglist":
        items = value.items() if isinstance(value, dict) else value
        return ",".join(f"{n}={v}" for n, v in items) or NULL
    return str(value)


def field_getter(name: str) -> Callable[[JobStatus], str]:
    """What prints field ``name`` of a status; ValueError for an unknown field."""
    if name[:4].casefold() == "jdl:" and len(name) > 4:
        attr = name[4:]

        def jdl(st: JobStatus) -> str:
            value = jdl_attribute(st.jdl, attr)
            return NULL if value is None else value
        return jdl
    f = _FIELDS.get(name.strip().casefold())
    if f is None or f.type in ("stslist", "cclassad"):
        raise ValueError(name)
    return lambda st: _format(f, getattr(st, f.py_name))


def sort_events(events: Sequence[Event]) -> list[Event]:
    """Events in sequence-code order (stable; left as they are if the codes are
    not all of one sortable flavour)."""
    try:
        codes = [seqcode.parse(ev.seqcode or "") for ev in events]
    except LBFormatError:
        return list(events)
    if len({type(c) for c in codes}) > 1:
        return list(events)
    pairs = list(zip(codes, range(len(events))))
    if codes and isinstance(codes[0], seqcode.CondorSeqCode):
        def cmp(a, b):
            return seqcode.condor_compare(a[0], b[0]) or (a[1] > b[1]) - (a[1] < b[1])
        pairs.sort(key=functools.cmp_to_key(cmp))
    else:
        pairs.sort()
    return [events[i] for _, i in pairs]


def history(job_id: JobId, events: Sequence[Event]) -> list[tuple[Event, JobStatus]]:
    """Each event with the job's status after it, replayed from an empty status."""
    status = JobStatus(job_id=job_id, owner=events[0].user if events else None)
    out = []
    for ev in events:
        if ev.type_name != "ChangeACL":
            jobtype = status.jobtype
            if jobtype is None and ev.type_name == "RegJob":
                jobtype = REGJOB_TO_STATUS.get(ev.jobtype)
            status = machine_for(jobtype).apply(status, ev).status
        out.append((ev, status))
    return out


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "f:h", ["fields=", "help"], usage=usage,
                  status=1)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    fields = DEFAULT_FIELDS
    for opt, value in opts:
        if opt in ("-h", "--help"):
            usage(prog, err)
            return 1
        fields = value
    if len(rest) != 1:
        usage(prog, err)
        return 1
    try:
        getters = [field_getter(n) for n in fields.split(",") if n.strip()]
    except ValueError as e:
        err.write(f"{prog}: {e.args[0]}: unknown field\n")
        return 1
    try:
        job_id = JobId.parse(rest[0])
    except LBFormatError:
        err.write(f"{prog}: {rest[0]}: can't parse job ID\n")
        return 1
    try:
        address = query_address(settings, job_id)
        events = QueryClient(address, timeout=settings.query_timeout).job_log(job_id)
    except AddressError as e:
        err.write(f"{prog}: {ClientError(ErrorCode.EINVAL, str(e)).text()}\n")
        return 1
    except ClientError as e:
        err.write(f"{prog}: {e.text()}\n")
        return 1
    for ev, st in history(job_id, sort_events(events)):
        values = "".join(f"{g(st)}\t" for g in getters)
        out.write(f"{ev.type_name}\t{job_id}\t{state_name(st.state)}\t{values}\n")
    return 0


def console() -> None:
    """The ``glite-lb-state_history`` console script."""
    run(main)


if __name__ == "__main__":
    console()
