"""Event conditions (formats.md §8.1, "event" column) evaluated on stored events,
and the order of event query results.

An event query is a conjunction of disjunctions of :class:`~lbtx.query.conditions.Condition`
on event attributes; unlike job disjunctions, one disjunction may mix attributes.
Values compare as the legacy server compares them:

* ``type`` - the event code (:data:`lbtx.events.Event.code`);
* ``source`` - a :class:`~lbtx.schema.Source`; ``level`` - the level number;
* ``host``, ``instance`` - the host and ``src_instance`` text;
* ``time`` (and ``stateentertime``) - the event timestamp: ``equal``/``unequal``
  compare it with the whole second given (microseconds 0, as clients send them),
  ``less``/``greater``/``within`` compare its seconds;
* ``usertag`` - ``UserTag`` events with that tag name (folded to lower case) and
  value; an event of another type has no value, which only ``unequal`` matches.

``changed`` is meaningful only to notifications and matches every event here.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Sequence

from lbtx import seqcode
from lbtx.errors import LBFormatError
from lbtx.events import Event
from lbtx.query.conditions import Attr, Condition, Op, QueryError, compare

__all__ = ["event_condition_matches", "event_matches", "sort_events", "has_time_condition"]

_TIMES = frozenset({Attr.TIME, Attr.STATEENTERTIME})


def _value(ev: Event, c: Condition) -> Any:
    a = c.attr
    if a == Attr.EVENT_TYPE:
        return ev.code
    if a == Attr.SOURCE:
        return ev.source
    if a == Attr.LEVEL:
        return int(ev.level) if ev.level is not None else None
    if a == Attr.HOST:
        return ev.host
    if a == Attr.INSTANCE:
        return ev.src_instance or None
    if a == Attr.USERTAG:
        if ev.type_name != "UserTag" or (ev.name or "").lower() != c.name:
            return None
        return ev.value
    raise QueryError(f"{a.value} is not an event attribute")


def event_condition_matches(ev: Event, c: Condition) -> bool:
    """Evaluate one event condition on an event."""
    if c.attr in _TIMES:
        ts = ev.timestamp
        if ts is None:
            return c.op in (Op.UNEQUAL, Op.CHANGED)
        if c.op in (Op.EQUAL, Op.UNEQUAL):
            same = ts.sec == c.value and ts.usec == 0
            return same if c.op == Op.EQUAL else not same
        return compare(c.op, ts.sec, c.value, c.value2)
    return compare(c.op, _value(ev, c), c.value, c.value2)


def event_matches(ev: Event, query: Iterable[Iterable[Condition]]) -> bool:
    """Whether the event satisfies every disjunction of an event query."""
    return all(any(event_condition_matches(ev, c) for c in ors) for ors in query)


def has_time_condition(query: Iterable[Iterable[Condition]]) -> bool:
    """Whether an event query holds a ``time`` condition (that hits the event index, §8.4)."""
    return any(c.attr in _TIMES for ors in query for c in ors)


def _parsed(ev: Event):
    try:
        return seqcode.parse(ev.seqcode) if ev.seqcode else None
    except LBFormatError:
        return None


def sort_events(events: Sequence[Event]) -> list[Event]:
    """One job's events ordered by sequence code, then timestamp (§7.8).

    Codes of different flavours, or that do not parse (server-generated events),
    are ordered by timestamp; the sort is stable, so arrival order breaks ties.
    """
    keyed = [(_parsed(ev), ev) for ev in events]

    def cmp(a, b) -> int:
        (ca, ea), (cb, eb) = a, b
        if ca is not None and cb is not None and type(ca) is type(cb):
            order = seqcode.compare(ca, cb)
            if order:
                return order
        ta, tb = ea.timestamp, eb.timestamp
        if ta is None or tb is None:
            return 0
        return (ta > tb) - (ta < tb)

    return [ev for _, ev in sorted(keyed, key=functools.cmp_to_key(cmp))]
