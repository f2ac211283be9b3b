"""The requests of the legacy query protocol as typed values (formats.md §7.3-7.14).

The parsers in :mod:`.xml_in` and :mod:`.requests` build these; the query service
hands them to its backend. Conditions are those of :mod:`lbtx.query.conditions`:
a :data:`~lbtx.query.conditions.JobQuery` is a conjunction of disjunctions.

=====================  ==========================================================
``POST /queryJobs``    :class:`QueryJobsRequest` (also job status and user jobs)
``POST /queryEvents``  :class:`QueryEventsRequest` (also the job log)
``GET /``              :class:`UserJobsRequest`
``GET /<unique>``      :class:`JobStatusRequest`
``POST /querySequenceCode``  :class:`SequenceCodeRequest`
``POST /indexedAttrs`` :class:`IndexedAttrsRequest`
``POST /notifRequest`` :class:`NotifRequest` (parsed; served by a later issue)
=====================  ==========================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lbtx.jobid import JobId, NotifId
from lbtx.query.conditions import Attr, Condition, JobQuery

__all__ = ["StatusFlag", "FLAG_ORDER", "parse_flags", "format_flags", "QueryResults",
           "ResultLimit", "QueryJobsRequest", "QueryEventsRequest", "UserJobsRequest",
           "JobStatusRequest", "SequenceCodeRequest", "IndexedAttrsRequest", "NotifRequest",
           "NotifFunction", "NotifChangeOp", "EventQuery", "IndexColumn", "Request"]


class StatusFlag(enum.IntFlag):
    """Flags of job status queries and notifications (§7.5)."""

    NONE = 0
    CLASSADS = 1
    CHILDREN = 2
    CHILDSTAT = 4
    CHILDHIST_FAST = 8
    CHILDHIST_THOROUGH = 16
    ANONYMIZED = 32
    TERMINAL_STATES = 64
    HISTORY = 128
    BOOTSTRAP = 256
    VOLATILE = 512
    NO_JOBS = 1024
    NO_STATES = 2048


#: wire names in the legacy writer's order (§7.4)
FLAG_ORDER = (
    ("classadd", StatusFlag.CLASSADS), ("children", StatusFlag.CHILDREN),
    ("childstat", StatusFlag.CHILDSTAT), ("no_jobs", StatusFlag.NO_JOBS),
    ("no_states", StatusFlag.NO_STATES), ("childhist_fast", StatusFlag.CHILDHIST_FAST),
    ("childhist_thorough", StatusFlag.CHILDHIST_THOROUGH), ("anonymized", StatusFlag.ANONYMIZED),
    ("terminal_states", StatusFlag.TERMINAL_STATES), ("history", StatusFlag.HISTORY),
    ("bootstrap", StatusFlag.BOOTSTRAP), ("volatile", StatusFlag.VOLATILE),
)
_FLAG_BY_NAME = dict(FLAG_ORDER)


def parse_flags(text: str | None) -> StatusFlag:
    """``classadd+children`` -> flags; names are case-sensitive, unknown names ignored."""
    flags = StatusFlag.NONE
    for name in (text or "").split("+"):
        flags |= _FLAG_BY_NAME.get(name, StatusFlag.NONE)
    return flags


def format_flags(flags: StatusFlag) -> str:
    """Flags as the legacy writer joins them (an empty string for none)."""
    return "+".join(name for name, bit in FLAG_ORDER if flags & bit)


class QueryResults(enum.IntEnum):
    """``queryRes``: what to do when a result exceeds the limit (§7.7)."""

    UNSET = 0
    NONE = 1
    ALL = 2
    LIMITED = 3


@dataclass(frozen=True)
class ResultLimit:
    """The client's ``softLimit`` (0: none) and ``queryRes`` behaviour."""

    soft_limit: int = 0
    mode: QueryResults = QueryResults.UNSET


#: event conditions: a conjunction of disjunctions without the same-attribute rule
EventQuery = tuple[tuple[Condition, ...], ...]


@dataclass(frozen=True)
class QueryJobsRequest:
    """``POST /queryJobs``. ``owner`` conditions with ``value=None`` mean the caller."""

    conditions: JobQuery
    flags: StatusFlag = StatusFlag.NONE
    limit: ResultLimit = ResultLimit()


@dataclass(frozen=True)
class QueryEventsRequest:
    """``POST /queryEvents``: events matching both condition lists."""

    job_conditions: JobQuery
    event_conditions: EventQuery = ()
    limit: ResultLimit = ResultLimit()


@dataclass(frozen=True)
class UserJobsRequest:
    """``GET /`` from an API client: the caller's jobs."""


@dataclass(frozen=True)
class JobStatusRequest:
    """``GET /<unique>``: one job's status with ``classadd+children``."""

    job_id: JobId
    flags: StatusFlag = StatusFlag.CLASSADS | StatusFlag.CHILDREN


@dataclass(frozen=True)
class SequenceCodeRequest:
    """``POST /querySequenceCode``; ``source`` is not used by the server."""

    job_id: JobId
    source: str | None = None


@dataclass(frozen=True)
class IndexedAttrsRequest:
    """``POST /indexedAttrs`` (the body is ignored)."""


#: one column of an index: the attribute and its tag name, JDL attribute or state
IndexColumn = tuple[Attr, "str | None"]


class NotifFunction(str, enum.Enum):
    NEW = "New"
    BIND = "Bind"
    CHANGE = "Change"
    REFRESH = "Refresh"
    DROP = "Drop"


class NotifChangeOp(str, enum.Enum):
    NOOP = "EDG_WLL_NOTIF_NOOP"
    REPLACE = "EDG_WLL_NOTIF_REPLACE"
    ADD = "EDG_WLL_NOTIF_ADD"
    REMOVE = "EDG_WLL_NOTIF_REMOVE"


@dataclass(frozen=True)
class NotifRequest:
    """``POST /notifRequest`` (§7.13); ``validity`` None means the server default."""

    function: NotifFunction
    notif_id: NotifId | None = None
    client_address: str | None = None
    change_op: NotifChangeOp = NotifChangeOp.NOOP
    validity: int | None = None
    conditions: JobQuery = ()
    flags: StatusFlag = StatusFlag.NONE


Request = (QueryJobsRequest | QueryEventsRequest | UserJobsRequest | JobStatusRequest
           | SequenceCodeRequest | IndexedAttrsRequest | NotifRequest)
