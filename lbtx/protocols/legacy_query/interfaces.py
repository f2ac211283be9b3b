"""What the legacy query service needs from the bookkeeping server.

:class:`IQueryBackend` is answered by the server's store (through an adapter of
its job store); the query service (:mod:`.service`) knows nothing else about it.
Every method returns a Deferred. Failures are :class:`~.errors.LBError` with the
error number to report (``ENOENT`` no such job or no match, ``EPERM`` not allowed,
``EIDRM`` purged, ``E2BIG`` over the limit, ``EDG_WLL_ERROR_NOINDEX`` a query that
hits no index, ...); any other failure is reported as an internal error.

``caller`` is the authenticated identity of the client (a certificate subject or
``unix:NAME``), or None for an anonymous one; the backend decides what it may read
(owner, ACL READ or superuser, formats.md §11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from zope.interface import Interface

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.messages import EventQuery, ResultLimit, StatusFlag
from lbtx.query.conditions import JobQuery

__all__ = ["IQueryBackend", "JobsAnswer", "EventsAnswer"]


@dataclass
class JobsAnswer:
    """Jobs matching a query, in job id order.

    ``jobs`` pairs each job id with its view (None when ``no_states`` was asked);
    ``error`` is ``(code, description)`` for a partial answer (``E2BIG`` with
    ``queryRes`` LIMITED), else None.
    """

    jobs: Sequence[tuple[JobId, JobView | None]] = field(default_factory=list)
    error: tuple[int, str] | None = None


@dataclass
class EventsAnswer:
    """Events matching a query, ordered by sequence code then timestamp."""

    events: Sequence[Event] = field(default_factory=list)
    error: tuple[int, str] | None = None


class IQueryBackend(Interface):
    """The queries of formats.md §7-8, over the server's jobs and events."""

    def query_jobs(conditions: JobQuery, flags: StatusFlag, limit: ResultLimit,
                   caller: str | None):
        """Find the jobs matching C{conditions} that C{caller} may read.

        Owner conditions are already resolved (no C{value=None}). C{flags} say what
        each view must hold: C{children} the subjob ids, C{childhist_thorough} counts
        of the subjobs' current states, C{childstat} the subjobs' views, C{history}
        the job's events; C{classadd}, C{childhist_fast}, C{no_jobs} and C{no_states}
        are applied by the writer and may be ignored. C{limit} is the client's soft
        limit and C{queryRes} mode; the backend applies its own hard limit too.

        @return: Deferred firing with a L{JobsAnswer}; fails with L{LBError}
            (C{ENOENT} when nothing matches, C{EPERM} when nothing readable matches,
            C{E2BIG} over the limit, C{EDG_WLL_ERROR_NOINDEX} without an index hit).
        """

    def job_status(job_id: JobId, flags: StatusFlag, caller: str | None):
        """The status of one job, with what C{flags} ask for (as for L{query_jobs}).

        @return: Deferred firing with a L{JobView}; fails with L{LBError}
            (C{ENOENT} unknown job, C{EPERM} not readable, C{EIDRM} purged).
        """

    def query_events(job_conditions: JobQuery, event_conditions: EventQuery,
                     limit: ResultLimit, caller: str | None):
        """The events matching both condition lists, of jobs C{caller} may read.

        @return: Deferred firing with an L{EventsAnswer}; fails with L{LBError}
            as L{query_jobs}.
        """

    def user_jobs(caller: str):
        """The ids of the jobs C{caller} owns.

        @return: Deferred firing with a list of L{JobId}; fails with L{LBError}
            (C{ENOENT} when there are none).
        """

    def sequence_code(job_id: JobId, source: str | None, caller: str | None):
        """The last sequence code of a job (C{source} is not used by the server).

        @return: Deferred firing with the code (C{str}); fails with L{LBError}
            (C{ENOENT} when the job has no state, C{EPERM} not readable).
        """

    def indexed_attributes():
        """The server's job indices, each a sequence of C{(Attr, name or None)} columns
        (L{lbtx.protocols.legacy_query.messages.IndexColumn}).

        @return: Deferred firing with a list of index column sequences.
        """

