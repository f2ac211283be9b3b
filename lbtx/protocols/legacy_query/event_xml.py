"""Events as the legacy query protocol shows them (formats.md §7.8, §7.10).

:func:`event_element` writes one ``<edg_wll_Event name="Type">`` element: the common
fields in the order ``timestamp, arrived, host, level, priority, jobId, seqcode,
user, source, src_instance``, then the type's own fields in definition order, each
named after the field. Unset values are left out. Enumerated fields are numeric,
sources (the ``logsrc`` type) are names, time points ``sec.usec``, tag lists
``name=value,...``.

:func:`history_json` is the ``history`` field of a job status: a JSON array with an
object per event, ``"type"`` first, then every field (enumerations and sources by
name, time points as ULM dates, unset values ``null``).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from lbtx.events import Event, is_unset
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.schema import HEADER, AttrSpec
from lbtx.timeval import Timeval

__all__ = ["event_element", "history_json", "event_json_object", "timeval_text",
           "taglist_text", "EVENT_FIELD_ORDER"]

#: the order of the common fields in an event element
EVENT_FIELD_ORDER = ("timestamp", "arrived", "host", "level", "priority", "jobId", "seqcode",
                     "user", "source", "src_instance")
_HEADER_BY_NAME = {a.name: a for a in HEADER}
_HEADER_ORDERED = tuple(_HEADER_BY_NAME[n] for n in EVENT_FIELD_ORDER)


def timeval_text(tv: Timeval) -> str:
    """``sec.usec`` with six microsecond digits."""
    return "%d.%06d" % (tv.sec, tv.usec)


def taglist_text(pairs) -> str:
    """A tag list as ``name=value,...``."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return ",".join(f"{k}={v}" for k, v in items)


def _xml_value(spec: AttrSpec, value: Any) -> str | None:
    """The element text of one event field, or None to leave it out."""
    if spec.py_name == "priority":
        return str(int(value)) if value is not None and value != -1 else None
    if is_unset(spec, value):
        if spec.type == "string" and value == "":
            return ""
        return None
    t = spec.type
    if t == "logsrc":
        return value.text
    if spec.enum is not None:
        return str(int(value))
    if t == "timeval":
        return timeval_text(value)
    if t in ("jobid", "notifid"):
        return str(value)
    if t == "taglist":
        return taglist_text(value)
    if t in ("double", "float"):
        return "%f" % value
    if t == "bool":
        return "1" if value else None
    return str(value)


def event_element(event: Event, indent: str = "      ") -> str:
    """One ``<edg_wll_Event>`` element, CRLF-terminated."""
    parts = [f'{indent}<edg_wll_Event name="{escape(event.type_name)}">\r\n']
    for spec in _HEADER_ORDERED + tuple(event.attr_specs):
        text = _xml_value(spec, getattr(event, spec.py_name))
        if text is not None:
            parts.append(f"\t\t\t<{spec.name}>{escape(text)}</{spec.name}>\r\n")
    parts.append(f"{indent}</edg_wll_Event>\r\n")
    return "".join(parts)


def _json_value(spec: AttrSpec, value: Any) -> Any:
    if spec.type == "timeval":
        return None if is_unset(spec, value) else value.to_ulm()
    if value is None:
        return None
    if spec.enum is not None:
        return value.text if hasattr(value, "text") else int(value)
    if spec.type in ("jobid", "notifid"):
        return str(value)
    if spec.type == "taglist":
        return taglist_text(value)
    if spec.type == "bool":
        return bool(value)
    return value


def event_json_object(event: Event) -> dict[str, Any]:
    """One event as a JSON object: ``type``, the common fields, then its own."""
    out: dict[str, Any] = {"type": event.type_name}
    for spec in _HEADER_ORDERED + tuple(event.attr_specs):
        out[spec.name] = _json_value(spec, getattr(event, spec.py_name))
    return out


def history_json(events: Iterable[Event]) -> str:
    """The ``history`` text of a job status (``[]`` for no events)."""
    return json.dumps([event_json_object(e) for e in events], ensure_ascii=False)
