"""The rule that a job query must hit an index (formats.md §8.4).

To prevent full scans, a job query (and the job part of an event query) must hit
an index, else the server answers ``EDG_WLL_ERROR_NOINDEX``:

* a ``jobid`` or ``parent_job`` condition anywhere always suffices;
* an index suffices if each of its columns is the **first** condition of some
  disjunction (same attribute; same tag name or state where there is one);
* for event queries any event ``time`` condition also suffices.

The indices are those the job store names
(:attr:`lbtx.server.store.interfaces.IJobStore.indexed_attributes`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from lbtx.query.conditions import INDEXED_ALWAYS, Attr, Condition
from lbtx.query.events import has_time_condition

__all__ = ["Index", "single_column_indexes", "hits_index"]

#: the columns of one index: ``(attribute, tag/state name or None)`` each
Index = tuple[tuple[Attr, "str | None"], ...]


def single_column_indexes(columns: Iterable[tuple[Attr, str | None]]) -> tuple[Index, ...]:
    """One single-column index per ``(attribute, name)`` a store names."""
    return tuple(((attr, name),) for attr, name in columns)


def hits_index(query: Iterable[Iterable[Condition]], indexes: Sequence[Index],
               event_query: Iterable[Iterable[Condition]] = ()) -> bool:
    """Whether a job query (with the event part of an event query) hits an index."""
    query = [tuple(ors) for ors in query]
    if any(c.attr in INDEXED_ALWAYS for ors in query for c in ors):
        return True
    if has_time_condition(event_query):
        return True
    firsts = {(ors[0].attr, ors[0].name) for ors in query if ors}
    return any(all(column in firsts for column in index) for index in indexes)
