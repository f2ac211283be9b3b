"""Pull receive: the long poll behind ``GET /api/notifications/<unique>/messages``.

A registration without a destination keeps its messages in the outbox until its
owner fetches them. :meth:`PullReceiver.receive` first acknowledges (deletes)
every message with ``seq <= after`` - the client asks with the last seq it has
processed, so asking again is the acknowledgement - then answers with the next
messages at once if there are any, else as soon as some are queued (:meth:`wake`
after intake commits, and a store poll every ``poll`` seconds for messages queued
by other server processes), or with none after ``wait`` seconds.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

__all__ = ["PullReceiver", "MAX_WAIT", "MAX_MESSAGES"]

SECOND = 1.0
MAX_WAIT = 60 * SECOND        # longest wait of one poll
MAX_MESSAGES = 1000           # messages of one answer
POLL = 1 * SECOND             # store poll while waiting


class PullReceiver:
    """Long polls of pull registrations (see the module doc)."""

    log = Logger()

    def __init__(self, store, clock, *, poll: float = POLL):
        self.store = store
        self.clock = clock
        self.poll = poll
        self._waiters: set[Deferred] = set()

    def wake(self, notif_id: str | None = None) -> None:
        """Messages may have been queued: every waiting poll looks again."""
        waiters, self._waiters = self._waiters, set()
        for d in waiters:
            if not d.called:
                d.callback(None)

    def stop(self) -> None:
        self.wake()

    def _nap(self, seconds: float) -> Deferred:
        """Fire after ``seconds`` or at the next :meth:`wake`, whichever is first."""
        d = Deferred()
        self._waiters.add(d)
        call = self.clock.callLater(seconds, lambda: d.called or d.callback(None))

        def done(result):
            self._waiters.discard(d)
            if call.active():
                call.cancel()
            return result
        d.addBoth(done)
        return d

    @inlineCallbacks
    def receive(self, notif_id: str, *, after: int, wait: float, limit: int = MAX_MESSAGES):
        """Acknowledge up to ``after``, then fire with the next messages (maybe none,
        after ``wait`` seconds) as a list of :class:`~.model.Message`."""
        if after > 0:
            yield self.store.acknowledge(notif_id, after)
        deadline = self.clock.seconds() + max(0.0, min(wait, MAX_WAIT))
        limit = max(1, min(limit, MAX_MESSAGES))
        while True:
            messages = yield self.store.messages(notif_id, after_seq=after, limit=limit)
            left = deadline - self.clock.seconds()
            if messages or left <= 0:
                return list(messages)
            reg = yield self.store.registration(notif_id)
            if reg is None or reg.expires <= self.clock.seconds():
                return []
            yield self._nap(min(self.poll, left))
