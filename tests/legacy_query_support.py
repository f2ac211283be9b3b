"""A recording :class:`IQueryBackend` over an ``lbtx replay`` job table, for tests.

:class:`ReplayBackend` answers the legacy query service from the jobs and events of
a :class:`~lbtx.replay.Replay`: jobs are readable by their owner (or by everybody
with ``noauth=True``), conditions are evaluated with
:func:`lbtx.query.conditions.job_matches`, limits follow formats.md §7.7. Every call
is recorded in ``calls``; with ``hold=True`` calls return Deferreds that only the
test fires (``held``; cancelled ones also go to ``cancelled``), to exercise timeouts
and cancellation.
"""

from __future__ import annotations

import io
from pathlib import Path

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from lbtx import subject
from lbtx.acceptance import MemoryJobTable, thorough_histogram
from lbtx.protocols.legacy_query import (ErrorCode, EventsAnswer, IQueryBackend, JobsAnswer,
                                         JobView, LBError, StatusFlag)
from lbtx.protocols.legacy_query.messages import QueryResults
from lbtx.query.conditions import job_matches
from lbtx.query.events import event_matches
from lbtx.replay import Replay

from scenario_support import load, scenario_lines


def replay_scenario(path: Path, replay: Replay | None = None) -> Replay:
    """Feed a scenario file's events through ``lbtx replay``'s engine, keeping the events."""
    if replay is None:
        replay = Replay()
        replay.table = MemoryJobTable(keep_events=True)
    text = "".join(scenario_lines(load(path)))
    for _ in replay.feed_stream(io.StringIO(text), path.name):
        pass
    return replay


@implementer(IQueryBackend)
class ReplayBackend:
    """See the module docstring."""

    def __init__(self, replay: Replay | None = None, *, noauth: bool = False,
                 indices=(), hold: bool = False, hard_limit: int = 0):
        if replay is None:
            replay = Replay()
            replay.table = MemoryJobTable(keep_events=True)
        self.replay = replay
        self.noauth = noauth
        self.indices = list(indices)
        self.hold = hold
        self.hard_limit = hard_limit
        self.calls: list[tuple] = []
        self.held: list[Deferred] = []
        self.cancelled: list[Deferred] = []

    # --- helpers -------------------------------------------------------------
    @property
    def table(self):
        return self.replay.table

    def _answer(self, value):
        if self.hold:
            d = Deferred(self.cancelled.append)
            self.held.append(d)
            return d
        return succeed(value)

    def _may_read(self, rec, caller) -> bool:
        return self.noauth or (caller is not None and subject.same(rec.owner, caller))

    def view(self, rec, flags: StatusFlag) -> JobView:
        view = JobView(rec.status)
        if flags & StatusFlag.CHILDREN:
            view.children = list(rec.children)
        if flags & StatusFlag.CHILDHIST_THOROUGH:
            view.children_hist = thorough_histogram(self.table, rec)
        if flags & StatusFlag.CHILDSTAT:
            view.children_states = [self.view(self.table.get(c), StatusFlag.NONE)
                                    for c in rec.children if self.table.get(c) is not None]
        if flags & StatusFlag.HISTORY:
            view.history = list(self.table.events.get(rec.job_id, []))
        return view

    def _limited(self, items, limit):
        cap = min(x for x in (limit.soft_limit, self.hard_limit) if x) if (
            limit.soft_limit or self.hard_limit) else 0
        if limit.mode == QueryResults.ALL or not cap or len(items) <= cap:
            return items, None
        if limit.mode == QueryResults.LIMITED:
            return items[:cap], (int(ErrorCode.E2BIG), "Query result size limit exceeded")
        raise LBError(ErrorCode.E2BIG, "Query result size limit exceeded")

    def _matching_jobs(self, conditions, caller):
        matched = [rec for rec in self.table.jobs.values() if job_matches(rec.status, conditions)]
        if not matched:
            raise LBError(ErrorCode.ENOENT, "no matching jobs found")
        readable = [rec for rec in matched if self._may_read(rec, caller)]
        if not readable:
            raise LBError(ErrorCode.EPERM, "not allowed to read any matching job")
        return sorted(readable, key=lambda rec: rec.job_id.unique)

    # --- IQueryBackend ---------------------------------------------------------
    def query_jobs(self, conditions, flags, limit, caller):
        self.calls.append(("query_jobs", conditions, flags, limit, caller))
        try:
            recs, error = self._limited(self._matching_jobs(conditions, caller), limit)
        except LBError as e:
            return fail(e)
        return self._answer(JobsAnswer([(rec.job_id, self.view(rec, flags)) for rec in recs],
                                       error))

    def job_status(self, job_id, flags, caller):
        self.calls.append(("job_status", job_id, flags, caller))
        rec = self.table.get(job_id)
        if rec is None:
            return fail(LBError(ErrorCode.ENOENT, "no such job"))
        if not self._may_read(rec, caller):
            return fail(LBError(ErrorCode.EPERM, "not the owner"))
        return self._answer(self.view(rec, flags))

    def query_events(self, job_conditions, event_conditions, limit, caller):
        self.calls.append(("query_events", job_conditions, event_conditions, limit, caller))
        try:
            recs = self._matching_jobs(job_conditions, caller)
            events = [ev for rec in recs for ev in self.table.events.get(rec.job_id, [])
                      if event_matches(ev, event_conditions)]
            if not events:
                raise LBError(ErrorCode.ENOENT, "no matching events found")
            events, error = self._limited(events, limit)
        except LBError as e:
            return fail(e)
        return self._answer(EventsAnswer(events, error))

    def user_jobs(self, caller):
        self.calls.append(("user_jobs", caller))
        ids = [rec.job_id for rec in self.table.jobs.values() if subject.same(rec.owner, caller)]
        if not ids:
            return fail(LBError(ErrorCode.ENOENT, "no jobs of this user"))
        return self._answer(ids)

    def sequence_code(self, job_id, source, caller):
        self.calls.append(("sequence_code", job_id, source, caller))
        rec = self.table.get(job_id)
        if rec is None or not self.table.events.get(job_id):
            return fail(LBError(ErrorCode.ENOENT, "no such job"))
        if not self._may_read(rec, caller):
            return fail(LBError(ErrorCode.EPERM, "not the owner"))
        return self._answer(self.table.events[job_id][-1].seqcode)

    def indexed_attributes(self):
        self.calls.append(("indexed_attributes",))
        return self._answer(self.indices)
