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
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.interfaces import IBatchHandler
from lbtx.server.store_access import store_refusal

__all__ = ["IntakeHandler"]


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


@implementer(IBatchHandler)
class IntakeHandler:
    """Parses, validates and stores batches of events.

    :param store: an :class:`~lbtx.server.store.interfaces.IJobStore`.
    :param max_line: the longest record accepted, in characters.
    :param policy: the server's :class:`~lbtx.server.authz.ReadPolicy`; with a
        policy file, the store peer needs the rights of formats §11.5 per event
        (:func:`lbtx.server.store_access.store_refusal`).
    """

    log = Logger()

    def __init__(self, store, *, max_line: int = ulm.DEFAULT_MAX_LENGTH, policy=None):
        self._store = store
        self._max_line = max_line
        self._policy = policy

    def handle_batch(self, peer_identity, lines):
        """See :meth:`IBatchHandler.handle_batch`."""
        results: list[Result | None] = [None] * len(lines)
        events, texts, where = [], [], []
        for i, raw in enumerate(lines):
            try:
                text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
                ev = ulm.parse(text, max_length=self._max_line)
                if ev.user is None:
                    # the stored record must name its sender like every other one
                    ev.user = peer_identity
                    text = ulm.format(ev, newline=False)
                ev.validate()
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
        d = defer.maybeDeferred(self._store.accept_events, events, texts)

        def answered(outcomes):
            for i, outcome in zip(where, outcomes):
                results[i] = Result.from_delivery(outcome.delivery, outcome.reason)
            return results
        return d.addCallback(answered)
