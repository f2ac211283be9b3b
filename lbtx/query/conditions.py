"""Query conditions (formats.md §8): the one model that every front end builds and
every store and the notification matcher evaluate.

A job query is a conjunction of disjunctions: ``((c11 or c12) and (c21) and ...)``.
Each :class:`Condition` names an :class:`Attr`, an :class:`Op`, a value (and an
upper bound for ``within``) and, for ``usertag``/``jdl``/``time``, the tag name,
JDL attribute or state. Values are typed: job ids are :class:`~lbtx.jobid.JobId`,
states :class:`~lbtx.schema.JobState`, times whole UNIX seconds, sources
:class:`~lbtx.schema.Source`, event types their numeric code.

:func:`check_job_query` enforces the nesting rule (one attribute per disjunction),
:func:`job_matches` evaluates job conditions on a :class:`~lbtx.status.JobStatus`
(for conditions not answered by an index, and for notification matching).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable

from lbtx import subject
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.schema import JobState

__all__ = ["Attr", "Op", "Condition", "JobQuery", "QueryError", "check_job_query", "compare",
           "job_matches", "condition_matches", "JOB_ATTRS", "EVENT_ATTRS", "INDEXED_ALWAYS"]


class QueryError(LBFormatError):
    """A query that cannot be answered as asked (EINVAL in the original)."""

    def __init__(self, reason: str, **kw):
        kw.setdefault("code", "EINVAL")
        super().__init__(reason, **kw)


class Attr(str, enum.Enum):
    """Query attributes; the value is the XML/HTML name, ``number`` the upstream code."""

    JOBID = "jobid"
    OWNER = "owner"
    STATUS = "status"
    LOCATION = "location"
    DESTINATION = "destination"
    DONECODE = "donecode"
    USERTAG = "usertag"
    TIME = "time"
    LEVEL = "level"
    HOST = "host"
    SOURCE = "source"
    INSTANCE = "instance"
    EVENT_TYPE = "type"
    CHKPT_TAG = "chkpt_tag"
    RESUBMITTED = "resubmitted"
    PARENT = "parent_job"
    EXITCODE = "exitcode"
    JDL_ATTR = "jdl"
    STATEENTERTIME = "stateentertime"
    LASTUPDATETIME = "lastupdatetime"
    NETWORK_SERVER = "networkserver"
    JOBTYPE = "jobtype"
    VM_STATUS = "vm_status"

    @property
    def number(self) -> int:
        return list(Attr).index(self) + 1


class Op(str, enum.Enum):
    EQUAL = "equal"
    UNEQUAL = "unequal"
    LESS = "less"
    GREATER = "greater"
    WITHIN = "within"
    CHANGED = "changed"


#: attributes that can restrict jobs / events
JOB_ATTRS = frozenset({
    Attr.JOBID, Attr.OWNER, Attr.STATUS, Attr.LOCATION, Attr.DESTINATION, Attr.DONECODE,
    Attr.USERTAG, Attr.TIME, Attr.RESUBMITTED, Attr.PARENT, Attr.EXITCODE, Attr.JDL_ATTR,
    Attr.STATEENTERTIME, Attr.LASTUPDATETIME, Attr.NETWORK_SERVER, Attr.JOBTYPE, Attr.VM_STATUS,
})
EVENT_ATTRS = frozenset({
    Attr.USERTAG, Attr.TIME, Attr.LEVEL, Attr.HOST, Attr.SOURCE, Attr.INSTANCE, Attr.EVENT_TYPE,
    Attr.STATEENTERTIME,
})
#: attributes whose conditions always hit an index (§8.4)
INDEXED_ALWAYS = frozenset({Attr.JOBID, Attr.PARENT})
#: attributes that accept only equal/unequal
_EQ_ONLY = frozenset({Attr.OWNER, Attr.LOCATION, Attr.DESTINATION, Attr.RESUBMITTED, Attr.PARENT,
                      Attr.NETWORK_SERVER, Attr.JOBTYPE, Attr.VM_STATUS, Attr.HOST, Attr.SOURCE,
                      Attr.INSTANCE})


@dataclass(frozen=True)
class Condition:
    """One comparison. ``name`` is the tag name (usertag), JDL attribute (jdl) or
    state (time); ``value2`` the upper bound of ``within``. An owner condition with
    ``value=None`` means "the caller" and must be resolved before evaluation."""

    attr: Attr
    op: Op
    value: Any = None
    value2: Any = None
    name: str | None = None

    def __post_init__(self):
        if self.op == Op.WITHIN and self.value2 is None:
            raise QueryError(f"'within' on {self.attr.value} needs two bounds")
        if self.attr in _EQ_ONLY and self.op not in (Op.EQUAL, Op.UNEQUAL, Op.CHANGED):
            raise QueryError(f"{self.attr.value} accepts only equal and unequal")
        if self.attr == Attr.TIME and self.name is None:
            raise QueryError("a time condition must name a state")
        if self.attr == Attr.USERTAG and not self.name:
            raise QueryError("a usertag condition must name the tag")
        if self.attr == Attr.CHKPT_TAG:
            raise QueryError("chkpt_tag conditions are not supported")
        if self.attr == Attr.USERTAG:
            object.__setattr__(self, "name", self.name.lower())

    def same_kind(self, other: "Condition") -> bool:
        """Whether two conditions may share a disjunction (same attribute and name)."""
        return self.attr == other.attr and (self.name or "").lower() == (other.name or "").lower()


JobQuery = tuple[tuple[Condition, ...], ...]


def check_job_query(query: Iterable[Iterable[Condition]], *, allow_empty: bool = False) -> JobQuery:
    """Normalise and check a job query: every disjunction non-empty and of one kind."""
    out = tuple(tuple(ors) for ors in query)
    if not out and not allow_empty:
        raise QueryError("unrestricted queries unsupported")
    for ors in out:
        if not ors:
            raise QueryError("empty disjunction")
        for c in ors:
            if c.attr not in JOB_ATTRS:
                raise QueryError(f"{c.attr.value} is not a job attribute")
            if not c.same_kind(ors[0]):
                raise QueryError("only same attribute types supported in 'or' expressions")
    return out


def compare(op: Op, have: Any, want: Any, want2: Any = None) -> bool:
    """Apply one operator: ``have`` (the attribute's value) against ``want`` (and
    ``want2`` for ``within``). An unset ``have`` only satisfies ``unequal`` to a set
    value; values that do not compare satisfy nothing; ``changed`` is true here
    (it only means something when matching notifications)."""
    if have is None:
        return op == Op.UNEQUAL and want is not None
    if op == Op.EQUAL:
        return have == want
    if op == Op.UNEQUAL:
        return have != want
    try:
        if op == Op.LESS:
            return have < want
        if op == Op.GREATER:
            return have > want
        if op == Op.WITHIN:
            return want <= have <= want2
    except TypeError:
        return False
    return True  # CHANGED: only meaningful in notification matching


def _job_value(status, c: Condition) -> Any:
    a = c.attr
    if a == Attr.JOBID:
        return status.job_id
    if a == Attr.OWNER:
        return status.owner
    if a == Attr.STATUS:
        return status.state
    if a == Attr.LOCATION:
        return status.location
    if a == Attr.DESTINATION:
        return status.destination
    if a == Attr.DONECODE:
        return int(status.done_code) if status.done_code is not None else None
    if a == Attr.USERTAG:
        return (status.user_tags or {}).get(c.name)
    if a == Attr.TIME:
        times = status.state_enter_times
        state = JobState.from_text(c.name) if isinstance(c.name, str) else c.name
        sec = times[int(state)] if times and state is not None else 0
        return sec or None
    if a == Attr.RESUBMITTED:
        return int(bool(status.resubmitted))
    if a == Attr.PARENT:
        return status.parent_job
    if a == Attr.EXITCODE:
        return status.exit_code
    if a == Attr.STATEENTERTIME:
        return status.state_enter_time.sec or None
    if a == Attr.LASTUPDATETIME:
        return status.last_update_time.sec or None
    if a == Attr.NETWORK_SERVER:
        return status.network_server
    if a == Attr.JOBTYPE:
        return status.jobtype
    if a == Attr.VM_STATUS:
        return status.vm_state
    if a == Attr.JDL_ATTR:
        return None  # needs a ClassAd parser; never matches equal (see §8.1)
    raise QueryError(f"{a.value} is not a job attribute")


def condition_matches(status, c: Condition) -> bool:
    """Evaluate one job condition on a status record."""
    have = _job_value(status, c)
    want = c.value
    if c.attr == Attr.OWNER:
        if want is None:
            raise QueryError("owner NULL must be resolved to the caller first")
        same = subject.same(have, want)
        return same if c.op == Op.EQUAL else (not same if c.op == Op.UNEQUAL else True)
    if c.attr in (Attr.JOBID, Attr.PARENT) and isinstance(want, JobId):
        have = str(have) if have is not None else None
        want = str(want)
        want2 = str(c.value2) if c.value2 is not None else None
        return compare(c.op, have, want, want2)
    return compare(c.op, have, want, c.value2)


def job_matches(status, query: JobQuery) -> bool:
    """Whether the status satisfies every disjunction of the query."""
    return all(any(condition_matches(status, c) for c in ors) for ors in query)



