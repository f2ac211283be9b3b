"""The server's answers to queries: :class:`StoreQueryBackend`, an
:class:`~lbtx.protocols.legacy_query.interfaces.IQueryBackend` over an
:class:`~lbtx.server.store.interfaces.IJobStore`.

Both query front ends (the legacy protocol and the JSON API under ``/api/``) call
this one object, so they give the same answers. What it adds to the store
(formats.md §7.7-7.9, §8.3-8.5, §11.4):

* the nesting rule (``EINVAL``) and the index rule (``EDG_WLL_ERROR_NOINDEX``,
  over the indices the store names; relaxed by ``no_index``: 1 exempts
  super-users, 2 everybody);
* ``owner`` NULL resolved to the caller (``EPERM`` for an anonymous one);
* read access: jobs the caller may not read are skipped; when matches exist but
  none is readable the answer is ``EPERM``, when nothing matches ``ENOENT``;
* limits: the effective limit is the smaller of the client's soft limit and the
  server's hard limit (0: none); ``queryRes`` NONE (or unset) answers ``E2BIG``
  above it, LIMITED the first *limit* results with ``E2BIG``, ALL ignores limits
  (and needs a single ``owner`` condition for jobs, ``jobid`` for events);
* a job query for the caller's own jobs (a single ``owner`` condition) with the
  ``no_states`` flag, and the user-jobs request, answered from the ids alone
  (:meth:`~lbtx.server.store.interfaces.IJobStore.user_job_ids`);
* what the flags ask for: subjob ids, the thorough histogram counted from the
  subjobs' current states, the subjobs' states, the job's events.

Event queries return, job after job in unique-id order, each job's matching events
ordered by sequence code then timestamp, with their arrival times.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import inlineCallbacks, succeed
from twisted.logger import Logger
from zope.interface import implementer

from lbtx import subject
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.protocols.legacy_query.interfaces import EventsAnswer, IQueryBackend, JobsAnswer
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.messages import QueryResults, ResultLimit, StatusFlag
from lbtx.query.conditions import (EVENT_ATTRS, Attr, Condition, Op, QueryError,
                                   check_job_query)
from lbtx.query.events import event_matches, sort_events
from lbtx.schema import JobState
from lbtx.server.anonymize import Access, Anonymizer
from lbtx.server.authz import ReadPolicy, caller_of
from lbtx.server.indexes import hits_index, single_column_indexes
from lbtx.server.store.interfaces import StoreUnavailableError, UnknownJobError
from lbtx.status import HIST_SIZE
from lbtx.timeval import NULL_TIME

__all__ = ["StoreQueryBackend", "HardLimits"]

TOO_BIG = "Query result size limit exceeded"
#: how much more a page of a query asks for when jobs were skipped as unreadable
_GROWTH = 4


@dataclass(frozen=True)
class HardLimits:
    """The server's hard limits on one answer (``-L events:jobs``); 0 means none."""

    events: int = 0
    jobs: int = 0

    @classmethod
    def parse(cls, text: str) -> "HardLimits":
        """``events:jobs[:size]`` as the original's ``-L`` (the size part is unused)."""
        parts = text.split(":")
        if not 2 <= len(parts) <= 3:
            raise ValueError(f"limits are events:jobs[:size], not {text!r}")
        try:
            events, jobs = (int(p) for p in parts[:2])
        except ValueError:
            raise ValueError(f"limits are whole numbers, not {text!r}") from None
        if events < 0 or jobs < 0:
            raise ValueError(f"limits cannot be negative: {text!r}")
        return cls(events=events, jobs=jobs)

    def __str__(self) -> str:
        return f"{self.events}:{self.jobs}"


def _cap(limit: ResultLimit, hard: int) -> int | None:
    """The effective limit of an answer, None for no limit."""
    if limit.mode == QueryResults.ALL:
        return None
    caps = [x for x in (limit.soft_limit, hard) if x and x > 0]
    return min(caps) if caps else None


def _limited(items: list, cap: int | None, limit: ResultLimit):
    """``(items, error)`` within the cap, or ``E2BIG`` when the mode asks for nothing."""
    if cap is None or len(items) <= cap:
        return items, None
    if limit.mode == QueryResults.LIMITED:
        return items[:cap], (int(ErrorCode.E2BIG), TOO_BIG)
    raise LBError(ErrorCode.E2BIG, TOO_BIG)


def _single(query, attr: Attr) -> bool:
    return len(query) == 1 and len(query[0]) == 1 and query[0][0].attr == attr


def _with_arrival(stored):
    """The stored event with its arrival time (the ULM line may not carry it)."""
    ev = stored.event
    if ev.arrived is None or ev.arrived == NULL_TIME:
        ev.arrived = stored.arrived
    return ev


def _histogram(children) -> list[int]:
    hist = [0] * HIST_SIZE
    for child in children:
        state = child.status.state
        hist[int(state if state is not None else JobState.UNDEFINED)] += 1
    return hist


@implementer(IQueryBackend)
class StoreQueryBackend:
    """See the module docstring.

    :param store: a started :class:`~lbtx.server.store.interfaces.IJobStore`.
    :param superusers: identities (DNs, or ``FQAN:<fqan>``) that may read everything.
    :param noauth: read access checks off (every caller reads every job).
    :param hard_limits: the server's :class:`HardLimits`.
    :param no_index: 0 enforce the index rule, 1 exempt super-users, 2 off.
    :param policy: the server's :class:`ReadPolicy` (default: one made of
        ``superusers`` and ``noauth``).
    :param anonymizer: hashes identities for callers with anonymised access or
        the ``anonymized`` flag (default: the store's, else one with a fixed salt).
    """

    log = Logger()

    def __init__(self, store, *, superusers=(), noauth: bool = False,
                 hard_limits: HardLimits = HardLimits(), no_index: int = 0,
                 policy: ReadPolicy | None = None, anonymizer: Anonymizer | None = None):
        if no_index not in (0, 1, 2):
            raise ValueError(f"no_index is 0, 1 or 2, not {no_index!r}")
        self._store = store
        self.indexes = single_column_indexes(store.indexed_attributes)
        self.policy = policy if policy is not None else ReadPolicy(tuple(superusers), noauth)
        self.anonymizer = (anonymizer or getattr(store, "anonymizer", None)
                           or Anonymizer(b"lbtx query answers"))
        self.hard_limits = hard_limits
        self.no_index = no_index

    # --- rules ----------------------------------------------------------------
    def _job_query(self, conditions, caller, *, resolve_owner: bool = True):
        """Checked conditions with ``owner`` NULL replaced by the caller."""
        try:
            query = check_job_query(conditions)
        except QueryError as e:
            raise LBError(ErrorCode.EINVAL, e.reason) from None
        if not resolve_owner:
            return query
        out = []
        for ors in query:
            row = []
            for c in ors:
                if c.attr == Attr.OWNER and c.value is None:
                    if caller is None:
                        raise LBError(ErrorCode.EPERM, "owner NULL needs an authenticated caller")
                    c = Condition(c.attr, c.op, str(caller), c.value2, c.name)
                row.append(c)
            out.append(tuple(row))
        return tuple(out)

    def _check_index(self, query, caller, event_query=()) -> None:
        if self.no_index == 2 or (self.no_index == 1 and self.policy.is_superuser(caller)):
            return
        if not hits_index(query, self.indexes, event_query):
            raise LBError(ErrorCode.NOINDEX, "no indexed condition in query")

    @staticmethod
    def _check_events(event_query) -> tuple:
        out = tuple(tuple(ors) for ors in event_query)
        for ors in out:
            for c in ors:
                if c.attr not in EVENT_ATTRS:
                    raise LBError(ErrorCode.EINVAL, f"{c.attr.value} is not an event attribute")
        return out

    # --- reading --------------------------------------------------------------
    @inlineCallbacks
    def _store_call(self, method, *args, **kw):
        """A store call with its failures as the errors the protocol reports."""
        try:
            return (yield method(*args, **kw))
        except UnknownJobError as e:
            zombie = getattr(self._store, "is_zombie", None)
            if zombie is not None and getattr(e, "job_id", None) is not None:
                purged = yield zombie(e.job_id)
                if purged:
                    raise LBError(ErrorCode.EIDRM, "matching job already purged") from None
            raise LBError(ErrorCode.ENOENT, "no such job") from None
        except QueryError as e:
            raise LBError(ErrorCode.EINVAL, e.reason) from None
        except StoreUnavailableError:
            raise LBError(ErrorCode.EAGAIN, "the database is not available now") from None

    @inlineCallbacks
    def _readable(self, query, caller, want: int | None):
        """The first ``want`` (None: all) matching records ``caller`` may read, and
        whether anything matched at all."""
        everything = self.policy.unrestricted(caller)
        fetch = want
        while True:
            records = yield self._store_call(self._store.query_jobs, query, limit=fetch)
            readable = [r for r in records if everything or self.policy.may_read(caller, r)]
            if fetch is None or len(records) < fetch or len(readable) >= want:
                return (readable if want is None else readable[:want]), bool(records)
            # unreadable jobs took places in the page: ask again for more
            fetch *= _GROWTH

    @inlineCallbacks
    def _matching(self, query, caller, want: int | None):
        readable, matched = yield self._readable(query, caller, want)
        if not matched:
            named = [c.value for group in query for c in group
                     if c.attr == Attr.JOBID and c.op == Op.EQUAL]
            zombie = getattr(self._store, "is_zombie", None)
            if named and zombie is not None and len(named) <= 100:
                for job_id in named:
                    if (yield zombie(job_id)):
                        raise LBError(ErrorCode.EIDRM, "matching job already purged")
            raise LBError(ErrorCode.ENOENT, "no matching jobs found")
        if not readable:
            raise LBError(ErrorCode.EPERM, "not allowed to read any matching job")
        return readable

    def _own_jobs(self, query, caller) -> bool:
        """Whether ``query`` is the single condition ``owner = X`` where every job of
        X is readable by ``caller`` (X is the caller, whom the acceptance rules make
        the owner of its registrations in the record and in the status alike, or
        the caller reads everything): then the ids of X's jobs are the answer, read
        without their records."""
        if not _single(query, Attr.OWNER):
            return False
        c = query[0][0]
        if c.op != Op.EQUAL or not isinstance(c.value, str):
            return False
        return self.policy.unrestricted(caller) or (
            caller is not None and subject.same(c.value, str(caller)))

    def access(self, caller, record, flags: StatusFlag = StatusFlag.NONE) -> Access | None:
        """How ``caller`` may read ``record`` (the ``anonymized`` flag asks for no
        more than anonymised access); None: not at all."""
        access = self.policy.access(caller, record)
        if access is Access.FULL and flags & StatusFlag.ANONYMIZED:
            return Access.ANONYMIZED
        return access

    @inlineCallbacks
    def view(self, record, flags: StatusFlag, access: Access = Access.FULL):
        """The :class:`JobView` of a record with what ``flags`` ask for, as
        ``access`` shows it."""
        shown = self.anonymizer.status
        view = JobView(shown(record.status, access))
        if flags & StatusFlag.CHILDREN:
            view.children = list(record.children) or None  # none: not written
        wants_children = flags & (StatusFlag.CHILDHIST_THOROUGH | StatusFlag.CHILDSTAT)
        children = []
        if wants_children and record.children:
            children = yield self._store_call(self._store.children, record.job_id)
        if flags & StatusFlag.CHILDHIST_THOROUGH:
            view.children_hist = _histogram(children)
        if flags & StatusFlag.CHILDSTAT:
            view.children_states = [JobView(shown(child.status, access)) for child in children]
        if flags & StatusFlag.HISTORY:
            stored = yield self._store_call(self._store.job_events, record.job_id)
            view.history = [self.anonymizer.event(_with_arrival(s), access) for s in stored]
        return view

    # --- IQueryBackend --------------------------------------------------------
    @inlineCallbacks
    def query_jobs(self, conditions, flags, limit, caller):
        """See :meth:`IQueryBackend.query_jobs`."""
        caller = caller_of(caller)
        query = self._job_query(conditions, caller)
        if limit.mode == QueryResults.ALL and not _single(query, Attr.OWNER):
            raise LBError(ErrorCode.EINVAL, "queryRes ALL needs a single owner condition")
        self._check_index(query, caller)
        cap = _cap(limit, self.hard_limits.jobs)
        if flags & StatusFlag.NO_STATES and self._own_jobs(query, caller):
            ids = yield self._store_call(self._store.user_job_ids, query[0][0].value,
                                         limit=None if cap is None else cap + 1)
            if not ids:
                raise LBError(ErrorCode.ENOENT, "no matching jobs found")
            ids, error = _limited(ids, cap, limit)
            return JobsAnswer([(job_id, None) for job_id in ids], error)
        records = yield self._matching(query, caller, None if cap is None else cap + 1)
        records, error = _limited(records, cap, limit)
        rows = []
        for rec in records:
            view = None
            if not flags & StatusFlag.NO_STATES:
                view = yield self.view(rec, flags, self.access(caller, rec, flags) or Access.FULL)
            rows.append((rec.job_id, view))
        return JobsAnswer(rows, error)

    @inlineCallbacks
    def job_status(self, job_id, flags, caller):
        """See :meth:`IQueryBackend.job_status`."""
        rec = yield self._store_call(self._store.job_status, job_id)
        access = self.access(caller, rec, flags)
        if access is None:
            raise LBError(ErrorCode.EPERM, "not the owner of the job")
        return (yield self.view(rec, flags, access))

    @inlineCallbacks
    def query_events(self, job_conditions, event_conditions, limit, caller):
        """See :meth:`IQueryBackend.query_events`."""
        caller = caller_of(caller)
        query = self._job_query(job_conditions, caller)
        event_query = self._check_events(event_conditions)
        if limit.mode == QueryResults.ALL and not _single(query, Attr.JOBID):
            raise LBError(ErrorCode.EINVAL, "queryRes ALL needs a single jobid condition")
        self._check_index(query, caller, event_query)
        cap = _cap(limit, self.hard_limits.events)
        records = yield self._matching(query, caller, None)
        events = []
        for rec in records:
            stored = yield self._store_call(self._store.job_events, rec.job_id)
            access = self.access(caller, rec) or Access.FULL
            events += sort_events([self.anonymizer.event(_with_arrival(s), access)
                                   for s in stored if event_matches(s.event, event_query)])
            if cap is not None and len(events) > cap:
                break
        if not events:
            raise LBError(ErrorCode.ENOENT, "no matching events found")
        events, error = _limited(events, cap, limit)
        return EventsAnswer(events, error)

    @inlineCallbacks
    def user_jobs(self, caller):
        """See :meth:`IQueryBackend.user_jobs`."""
        if caller is None:
            raise LBError(ErrorCode.EPERM, "user not authenticated")
        ids = yield self._store_call(self._store.user_job_ids, str(caller))
        if not ids:
            raise LBError(ErrorCode.ENOENT, "no jobs of this user")
        return ids

    @inlineCallbacks
    def sequence_code(self, job_id, source, caller):
        """See :meth:`IQueryBackend.sequence_code` (``source`` is not used)."""
        rec = yield self._store_call(self._store.job_status, job_id)
        if not self.policy.may_read(caller, rec):
            raise LBError(ErrorCode.EPERM, "not the owner of the job")
        code = yield self._store_call(self._store.last_seqcode, job_id)
        if not code:
            raise LBError(ErrorCode.ENOENT, "the job has no sequence code yet")
        return code

    def indexed_attributes(self):
        """See :meth:`IQueryBackend.indexed_attributes`."""
        return succeed([list(index) for index in self.indexes])
