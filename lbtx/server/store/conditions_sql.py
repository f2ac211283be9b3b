"""Job query conditions on indexed columns, as SQL (formats.md §8.4).

:func:`where_clause` turns every disjunction whose conditions all bear on an
indexed column of ``jobs`` (or, for ``usertag`` equality, on ``user_tags``) into
an SQL condition with the same meaning as
:func:`lbtx.query.conditions.condition_matches`, including its treatment of unset
values: an unset attribute matches only ``unequal``. Disjunctions it cannot
translate are left to Python; the caller evaluates the whole query on the records
read anyway.
"""

from __future__ import annotations

from typing import Any

from lbtx import subject
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, JobQuery, Op
from lbtx.schema import JobState
from lbtx.server.store.sql import Dialect

__all__ = ["where_clause", "INDEXED_COLUMNS", "INDEXED_ATTRIBUTES"]

#: attribute -> (column, kind); kinds say which values and operators translate
INDEXED_COLUMNS = {
    Attr.JOBID: ("j.jobid", "jobid"),
    Attr.PARENT: ("j.parent_job", "jobid"),
    Attr.OWNER: ("j.owner_key", "owner"),
    Attr.STATUS: ("j.state", "state"),
    Attr.DESTINATION: ("j.destination", "text"),
    Attr.LOCATION: ("j.location", "text"),
    Attr.NETWORK_SERVER: ("j.network_server", "text"),
    Attr.LASTUPDATETIME: ("j.last_update_time", "time"),
    Attr.STATEENTERTIME: ("j.state_enter_time", "time"),
}

#: the single-column indices a query can hit (formats.md §8.4, as the legacy
#: indexedAttrs answer lists them: ``(attribute, tag/state name or None)``); jobid
#: and parent_job always count. Conditions on ``status`` and ``usertag`` equality
#: are evaluated by the database as well, but are not indices in the §8.4 sense.
INDEXED_ATTRIBUTES = ((Attr.OWNER, None), (Attr.DESTINATION, None), (Attr.LOCATION, None),
                      (Attr.NETWORK_SERVER, None), (Attr.STATEENTERTIME, None),
                      (Attr.LASTUPDATETIME, None))

_ORDERED = {Op.EQUAL: "=", Op.LESS: "<", Op.GREATER: ">"}


def _value(kind: str, value: Any) -> Any:
    """The column value for a condition value, or ``...`` when it does not translate."""
    if kind == "jobid":
        return str(value) if isinstance(value, JobId) else ...
    if kind == "owner":
        return subject.key(value) if isinstance(value, str) else ...
    if kind == "state":
        return int(value) if isinstance(value, JobState) else ...
    if kind == "text":
        return value if isinstance(value, str) else ...
    if kind == "time":
        return value if isinstance(value, int) and not isinstance(value, bool) else ...
    return ...


def _condition(c: Condition) -> tuple[str, list] | None:
    if c.attr == Attr.USERTAG:
        if c.op != Op.EQUAL or not isinstance(c.value, str):
            return None
        return ("EXISTS (SELECT 1 FROM user_tags t WHERE t.jobid = j.jobid AND t.name = ? "
                "AND t.value = ?)", [c.name, c.value])
    spec = INDEXED_COLUMNS.get(c.attr)
    if spec is None:
        return None
    column, kind = spec
    value = _value(kind, c.value)
    if value is ...:
        return None
    if c.op == Op.UNEQUAL:
        return f"({column} IS NULL OR {column} <> ?)", [value]
    if c.op in _ORDERED:
        if kind in ("owner", "text") and c.op != Op.EQUAL:
            return None
        return f"{column} {_ORDERED[c.op]} ?", [value]
    if c.op == Op.WITHIN and kind in ("jobid", "state", "time"):
        high = _value(kind, c.value2)
        if high is ...:
            return None
        return f"{column} BETWEEN ? AND ?", [value, high]
    return None  # CHANGED (always true in queries) and the rest: Python decides


def where_clause(d: Dialect, query: JobQuery) -> tuple[list[str], list, bool]:
    """``(clauses, parameters, exact)``: SQL conditions to AND together, their
    parameters, and whether they express the whole query (so a LIMIT in SQL is
    the final one)."""
    clauses: list[str] = []
    params: list = []
    exact = True
    for ors in query:
        parts = [_condition(c) for c in ors]
        if any(p is None for p in parts):
            exact = False
            continue
        clauses.append("(" + " OR ".join(p[0] for p in parts) + ")")
        for p in parts:
            params.extend(p[1])
    return clauses, params, exact
