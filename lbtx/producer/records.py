"""Events a producer logs: built from the schema, validated before they leave.

:func:`make_record` builds an event of any type of the schema from Python values
(:func:`lbtx.events.make_event`); :func:`record_from_text` from attribute texts
as a command line gives them (``node=wn01``), read through the ULM parser so that
the same conversions and checks apply. Either way the result is validated
(``DG.USER`` may be missing: the logger adds it) and formatted as one ULM line.
"""

from __future__ import annotations

import re
import socket
from typing import Mapping

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import EVENTS_BY_NAME, Level, Source
from lbtx.timeval import Timeval

__all__ = ["make_record", "record_from_text", "source_of"]


def source_of(source) -> Source:
    """A :class:`Source` from itself or its name (``UserInterface``, ``LRMS`` ...)."""
    if isinstance(source, Source):
        return source
    found = Source.from_text(str(source))
    if found is None or found is Source.NONE:
        raise LBFormatError(f"unknown source {source!r}", code="BAD_VALUE")
    return found


def _event_spec(type_name: str):
    spec = EVENTS_BY_NAME.get(type_name)
    if spec is None:
        lowered = {name.lower(): s for name, s in EVENTS_BY_NAME.items()}
        spec = lowered.get(type_name.lower())
    if spec is None:
        raise LBFormatError(f"unknown event type {type_name!r}", code="EVENT_UNDEF")
    return spec


def _header(job_id, source, seqcode, user, host, src_instance, priority, timestamp,
            level=Level.SYSTEM) -> dict:
    return dict(timestamp=timestamp or Timeval.now(), host=socket.getfqdn() if host is None else host,
                level=level, priority=priority, source=source_of(source),
                src_instance=src_instance or None,
                job_id=job_id if isinstance(job_id, JobId) else JobId.parse(str(job_id)),
                seqcode=seqcode, user=user)


def make_record(type_name: str, job_id, source, seqcode: str, *, user: str | None = None,
                host: str | None = None, src_instance: str | None = None, priority: int = 0,
                timestamp: Timeval | None = None, level=Level.SYSTEM, **attrs) -> str:
    """One validated ULM line (without LF) of event ``type_name`` with ``attrs``
    given by their Python names and values; raises LBFormatError or TypeError."""
    spec = _event_spec(type_name)
    ev = make_event(spec.name, **_header(job_id, source, seqcode, user, host, src_instance,
                                         priority, timestamp, level), **attrs)
    ev.validate(require_user=False)
    return ulm.format(ev, newline=False)


def record_from_text(type_name: str, job_id, source, seqcode: str, attrs: Mapping[str, str], *,
                     user: str | None = None, host: str | None = None,
                     src_instance: str | None = None, priority: int = 0,
                     level=Level.SYSTEM) -> str:
    """Like :func:`make_record`, with attribute values as texts keyed by their
    schema names (``node``, ``dest_host`` ...)."""
    spec = _event_spec(type_name)
    by_name = {a.name.lower(): a for a in spec.attrs}
    by_name.update({a.py_name.lower(): a for a in spec.attrs})
    base = make_event(spec.name, **_header(job_id, source, seqcode, user, host, src_instance,
                                           priority, None, level))
    fields = []
    for name, value in attrs.items():
        a = by_name.get(name.lower())
        if a is None:
            raise LBFormatError(f"{spec.name} has no attribute {name!r}", code="KEY_MISUSE")
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        fields.append(f'{a.ulm_key}="{escaped}"')
    # the header alone (unset required attributes left out), then the attributes
    prefix = re.escape(f"DG.{spec.name.upper()}.")
    header = re.sub(rf'\s+{prefix}[A-Za-z0-9._-]+=(?:"(?:[^"\\]|\\.)*"|[^ \t"]*)', "",
                    ulm.format(base, newline=False))
    line = " ".join([header] + fields)
    ev = ulm.parse(line, require_user=False)
    ev.validate(require_user=False)
    return ulm.format(ev, newline=False)
