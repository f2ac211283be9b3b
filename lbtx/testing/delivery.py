"""An in-memory stand-in for the servers' event intake, behind the delivery interfaces.

:class:`FakeNetwork` provides :class:`~lbtx.interlogger.interfaces.IDeliveryConnector`;
each destination is a :class:`FakeServer` whose behaviour the test sets:

* ``refuse``: connection attempts fail at once (a server that is down);
* ``hang`` = ``"connect"``, ``"send"`` or ``"ack"``: that step never completes
  (a server that accepts connections and never answers), until cancelled;
* ``drop``: the next batches fail with a lost connection before any event is stored;
* ``lose_ack``: batches are stored, then the connection drops before the answer;
* ``drop_after = n``: the next batch stores its first ``n`` events, answers for
  them only, and the connection drops (a partial acknowledgement);
* ``unknown_jobs``, ``not_owner``: job ids answered with UNKNOWN_JOB / NOT_OWNER;
* ``invalid``: a predicate on lines answered with INVALID;
* ``manual``: replies wait until :meth:`FakeServer.answer_all`.

The server deduplicates like the real one: an event whose record (the line
without its DG.LLLID prefix) was stored before is answered DUPLICATE. It records
every batch and every stored record, so tests can check "exactly once".
"""

from __future__ import annotations

from typing import Callable, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from zope.interface import implementer

from lbtx.interlogger.interfaces import (DeliveryResult, Destination, IDeliveryChannel,
                                         IDeliveryConnector, Reply, Submission)
from lbtx.logger import layout

__all__ = ["FakeChannel", "FakeNetwork", "FakeServer", "record_of"]


def record_of(line: bytes) -> bytes:
    """A spool line's record: without the DG.LLLID prefix (and LF)."""
    line = line.rstrip(b"\n")
    if line.startswith(layout.LINE_PREFIX):
        return line.split(b" ", 1)[1]
    return line


class FakeServer:
    """One destination's intake. See the module docstring for the knobs."""

    def __init__(self, destination: Destination):
        self.destination = destination
        self.refuse = False
        self.hang: str | None = None
        self.drop = False
        self.lose_ack = False
        self.drop_after: int | None = None
        self.unknown_jobs: set[str] = set()
        self.not_owner: set[str] = set()
        self.invalid: Callable[[bytes], bool] = lambda line: False
        self.manual = False
        #: Every batch received, in order.
        self.batches: list[list[bytes]] = []
        #: Records stored, in order, each once.
        self.stored: list[bytes] = []
        self._stored_set: set[bytes] = set()
        self.channels: list[FakeChannel] = []
        self.attempts = 0
        self._answers: list[tuple[Deferred, list[Reply]]] = []
        self._count_waiters: list[tuple[int, Deferred]] = []

    def when_stored(self, count: int) -> Deferred:
        """Fire once ``count`` distinct records are stored (for tests on a real reactor)."""
        d: Deferred = Deferred()
        self._count_waiters.append((count, d))
        self._check_waiters()
        return d

    def _check_waiters(self) -> None:
        ready = [(n, d) for n, d in self._count_waiters if len(self.stored) >= n]
        for item in ready:
            self._count_waiters.remove(item)
            item[1].callback(None)

    def connect(self) -> Deferred:
        self.attempts += 1
        if self.refuse:
            return fail(ConnectionRefusedError(str(self.destination)))
        if self.hang == "connect":
            return Deferred()
        channel = FakeChannel(self)
        self.channels.append(channel)
        return succeed(channel)

    def answer(self, line: bytes) -> Reply:
        """What this server says to ``line`` (storing it when it is new)."""
        jobid = (layout.raw_jobid(line) or b"").decode("utf-8", "replace")
        if jobid in self.unknown_jobs:
            return Reply(DeliveryResult.UNKNOWN_JOB, "job not registered")
        if jobid in self.not_owner:
            return Reply(DeliveryResult.NOT_OWNER, "job belongs to another server")
        if self.invalid(line):
            return Reply(DeliveryResult.INVALID, "refused")
        record = record_of(line)
        if record in self._stored_set:
            return Reply(DeliveryResult.DUPLICATE)
        self._stored_set.add(record)
        self.stored.append(record)
        if self._count_waiters:
            self._check_waiters()
        return Reply(DeliveryResult.STORED)

    def answer_all(self) -> None:
        """Fire the replies held back in ``manual`` mode."""
        answers, self._answers = self._answers, []
        for d, replies in answers:
            if not d.called:
                d.callback(replies)


@implementer(IDeliveryChannel)
class FakeChannel:
    """One connection to a :class:`FakeServer`."""

    def __init__(self, server: FakeServer):
        self.server = server
        self.closed = False
        self.sent: list[list[bytes]] = []

    def _broken(self, d: Deferred) -> None:
        self.closed = True

    def send_batch(self, lines: Sequence[bytes]) -> Submission:
        server = self.server
        lines = list(lines)
        self.sent.append(lines)
        if self.closed:
            lost = fail(ConnectionLost("channel closed"))
            return Submission(succeed(None), lost)
        server.batches.append(lines)
        if server.hang == "send":
            return Submission(Deferred(self._broken), Deferred(self._broken))
        if server.hang == "ack":
            return Submission(succeed(None), Deferred(self._broken))
        if server.drop:
            self.closed = True
            return Submission(succeed(None), fail(ConnectionLost("dropped")))
        if server.lose_ack:
            for line in lines:
                server.answer(line)
            self.closed = True
            return Submission(succeed(None), fail(ConnectionLost("dropped after storing")))
        if server.drop_after is not None:
            count, server.drop_after = server.drop_after, None
            replies = [server.answer(line) for line in lines[:count]]
            self.closed = True
            return Submission(succeed(None), succeed(replies))
        replies = [server.answer(line) for line in lines]
        if server.manual:
            d: Deferred = Deferred(self._broken)
            server._answers.append((d, replies))
            return Submission(succeed(None), d)
        return Submission(succeed(None), succeed(replies))

    def close(self) -> None:
        self.closed = True


@implementer(IDeliveryConnector)
class FakeNetwork:
    """Destinations in memory: ``network.server(destination)`` to set one up."""

    def __init__(self):
        self.servers: dict[Destination, FakeServer] = {}

    def server(self, destination: Destination) -> FakeServer:
        if destination not in self.servers:
            self.servers[destination] = FakeServer(destination)
        return self.servers[destination]

    def connect(self, destination: Destination) -> Deferred:
        return self.server(destination).connect()
