"""Reading result documents, the client side of the legacy query protocol.

lbtx's consumer commands read the server's answers with these; the tests use them
to check that what the writers of :mod:`.xml_out` produce reads back to the same
statuses and events. Documents are parsed as safely as requests
(:func:`~.xml_tree.parse_document`, with limits sized for answers); anything that
is not a well-formed answer raises :class:`~.errors.RequestError`.

:func:`read_result` returns the root's ``(code, desc)`` error (None when there is
none) with the parsed content.
"""

from __future__ import annotations

from typing import Any

from lbtx.errors import LBFormatError
from lbtx.events import Event, event_class
from lbtx.jobid import JobId, NotifId
from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.xml_tree import Node, XMLLimits, parse_document
from lbtx.schema import ENUMS, STATUS_FIELDS, HEADER, AttrSpec, FieldSpec, JobState, Source
from lbtx.status import HIST_SIZE, JobStatus
from lbtx.timeval import Timeval

__all__ = ["ANSWER_LIMITS", "read_result", "read_jobstat", "read_event", "read_jobs",
           "read_events", "read_user_jobs", "read_sequence_code"]

#: answers may be large (many jobs, long histories) and nest one level more
ANSWER_LIMITS = XMLLimits(max_bytes=256 * 1024 * 1024, max_depth=16, max_elements=50_000_000,
                          max_conditions=0, max_disjunctions=0)
_FIELDS = {f.name: f for f in STATUS_FIELDS}
_STATES = {JobState(i).text: i for i in range(HIST_SIZE)}


def _bad(node: Node, what: str) -> RequestError:
    return RequestError(ErrorCode.SERVER_RESPONSE, f"{what}: {node.describe()}")


def _timeval(node: Node, text: str) -> Timeval:
    sec, dot, usec = text.partition(".")
    try:
        return Timeval(int(sec), int(usec) if dot else 0)
    except ValueError:
        raise _bad(node, f"bad time {text[:40]!r}") from None


def _int(node: Node, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad(node, f"bad number {text[:40]!r}") from None


def _jobid(node: Node) -> JobId:
    try:
        return JobId.parse(node.value())
    except LBFormatError:
        raise _bad(node, "bad job id") from None


def _pairs(text: str) -> tuple:
    return tuple(tuple(item.split("=", 1)) for item in text.split(",") if "=" in item)


def _per_state(node: Node) -> list[int]:
    out = [0] * HIST_SIZE
    for c in node.children:
        if c.tag not in _STATES:
            raise _bad(c, "unknown state")
        out[_STATES[c.tag]] = _int(c, c.value())
    return out


def _status_value(f: FieldSpec, node: Node) -> Any:
    text = node.value()
    enum = f.enum or f.hint
    if f.type == "bool":
        return text not in ("", "0")
    if f.type == "timeval":
        return _timeval(node, text)
    if f.type == "jobid":
        return _jobid(node)
    if f.type == "int":
        number = _int(node, text)
        if enum is not None:
            try:
                return ENUMS[enum](number)
            except ValueError:
                raise _bad(node, f"bad {enum} code") from None
        return number
    if f.type == "taglist":
        return _pairs(text)
    return text


def read_jobstat(node: Node) -> JobView:
    """A ``jobStat`` element as a view: status, children ids, histogram, children."""
    if node.name != "jobstat":
        raise _bad(node, "not a jobStat")
    st = JobStatus()
    state = JobState.from_text(node.attr("name") or "")
    if state is None:
        raise _bad(node, "unknown state name")
    st.state = state
    view = JobView(st)
    for c in node.children:
        f = _FIELDS.get(c.tag)
        if c.tag in ("possible_destinations", "possible_ce_nodes"):
            setattr(st, c.tag, [x.value() for x in c.children])
        elif c.tag == "children":
            view.children = [_jobid(x) for x in c.children]
            st.children = [str(j) for j in view.children]
        elif c.tag == "children_hist":
            st.children_hist = _per_state(c)
            view.children_hist = st.children_hist
        elif c.tag == "children_states":
            view.children_states = [read_jobstat(x) for x in c.children]
        elif c.tag == "user_tags":
            st.user_tags = {x.attr("name") or "": x.value() for x in c.children}
        elif c.tag == "stateEnterTimes":
            st.state_enter_times = _per_state(c)
        elif f is not None and not c.children:
            setattr(st, f.py_name, _status_value(f, c))
        else:
            raise _bad(c, "unexpected element")
    return view


_HEADER = {a.name: a for a in HEADER}


def _event_value(spec: AttrSpec, node: Node) -> Any:
    text = node.value()
    if spec.type == "logsrc":
        src = Source.from_text(text)
        if src is None:
            raise _bad(node, "unknown source")
        return src
    if spec.enum is not None:
        try:
            return ENUMS[spec.enum](_int(node, text))
        except ValueError:
            raise _bad(node, f"bad {spec.enum} code") from None
    if spec.type in ("int", "port"):
        return _int(node, text)
    if spec.type in ("double", "float"):
        try:
            return float(text)
        except ValueError:
            raise _bad(node, "bad number") from None
    if spec.type == "timeval":
        return _timeval(node, text)
    if spec.type in ("jobid", "notifid"):
        try:
            return (NotifId if spec.type == "notifid" else JobId).parse(text)
        except LBFormatError:
            raise _bad(node, "bad id") from None
    if spec.type == "taglist":
        return _pairs(text)
    if spec.type == "bool":
        return text not in ("", "0")
    return text


def read_event(node: Node) -> Event:
    """One ``edg_wll_Event`` element as an lbtx event."""
    try:
        cls = event_class(node.attr("name") or "")
    except LBFormatError:
        raise _bad(node, "unknown event type") from None
    specs = {**_HEADER, **{a.name: a for a in cls.attr_specs}}
    values = {}
    for c in node.children:
        spec = specs.get(c.tag)
        if spec is None or c.children:
            raise _bad(c, "unexpected element")
        values[spec.py_name] = _event_value(spec, c)
    return cls(**values)


def read_result(data: bytes, root: str) -> tuple[tuple[int, str] | None, Node]:
    """Parse an answer whose root must be ``root``; return its error and the root."""
    node = parse_document(data, ANSWER_LIMITS)
    if node.tag != root:
        raise _bad(node, f"expected <{root}>")
    code = node.attr("code")
    error = None
    if code is not None:
        error = (_int(node, code), node.attr("desc") or "")
    return error, node


def read_jobs(data: bytes):
    """``edg_wll_QueryJobsResult`` -> (error, [(job id or None, view or None)])."""
    error, root = read_result(data, "edg_wll_QueryJobsResult")
    out = []
    for job in root.children:
        job_id = view = None
        for c in job.children:
            if c.tag == "jobId":
                job_id = _jobid(c)
            elif c.tag == "jobStat":
                view = None if (c.attr("name") == "Unknown" and not c.children) else read_jobstat(c)
        out.append((job_id, view))
    return error, out


def read_events(data: bytes):
    """``edg_wll_QueryEventsResult`` -> (error, [events])."""
    error, root = read_result(data, "edg_wll_QueryEventsResult")
    return error, [read_event(e) for e in root.children]


def read_user_jobs(data: bytes):
    error, root = read_result(data, "edg_wll_UserJobs")
    return error, [_jobid(c) for c in root.children]


def read_sequence_code(data: bytes):
    error, root = read_result(data, "edg_wll_QuerySequenceCodeResult")
    codes = [c.value() for c in root.children if c.tag == "sequence_code"]
    return error, (codes[0] if codes else None)
