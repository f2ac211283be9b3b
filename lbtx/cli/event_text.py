"""An event as the legacy library's ``edg_wll_UnparseEvent`` writes it (cli.md §0.3).

``glite-lb-job_log`` prints the events it reads back from the server in this form,
and scripts compare it with dump files. Unlike :func:`lbtx.ulm.format`, which
leaves unset texts out so that they survive a round trip, the legacy writer writes
every field: the common part in the order ``DATE HOST PROG LVL DG.PRIORITY
DG.SOURCE DG.SRC_INSTANCE DG.EVNT DG.JOBID DG.SEQCODE``, then ``DG.USER``, then
every attribute of the event type in definition order, quoted, unset texts and
ids as ``""``. Values are escaped as ULM requires (a backslash before ``"`` and
``\\``, a line feed as ``\\n``); tag lists are escaped too, so that what is printed
reads back the same (upstream writes them raw, formats.md §2.4).
"""

from __future__ import annotations

from typing import Any

from lbtx.events import Event
from lbtx.schema import AttrSpec
from lbtx.timeval import NULL_TIME

__all__ = ["unparse_event", "ulm_escape"]


def ulm_escape(text: str) -> str:
    """ULM escaping of a quoted value."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(spec: AttrSpec, value: Any) -> str:
    if value is None:
        return ""
    if spec.type == "logsrc":
        return value.text
    if spec.enum is not None:
        return value.name
    if spec.type == "bool":
        return str(int(value))
    if spec.type in ("double", "float"):
        return "%f" % value
    if spec.type == "timeval":
        return "" if value == NULL_TIME else value.to_ulm()
    if spec.type == "taglist":
        return ulm_escape(",".join(f"{n}={v}" for n, v in value))
    if spec.type in ("string", "jobid", "notifid"):
        return ulm_escape(str(value))
    return str(value)


def unparse_event(ev: Event, *, priority: int | None = None) -> str:
    """One ULM record with every field, ending in a line feed.

    ``priority`` replaces the event's ``DG.PRIORITY`` (``glite-lb-job_log`` prints
    0: the server does not keep the logging flags, cli.md §0.3).
    """
    if priority is None:
        priority = int(ev.priority or 0)
    parts = [
        "DATE=" + ev.timestamp.to_ulm(),
        f'HOST="{ulm_escape(ev.host or "")}"',
        "PROG=edg-wms",
        "LVL=" + ev.level.name,
        f"DG.PRIORITY={priority}",
        f'DG.SOURCE="{ev.source.text}"',
        f'DG.SRC_INSTANCE="{ulm_escape(ev.src_instance or "")}"',
        f'DG.EVNT="{ev.type_name}"',
        f'DG.JOBID="{ulm_escape(str(ev.job_id)) if ev.job_id is not None else ""}"',
        f'DG.SEQCODE="{ulm_escape(ev.seqcode or "")}"',
    ]
    if ev.user is not None:
        parts.append(f'DG.USER="{ulm_escape(ev.user)}"')
    for spec in ev.attr_specs:
        parts.append(f'{spec.ulm_key}="{_value(spec, getattr(ev, spec.py_name))}"')
    return " ".join(parts) + "\n"
