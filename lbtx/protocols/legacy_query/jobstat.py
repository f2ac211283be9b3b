"""The ``jobStat`` element: a job status in the legacy XML form (formats.md §7.10).

``<jobStat name="<state>">`` holds the scalar status fields in definition order as
``<field>value</field>`` (null values left out; ``user_fqans`` and ``jdl_classad``
never written), then the structured fields in the order ``possible_destinations,
possible_ce_nodes, children, children_hist, children_states, user_tags,
stateEnterTimes``.

What the flags of §7.5 select:

* ``classadd`` - the JDL fields (``jdl``, ``matched_jdl``, ``condor_jdl``, ``rsl``);
* ``children`` - the subjob ids, given by the caller (a status does not list them);
* ``childhist_fast`` - the class histogram stored with the status;
* ``childhist_thorough`` - counts the caller computed from the subjobs' states;
* ``childstat`` - the subjobs' full states, given by the caller;
* ``history`` - the events given by the caller, as a JSON array.

:class:`JobView` bundles a status with those caller-supplied parts; the backend
answers queries with views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.protocols.legacy_query.event_xml import history_json, taglist_text, timeval_text
from lbtx.protocols.legacy_query.messages import StatusFlag
from lbtx.schema import STATUS_FIELDS, FieldSpec, JobState
from lbtx.status import HIST_SIZE, JobStatus
from lbtx.timeval import NULL_TIME

__all__ = ["JobView", "jobstat_element", "JDL_FIELDS", "STRUCTURED_ORDER", "unknown_jobstat"]

#: fields dropped unless the ``classadd`` flag is given
JDL_FIELDS = frozenset({"jdl", "matched_jdl", "condor_jdl", "rsl"})
STRUCTURED_ORDER = ("possible_destinations", "possible_ce_nodes", "children", "children_hist",
                    "children_states", "user_tags", "stateEnterTimes")
_NEVER = frozenset({"state", "user_fqans", "jdl_classad"})
_SCALARS: tuple[FieldSpec, ...] = tuple(
    f for f in STATUS_FIELDS if f.name not in _NEVER and f.name not in STRUCTURED_ORDER)
_STATE_NAMES = tuple(JobState(i).text for i in range(HIST_SIZE))


@dataclass
class JobView:
    """A status and what the caller adds to it for the flags.

    :ivar children: subjob ids (for ``children``); None when not asked for.
    :ivar children_hist: thorough histogram, counts indexed by state code.
    :ivar children_states: the subjobs' views (for ``childstat``).
    :ivar history: the job's events (for ``history``).
    """

    status: JobStatus
    children: Sequence[JobId] | None = None
    children_hist: Sequence[int] | None = None
    children_states: Sequence["JobView"] | None = None
    history: Sequence[Event] | None = None


def _scalar(f: FieldSpec, value: Any) -> str | None:
    """Element text of a scalar field, or None when the field is null."""
    if value is None:
        return None
    t = f.type
    if t == "bool":
        return "1" if value else None
    if t == "timeval":
        return None if value == NULL_TIME else timeval_text(value)
    if t == "jobid":
        return str(value)
    if t == "taglist":
        return taglist_text(value) if value else None
    if t == "int":
        number = int(value)
        return None if number == f.null else str(number)
    return str(value)


def _line(tag: str, text: str) -> str:
    return f"\t\t\t<{tag}>{escape(text)}</{tag}>\r\n"


def _list(tag: str, sub: str, items) -> str:
    inner = "".join(f"\t\t\t\t<{sub}>{escape(str(x))}</{sub}>\r\n" for x in items)
    return f"\t\t\t<{tag}>\r\n{inner}\t\t\t</{tag}>\r\n"


def _per_state(tag: str, values: Sequence[int | None]) -> str:
    inner = "".join(f"\t\t\t\t<{_STATE_NAMES[i]}>{int(values[i] or 0) if i < len(values) else 0}"
                    f"</{_STATE_NAMES[i]}>\r\n" for i in range(HIST_SIZE))
    return f"\t\t\t<{tag}>\r\n{inner}\t\t\t</{tag}>\r\n"


def _attrs(name: str, error: tuple[int, str] | None) -> str:
    out = f'name="{escape(name)}"'
    if error is not None:
        out += f' code="{int(error[0])}" desc="{escape(error[1] or "")}"'
    return out


def jobstat_element(view: JobView | JobStatus, flags: StatusFlag = StatusFlag.NONE, *,
                    error: tuple[int, str] | None = None) -> str:
    """The ``jobStat`` element of a status (or view) for the given flags.

    ``error`` (code, description) adds the ``code``/``desc`` attributes.
    """
    if isinstance(view, JobStatus):
        view = JobView(view)
    st = view.status
    state = st.state if st.state is not None else JobState.UNDEFINED
    parts = []
    for f in _SCALARS:
        if f.name in JDL_FIELDS and not flags & StatusFlag.CLASSADS:
            continue
        if f.name == "history":
            if flags & StatusFlag.HISTORY:
                parts.append(_line("history", history_json(view.history or ())))
            continue
        text = _scalar(f, getattr(st, f.py_name))
        if text is not None:
            parts.append(_line(f.name, text))
    if st.possible_destinations is not None:
        parts.append(_list("possible_destinations", "name", st.possible_destinations))
    if st.possible_ce_nodes is not None:
        parts.append(_list("possible_ce_nodes", "name", st.possible_ce_nodes))
    if flags & StatusFlag.CHILDREN:
        children = view.children if view.children is not None else st.children
        if children is not None:
            parts.append(_list("children", "jobId", children))
    hist = None
    if flags & StatusFlag.CHILDHIST_THOROUGH and view.children_hist is not None:
        hist = view.children_hist
    elif flags & (StatusFlag.CHILDHIST_FAST | StatusFlag.CHILDHIST_THOROUGH):
        hist = st.children_hist
    if hist is not None:
        parts.append(_per_state("children_hist", hist))
    if flags & StatusFlag.CHILDSTAT and view.children_states is not None:
        inner = "".join(jobstat_element(child, flags & ~StatusFlag.CHILDSTAT) + "\r\n"
                        for child in view.children_states)
        parts.append(f"\t\t\t<children_states>\r\n{inner}\t\t\t</children_states>\r\n")
    if st.user_tags:
        inner = "".join(f'\t\t\t\t<tag name="{escape(k)}">{escape(v)}</tag>\r\n'
                        for k, v in st.user_tags.items())
        parts.append(f"\t\t\t<user_tags>\r\n{inner}\t\t\t</user_tags>\r\n")
    if st.state_enter_times is not None:
        parts.append(_per_state("stateEnterTimes", st.state_enter_times))
    return f"<jobStat {_attrs(state.text, error)}>\r\n{''.join(parts)}</jobStat>"


def unknown_jobstat() -> str:
    """The empty ``jobStat`` written for each job when states are not asked for."""
    return f'<jobStat name="{JobState.UNKNOWN.text}">\r\n\r\n\t\t</jobStat>\r\n'
