"""The lines ``glite-lb-notify receive`` prints (cli.md §3.9), and its time format.

One line per notification, TAB separated and ending with a TAB::

    <jobid>\\t<State>\\t<field value>\\t<field value>...\\t

Field names are status field names matched case-insensitively, or ``jdl:Attr``
(a JDL attribute). Strings print ``(null)`` when empty, newlines and tabs as
``\\n`` and ``\\t``; integers (enumerations by their number) and booleans as
decimal numbers; times as ``'YYYY-MM-DD hh:mm:ss UTC'``; lists comma separated.
"""

from __future__ import annotations

import time
from typing import Any

from lbtx.cli.jdl import jdl_attribute
from lbtx.cli.status_text import NULL, state_name
from lbtx.schema import STATUS_FIELDS
from lbtx.status import from_json

__all__ = ["FieldError", "parse_fields", "notification_line", "utc_text", "DEFAULT_FIELDS"]

DEFAULT_FIELDS = "owner"
_BY_NAME = {f.name.lower(): f for f in STATUS_FIELDS}
_JDL = "jdl:"


class FieldError(ValueError):
    """A field name that is no status field (``name``)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def utc_text(epoch: int | float) -> str:
    """``'YYYY-MM-DD hh:mm:ss UTC'`` (with the quotes)."""
    return time.strftime("'%Y-%m-%d %H:%M:%S UTC'", time.gmtime(int(epoch)))


def parse_fields(text: str) -> list:
    """The ``-f`` list: field specs (``FieldError`` for an unknown name)."""
    out = []
    for name in text.split(","):
        name = name.strip()
        if not name:
            continue
        if name.lower().startswith(_JDL) and len(name) > len(_JDL):
            out.append(("jdl", name[len(_JDL):]))
            continue
        spec = _BY_NAME.get(name.lower())
        if spec is None:
            raise FieldError(name)
        out.append(("field", spec))
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _value(spec, value: Any) -> str:
    t = spec.type
    if t == "timeval":
        sec = getattr(value, "sec", 0) if value is not None else 0
        return utc_text(sec) if sec else NULL
    if t in ("int", "bool"):
        return str(int(value)) if value is not None else "0"
    if value is None or value == "" or value == () or value == []:
        return NULL
    if t == "string":
        return _escape(str(value))
    if t == "jobid":
        return str(value)
    if isinstance(value, dict):
        return _escape(",".join(f"{k}={v}" for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return _escape(",".join("=".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                                for v in value))
    return _escape(str(value))


def notification_line(document: dict, fields: list) -> str:
    """The line of one message document (see the module doc)."""
    status_doc = document.get("status") or {}
    status = from_json(status_doc)
    job_id = document.get("jobid") or status_doc.get("jobId") or NULL
    parts = [str(job_id), state_name(status.state)]
    for kind, spec in fields:
        if kind == "jdl":
            value = jdl_attribute(status.jdl, spec)
            parts.append(NULL if value is None else _escape(value))
        else:
            parts.append(_value(spec, getattr(status, spec.py_name, None)))
    return "\t".join(parts) + "\t"
