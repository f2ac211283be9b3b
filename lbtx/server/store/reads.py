"""Reading jobs and events back, written once for both backends.

Every function here is a unit of :data:`~lbtx.server.store.sql.Work` that a
backend runs inside a read transaction. Job queries translate the conditions on
indexed columns into SQL (:mod:`~lbtx.server.store.conditions_sql`) and check
every condition again with :func:`lbtx.query.conditions.job_matches` on the
records read, so that the database only narrows what Python decides.
"""

from __future__ import annotations

import json

from lbtx import ulm
from lbtx.acceptance import JobRecord
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, JobQuery, Op, QueryError, job_matches
from lbtx.server.store import rows
from lbtx.server.store.conditions_sql import where_clause
from lbtx.server.store.interfaces import StoredEvent, UnknownJobError
from lbtx.server.store.sql import Dialect, Work
from lbtx.timeval import Timeval

__all__ = ["job_record", "job_events", "query_jobs", "user_jobs", "children", "last_seqcode"]

#: rows read per page when Python has the last word on a query
QUERY_PAGE = 500

_RECORD_SELECT = "SELECT " + ", ".join("j." + c for c in rows.RECORD_COLUMNS) + " FROM jobs j"


def records(d: Dialect, found: list[tuple]) -> Work:
    """Complete ``jobs`` rows (RECORD_COLUMNS order) with their ACL and children."""
    if not found:
        return []
    ids = d.list_param(r[0] for r in found)
    acl_rows = yield d.select(
        "SELECT jobid, user_id, user_id_type, permission, permission_type FROM acl WHERE "
        + d.in_list("jobid") + " ORDER BY jobid, pos", (ids,))
    acl: dict[str, list] = {}
    for jobid, *entry in acl_rows:
        acl.setdefault(jobid, []).append(entry)
    kids: dict[str, list] = {}
    parents = [r[0] for r in found if r[3]]
    if parents:
        child_rows = yield d.select(
            "SELECT parent, child FROM subjobs WHERE " + d.in_list("parent")
            + " ORDER BY parent, pos", (d.list_param(parents),))
        for parent, child in child_rows:
            kids.setdefault(parent, []).append(child)
    return [rows.record_from_row(r, acl.get(r[0], ()), kids.get(r[0], ())) for r in found]


def job_record(d: Dialect, job_id: JobId) -> Work:
    """The job's full record; :class:`UnknownJobError` if there is none."""
    found = yield d.select(_RECORD_SELECT + " WHERE j.jobid = ?", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)
    return (yield from records(d, found))[0]


def _exists(d: Dialect, job_id: JobId) -> Work:
    found = yield d.select("SELECT 1 FROM jobs WHERE jobid = ?", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)


def job_events(d: Dialect, job_id: JobId) -> Work:
    """The job's events in arrival order as :class:`StoredEvent`."""
    yield from _exists(d, job_id)
    found = yield d.select("SELECT arrived_sec, arrived_usec, line, line_raw FROM events "
                           "WHERE jobid = ? ORDER BY seq", (str(job_id),))
    out = []
    for sec, usec, text, raw in found:
        line = rows.line_text(text, raw)
        out.append(StoredEvent(Timeval(sec, usec), ulm.parse(line, require_user=True), line))
    return out


def _check_resolved(query: JobQuery) -> None:
    for ors in query:
        for c in ors:
            if c.attr == Attr.OWNER and c.value is None:
                raise QueryError("owner NULL must be resolved to the caller first")


def query_jobs(d: Dialect, query: JobQuery, limit: int | None) -> Work:
    """At most ``limit`` records matching ``query``, ordered by unique id."""
    _check_resolved(query)
    where, params, exact = where_clause(d, query)
    if limit is not None and limit <= 0:
        return []
    out: list[JobRecord] = []
    after: tuple | None = None
    page = limit if exact and limit is not None else QUERY_PAGE
    while True:
        clauses = list(where)
        args = list(params)
        if after is not None:
            clauses.append("(j.unique_id > ? OR (j.unique_id = ? AND j.jobid > ?))")
            args += [after[0], after[0], after[1]]
        text = _RECORD_SELECT
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        text += f" ORDER BY j.unique_id, j.jobid LIMIT {int(page)}"
        found = yield d.select(text, args)
        for rec in (yield from records(d, found)):
            if job_matches(rec.status, query):
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    return out
        if len(found) < page:
            return out
        last = JobId.parse(found[-1][0])
        after = (last.unique, str(last))


def user_jobs(d: Dialect, owner: str, limit: int | None) -> Work:
    """The jobs owned by ``owner``."""
    return (yield from query_jobs(d, ((Condition(Attr.OWNER, Op.EQUAL, owner),),), limit))


def children(d: Dialect, parent_id: JobId) -> Work:
    """The records of the jobs linked to ``parent_id`` as its children, in link order."""
    yield from _exists(d, parent_id)
    found = yield d.select(_RECORD_SELECT + " JOIN subjobs s ON s.child = j.jobid "
                           "WHERE s.parent = ? ORDER BY s.pos", (str(parent_id),))
    return (yield from records(d, found))


def last_seqcode(d: Dialect, job_id: JobId) -> Work:
    """The sequence code the job's machine continues from, or None."""
    found = yield d.select("SELECT status FROM jobs WHERE jobid = ?", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)
    return (json.loads(found[0][0]).get("_internal") or {}).get("last_seqcode")
