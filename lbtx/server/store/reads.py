"""Reading jobs and events back, written once for both backends.

Every function here is a unit of :data:`~lbtx.server.store.sql.Work` that a
backend runs inside a read transaction. Job queries translate the conditions on
indexed columns into SQL (:mod:`~lbtx.server.store.conditions_sql`) and check
every condition again with :func:`lbtx.query.conditions.job_matches` on the
records read, so that the database only narrows what Python decides.

Reads cost few round trips: a record comes with its ACL and children aggregated
into columns of the same row (per dialect), and the reads of one job (status,
events, children, sequence code) and the ids of a user's jobs are one statement
each, which a backend may run without a transaction around it.
"""

from __future__ import annotations

import json

from lbtx import subject, ulm
from lbtx.acceptance import JobRecord
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, JobQuery, Op, QueryError, job_matches
from lbtx.server.store import rows
from lbtx.server.store.conditions_sql import where_clause
from lbtx.server.store.interfaces import StoredEvent, UnknownJobError
from lbtx.server.store.sql import POSTGRES, Dialect, Work
from lbtx.timeval import Timeval

__all__ = ["job_record", "job_events", "query_jobs", "user_jobs", "user_job_ids", "children",
           "last_seqcode", "records", "one_page"]

#: rows read per page when Python has the last word on a query
QUERY_PAGE = 500

#: per dialect: the ACL of job ``j`` ordered by position, and its children in link
#: order (only for a job with children), each aggregated into one column
_AGGREGATES = {
    "postgres": (
        "ARRAY(SELECT ARRAY[a.user_id, a.user_id_type, a.permission, a.permission_type] "
        "FROM acl a WHERE a.jobid = j.jobid ORDER BY a.pos)",
        "ARRAY(SELECT s.child FROM subjobs s WHERE s.parent = j.jobid ORDER BY s.pos)"),
    "sqlite": (
        "(SELECT json_group_array(json_array(user_id, user_id_type, permission, "
        "permission_type)) FROM (SELECT a.user_id, a.user_id_type, a.permission, "
        "a.permission_type FROM acl a WHERE a.jobid = j.jobid ORDER BY a.pos))",
        "(SELECT json_group_array(child) FROM (SELECT s.child FROM subjobs s "
        "WHERE s.parent = j.jobid ORDER BY s.pos))"),
}


def _record_columns(d: Dialect) -> str:
    """The select list of a complete record of job ``j``: RECORD_COLUMNS, its ACL
    and its children, so that one statement reads whole records."""
    acl, kids = _AGGREGATES[d.name]
    return (", ".join("j." + c for c in rows.RECORD_COLUMNS)
            + f", {acl}, CASE WHEN j.nchildren > 0 THEN {kids} END")


def _record_select(d: Dialect) -> str:
    return "SELECT " + _record_columns(d) + " FROM jobs j"


def _aggregate(value) -> list:
    """An aggregated column as a list (SQLite gives JSON text, PostgreSQL arrays)."""
    if value is None:
        return []
    if isinstance(value, str):
        return json.loads(value)
    return value


def _records_of(found: list[tuple]) -> list[JobRecord]:
    """Records from rows of :func:`_record_select` (RECORD_COLUMNS, ACL, children)."""
    n = len(rows.RECORD_COLUMNS)
    out = []
    for r in found:
        kids = _aggregate(r[n + 1]) if r[3] else ()
        out.append(rows.record_from_row(r[:n], _aggregate(r[n]), kids))
    return out


#: the plain ``jobs`` columns of a record, for callers that complete them with :func:`records`
_RECORD_SELECT = "SELECT " + ", ".join("j." + c for c in rows.RECORD_COLUMNS) + " FROM jobs j"


def records(d: Dialect, found: list[tuple]) -> Work:
    """Complete plain ``jobs`` rows (RECORD_COLUMNS order, as ``_RECORD_SELECT``
    reads them) with their ACL and children: two more statements at most (the
    reads here use :func:`_record_select`, which needs none)."""
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
    """The job's full record; :class:`UnknownJobError` if there is none. One statement."""
    found = yield d.select(_record_select(d) + " WHERE j.jobid = ?", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)
    return _records_of(found)[0]


def job_events(d: Dialect, job_id: JobId) -> Work:
    """The job's events in arrival order as :class:`StoredEvent`. One statement: a
    known job without events reads as one row of NULLs."""
    found = yield d.select("SELECT e.arrived_sec, e.arrived_usec, e.line, e.line_raw, e.seq "
                           "FROM jobs j LEFT JOIN events e ON e.jobid = j.jobid "
                           "WHERE j.jobid = ? ORDER BY e.seq", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)
    out = []
    for sec, usec, text, raw, seq in found:
        if seq is None:
            continue
        line = rows.line_text(text, raw)
        out.append(StoredEvent(Timeval(sec, usec), ulm.parse(line, require_user=True), line))
    return out


def _check_resolved(query: JobQuery) -> None:
    for ors in query:
        for c in ors:
            if c.attr == Attr.OWNER and c.value is None:
                raise QueryError("owner NULL must be resolved to the caller first")


def _page(exact: bool, limit: int | None) -> int:
    return limit if exact and limit is not None else QUERY_PAGE


def one_page(query: JobQuery, limit: int | None) -> bool:
    """Whether :func:`query_jobs` reads ``query`` in one statement: one of its
    disjunctions names fewer job ids (``jobid`` equality) than a page holds, so the
    first page is the last."""
    _, _, exact = where_clause(POSTGRES, query)
    page = _page(exact, limit)
    for ors in query:
        if ors and all(c.attr == Attr.JOBID and c.op == Op.EQUAL and isinstance(c.value, JobId)
                       for c in ors):
            if len({str(c.value) for c in ors}) < page:
                return True
    return False


def query_jobs(d: Dialect, query: JobQuery, limit: int | None) -> Work:
    """At most ``limit`` records matching ``query``, ordered by unique id."""
    _check_resolved(query)
    where, params, exact = where_clause(d, query)
    if limit is not None and limit <= 0:
        return []
    out: list[JobRecord] = []
    after: tuple | None = None
    page = _page(exact, limit)
    while True:
        clauses = list(where)
        args = list(params)
        if after is not None:
            clauses.append("(j.unique_id > ? OR (j.unique_id = ? AND j.jobid > ?))")
            args += [after[0], after[0], after[1]]
        text = _record_select(d)
        if clauses:
            text += " WHERE " + " AND ".join(clauses)
        text += f" ORDER BY j.unique_id, j.jobid LIMIT {int(page)}"
        found = yield d.select(text, args)
        for rec in _records_of(found):
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


def user_job_ids(d: Dialect, owner: str, limit: int | None) -> Work:
    """The ids of the jobs owned by ``owner`` (the jobs :func:`user_jobs` reads, in
    the same order), from the indexed owner key alone: no status is read. One
    statement."""
    if limit is not None and limit <= 0:
        return []
    text = "SELECT jobid FROM jobs WHERE owner_key = ? ORDER BY unique_id, jobid"
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    found = yield d.select(text, (subject.key(owner),))
    return [JobId.parse(r[0]) for r in found]


def children(d: Dialect, parent_id: JobId) -> Work:
    """The records of the jobs linked to ``parent_id`` as its children, in link
    order. One statement: a known parent without children reads as one row of
    NULLs (as does a link to a job that is not stored, which is skipped)."""
    found = yield d.select(
        "SELECT " + _record_columns(d) + " FROM jobs p LEFT JOIN subjobs s ON s.parent = p.jobid"
        " LEFT JOIN jobs j ON j.jobid = s.child WHERE p.jobid = ? ORDER BY s.pos",
        (str(parent_id),))
    if not found:
        raise UnknownJobError(parent_id)
    return _records_of([r for r in found if r[0] is not None])


def last_seqcode(d: Dialect, job_id: JobId) -> Work:
    """The sequence code the job's machine continues from, or None."""
    found = yield d.select("SELECT status FROM jobs WHERE jobid = ?", (str(job_id),))
    if not found:
        raise UnknownJobError(job_id)
    return (json.loads(found[0][0]).get("_internal") or {}).get("last_seqcode")
