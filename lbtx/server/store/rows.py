"""Job records and events as rows of the store's tables, and back.

The column lists here are the logical schema (:mod:`lbtx.server.store.schema`
creates the tables); both backends read and write rows in exactly these shapes:

* ``jobs``: one row per job, the status as JSON (with the machines' internal
  bookkeeping) plus a column for every indexed query attribute (formats.md §8.4);
* ``events``: one row per stored event, the ULM line verbatim plus the header
  fields, of which ``(jobid, type_code, source, host, ts_sec, ts_usec, level,
  seqcode)`` is the unique duplicate key (§6.6);
* ``acl``, ``user_tags``, ``subjobs``: the ACL entries, user tags and subjob links
  of a job.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from lbtx import subject
from lbtx.acceptance import JobRecord
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.server.store.status_cache import statuses
from lbtx.status import from_json, to_json
from lbtx.timeval import Timeval

__all__ = ["JOB_COLUMNS", "RECORD_COLUMNS", "EVENT_COLUMNS", "KEY_COLUMNS", "ACL_COLUMNS", "TAG_COLUMNS", "SUBJOB_COLUMNS",
           "job_row", "record_from_row", "event_row", "dedupe_key", "key_from_row",
           "acl_rows", "tag_rows", "strip_line", "clean", "line_columns", "line_text"]

JOB_COLUMNS = ("jobid", "unique_id", "owner", "owner_key", "parent_job", "state",
               "destination", "location", "network_server", "last_update_time",
               "state_enter_time", "nevents", "nchildren", "status")
#: the jobs columns a record is rebuilt from (the status JSON holds the rest)
RECORD_COLUMNS = ("jobid", "owner", "nevents", "nchildren", "status")
EVENT_COLUMNS = ("jobid", "seq", "type_code", "source", "host", "ts_sec", "ts_usec", "level",
                 "seqcode", "sender", "arrived_sec", "arrived_usec", "generated", "line",
                 "line_raw")
#: the events columns of the duplicate key, in key order (after jobid)
KEY_COLUMNS = ("type_code", "source", "host", "ts_sec", "ts_usec", "level", "seqcode")
ACL_COLUMNS = ("jobid", "pos", "user_id", "user_id_type", "permission", "permission_type")
TAG_COLUMNS = ("jobid", "name", "value")
SUBJOB_COLUMNS = ("parent", "child", "pos")

# ASCII JSON: text read with undecodable bytes (kept as surrogate escapes) survives
_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False).encode


def clean(text: str | None) -> str | None:
    """Text for an indexed column: undecodable bytes (surrogate escapes), which a
    database cannot hold as text, become U+FFFD. The ULM line and the status keep
    them exactly."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def line_columns(line: str) -> tuple[str | None, bytes | None]:
    """The ``(line, line_raw)`` columns of a ULM line (without its line feed): the
    text, or, when it holds undecodable bytes, its bytes as received."""
    if clean(line) is line:
        return line, None
    return None, line.encode("utf-8", "surrogateescape")


def line_text(line: str | None, raw) -> str:
    """The stored line back as text (undecodable bytes as surrogate escapes)."""
    return line if raw is None else bytes(raw).decode("utf-8", "surrogateescape")


def _seconds(t: Timeval) -> int | None:
    return t.sec if t is not None and t.sec else None


def job_row(rec: JobRecord, nchildren: int) -> tuple:
    """The ``jobs`` row of a record with ``nchildren`` children (in :data:`JOB_COLUMNS` order)."""
    st = rec.status
    parent = st.parent_job
    text = _dumps(to_json(st, internal=True))
    statuses.put(text, st)  # the next batch of this job reads it back
    return (
        clean(str(rec.job_id)), clean(rec.job_id.unique), clean(rec.owner),
        clean(subject.key(st.owner or "")), clean(str(parent)) if parent is not None else None,
        int(st.state) if st.state is not None else 0,
        clean(st.destination), clean(st.location), clean(st.network_server),
        _seconds(st.last_update_time), _seconds(st.state_enter_time),
        rec.nevents, nchildren, text,
    )


def record_from_row(row: tuple, acl: Iterable[tuple] = (), children: Iterable[str] | None = None
                    ) -> JobRecord:
    """Rebuild a record from a ``jobs`` row in :data:`RECORD_COLUMNS` order, its ACL
    rows ``(user_id, user_id_type, permission, permission_type)`` and child ids."""
    jobid, owner, nevents, _nchildren, status = row
    st = statuses.get(status)
    if st is None:
        st = from_json(json.loads(status))
        statuses.put(status, st, evict=False)
    rec = JobRecord(job_id=JobId.parse(jobid), owner=owner, status=st,
                    acl=[list(e) for e in acl], nevents=nevents)
    if children is not None:
        rec.children = {JobId.parse(c): None for c in children}
    return rec


def strip_line(line: str) -> str:
    """The record as stored: the line without its line feed."""
    return line[:-1] if line.endswith("\n") else line


def dedupe_key(job_id: JobId, key: tuple) -> tuple:
    """A duplicate key as :meth:`Event.dedupe_key` gives it, normalised to column
    values (``None`` host or code become ``""``, the timestamp two integers)."""
    code, source, host, ts, level, seqcode = key
    return (int(code), int(source), clean(host) or "", ts[0], ts[1], int(level),
            clean(seqcode) or "")


def key_from_row(row: tuple) -> tuple:
    """The normalised duplicate key of an ``events`` row in :data:`KEY_COLUMNS` order."""
    code, source, host, sec, usec, level, seqcode = row
    return (code, source, host or "", sec, usec, level, seqcode or "")


def event_row(job_id: JobId, seq: int, event: Event, line: str, generated: bool,
              arrived: Timeval) -> tuple:
    """The ``events`` row of a stored event (in :data:`EVENT_COLUMNS` order)."""
    ts = event.timestamp
    return (clean(str(job_id)), seq, event.code, int(event.source), clean(event.host) or "",
            ts.sec, ts.usec, int(event.level), clean(event.seqcode) or "", clean(event.user),
            arrived.sec, arrived.usec, bool(generated), *line_columns(line))


def acl_rows(job_id: JobId, acl: list[list[str]]) -> list[tuple]:
    text = clean(str(job_id))
    return [(text, i, *map(clean, entry)) for i, entry in enumerate(acl)]


def tag_rows(job_id: JobId, tags: dict[str, Any] | None) -> list[tuple]:
    text = clean(str(job_id))
    return [(text, clean(name), "" if value is None else clean(str(value)))
            for name, value in (tags or {}).items()]
