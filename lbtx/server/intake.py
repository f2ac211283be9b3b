"""Event intake: the batch handler behind the server's store port.

Each request of a store connection (box protocol or legacy interlogger framing)
hands its ULM lines to :meth:`IntakeHandler.handle_batch`. Lines are parsed and
validated; the valid ones go to the job store in one call, which applies the
acceptance rules and commits before it answers; the answer holds one result per
line, in order. A line that is not a valid event is answered ``invalid`` with the
reason and loses nothing else of its batch.

Events carry the sender's identity in ``DG.USER`` (the local logger inserts it).
A record without ``DG.USER`` gets the identity of the connection's peer, which is
what direct logging to the server means; it is stored as rewritten with that
``DG.USER``, so that every stored record names its sender.

**Group commit.** Batches are parsed as they arrive; the store then gets them
through a queue: at most ``max_inflight`` store calls run at once, and the
batches that arrived meanwhile (from any connections) go to the store together,
as one call, in arrival order (up to ``max_merged_events`` events and
``max_merged_chars`` characters of records), so one transaction and one commit
serve them all. Each batch is still answered only once everything of its call is
committed. A merged call that fails for any reason but an unavailable database
is run again batch by batch, so that one bad batch fails alone. Requests of one
connection arrive one at a time (the next after the previous one's answer), so
merging never reorders the events of a connection.

**An unavailable database** (:class:`StoreUnavailableError`) fails every batch
of the call with :class:`DatabaseUnavailable`, which is both that error and the
box server's :class:`~lbtx.protocols.box.server.TemporarilyUnavailable`: the
sender gets a retryable error saying that the database is unavailable, and the
server logs one warning line per refused request.
"""

from __future__ import annotations

from collections import deque

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.box.server import TemporarilyUnavailable
from lbtx.protocols.interfaces import IBatchHandler
from lbtx.server.store.interfaces import StoreUnavailableError
from lbtx.server.store_access import store_refusal

__all__ = ["IntakeHandler", "DatabaseUnavailable", "DEFAULT_MAX_INFLIGHT", "DEFAULT_MAX_MERGED_EVENTS",
           "DEFAULT_MAX_MERGED_CHARS"]

#: store calls running at once
DEFAULT_MAX_INFLIGHT = 2
#: most events given to the store in one call
DEFAULT_MAX_MERGED_EVENTS = 2000
#: most characters of records given to the store in one call
DEFAULT_MAX_MERGED_CHARS = 16 * 1024 * 1024


def _decoded(raw) -> tuple[str, bool]:
    """The text of a line, and whether it is valid UTF-8 throughout (then every job
    id read from it is too, and :func:`_check_ids_encodable` can be skipped)."""
    if not isinstance(raw, bytes):
        return raw, False
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape"), False


def _check_ids_encodable(ev) -> None:
    """Job ids are keys of the store and must be valid UTF-8 text; a record read
    from undecodable bytes would otherwise fail its whole batch in the store."""
    ids = [ev.job_id] + [getattr(ev, a.py_name) for a in ev.attr_specs if a.type == "jobid"]
    for jid in ids:
        if jid is None:
            continue
        try:
            str(jid).encode("utf-8")
        except UnicodeEncodeError:
            raise LBFormatError("a job id is not valid UTF-8", code="BAD_JOBID") from None


class DatabaseUnavailable(StoreUnavailableError, TemporarilyUnavailable):
    """A batch refused because the database is unavailable (the store's
    :class:`StoreUnavailableError`, as the store port answers it)."""

    @classmethod
    def of(cls, error: StoreUnavailableError) -> "DatabaseUnavailable":
        if isinstance(error, cls):
            return error
        detail = str(error).strip()
        return cls("the database is unavailable" + (f" ({detail})" if detail else "")
                   + "; retry later")


def _unavailable(f: Failure) -> Failure:
    if f.check(StoreUnavailableError):
        return Failure(DatabaseUnavailable.of(f.value))
    return f


class _Queued:
    """One batch's valid events waiting for (or in) a store call."""

    __slots__ = ("events", "texts", "chars", "alone", "deferred")

    def __init__(self, events: list, texts: list[str]):
        self.events = events
        self.texts = texts
        self.chars = sum(len(t) for t in texts)
        #: run in a call of its own (after a merged call it was in failed)
        self.alone = False
        self.deferred: defer.Deferred | None = None


@implementer(IBatchHandler)
class IntakeHandler:
    """Parses, validates and stores batches of events.

    :param store: an :class:`~lbtx.server.store.interfaces.IJobStore`.
    :param max_line: the longest record accepted, in characters.
    :param policy: the server's :class:`~lbtx.server.authz.ReadPolicy`; with a
        policy file, the store peer needs the rights of formats §11.5 per event
        (:func:`lbtx.server.store_access.store_refusal`).
    :param max_inflight: store calls running at once (see the module docstring).
    :param max_merged_events: most events of one store call; a batch over it goes alone.
    :param max_merged_chars: most characters of records in one store call (idem).
    """

    log = Logger()

    def __init__(self, store, *, max_line: int = ulm.DEFAULT_MAX_LENGTH, policy=None,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT,
                 max_merged_events: int = DEFAULT_MAX_MERGED_EVENTS,
                 max_merged_chars: int = DEFAULT_MAX_MERGED_CHARS):
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self._store = store
        self._max_line = max_line
        self._policy = policy
        self._max_inflight = max_inflight
        self._max_events = max_merged_events
        self._max_chars = max_merged_chars
        self._queue: deque[_Queued] = deque()
        self._inflight = 0
        self._holding = False
        #: store calls made (merged or not), for statistics and tests
        self.store_calls = 0

    def handle_batch(self, peer_identity, lines):
        """See :meth:`IBatchHandler.handle_batch`."""
        results: list[Result | None] = [None] * len(lines)
        events, texts, where = [], [], []
        for i, raw in enumerate(lines):
            try:
                text, clean = _decoded(raw)
                ev = ulm.parse(text, max_length=self._max_line)
                if ev.user is None:
                    # the stored record must name its sender like every other one
                    ev.user = peer_identity
                    text = ulm.format(ev, newline=False)
                ev.validate()
                if not clean:
                    _check_ids_encodable(ev)
            except LBFormatError as e:
                results[i] = Result.invalid(str(e), e.code)
                continue
            refusal = store_refusal(self._policy, peer_identity, ev) if self._policy else ""
            if refusal:
                self.log.warn("refused {event} for {job} from {peer}: {why}", event=ev.type_name,
                              job=str(ev.job_id), peer=peer_identity, why=refusal)
                results[i] = Result(ResultCode.NOT_OWNER, refusal)
                continue
            events.append(ev)
            texts.append(text)
            where.append(i)
        invalid = len(lines) - len(events)
        if invalid:
            self.log.info("{count} invalid event(s) from {peer}", count=invalid, peer=peer_identity)
        if not events:
            return defer.succeed(results)
        d = self._enqueue(events, texts)

        def answered(outcomes):
            for i, outcome in zip(where, outcomes):
                results[i] = Result.from_delivery(outcome.delivery, outcome.reason)
            return results
        return d.addCallbacks(answered, _unavailable)

    # --- the group-commit queue ----------------------------------------------------------

    def _enqueue(self, events: list, texts: list[str]) -> defer.Deferred:
        """A Deferred firing with the store's outcomes for ``events`` once they are
        committed; cancelling it withdraws a batch that has not gone to the store yet."""
        item = _Queued(events, texts)
        item.deferred = defer.Deferred(lambda _: self._withdraw(item))
        self._queue.append(item)
        self._drain()
        return item.deferred

    def _withdraw(self, item: _Queued) -> None:
        try:
            self._queue.remove(item)
        except ValueError:
            pass  # already with the store: its outcome will be dropped

    def _drain(self) -> None:
        """Start store calls for the queued batches while there is room."""
        while self._queue and self._inflight < self._max_inflight and not self._holding:
            group = [self._queue.popleft()]
            count, chars = len(group[0].events), group[0].chars
            while self._queue and not group[0].alone and not self._queue[0].alone:
                nxt = self._queue[0]
                if (count + len(nxt.events) > self._max_events
                        or chars + nxt.chars > self._max_chars):
                    break
                group.append(self._queue.popleft())
                count += len(nxt.events)
                chars += nxt.chars
            self._call(group)

    def _call(self, group: list[_Queued]) -> None:
        self._inflight += 1
        self.store_calls += 1
        if len(group) == 1:
            events, texts = group[0].events, group[0].texts
        else:
            events = [ev for item in group for ev in item.events]
            texts = [t for item in group for t in item.texts]
        self.log.debug("store call of {batches} batches, {count} events", batches=len(group),
                       count=len(events))
        d = defer.maybeDeferred(self._store.accept_events, events, texts)
        d.addBoth(self._called, group)

    def _called(self, result, group: list[_Queued]) -> None:
        self._inflight -= 1
        self._holding = True  # answers may bring new batches: let them gather first
        try:
            # a batch cancelled while with the store (its request deadline, its
            # connection gone) has been answered already: its outcome is dropped
            if not isinstance(result, Failure):
                start = 0
                for item in group:
                    end = start + len(item.events)
                    if not item.deferred.called:
                        item.deferred.callback(result[start:end])
                    start = end
            elif len(group) > 1 and not result.check(StoreUnavailableError):
                self.log.info("a merged store call of {count} batches failed ({error}); "
                              "running them one by one", count=len(group),
                              error=result.getErrorMessage())
                for item in reversed(group):
                    if not item.deferred.called:
                        item.alone = True
                        self._queue.appendleft(item)
            else:
                for item in group:
                    if not item.deferred.called:
                        item.deferred.errback(result)
        finally:
            self._holding = False
        self._drain()
