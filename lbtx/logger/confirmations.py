"""Synchronous events: the producer's answer waits for the server's (formats.md
§4.3, §4.5, §4.8).

A record whose ``DG.PRIORITY`` has bit 0 or 1 set (``priority & 3``) is
synchronous: the logger appends it to the spool as any other, but answers only
when the server has answered its delivery. :class:`Confirmations` is where the
logger's handler waits and where the in-process interlogger reports: the
handler :meth:`expects` the ``DG.LLLID`` of each durable synchronous line, and
every server reply the interlogger receives is passed to :meth:`settle` with the
lines it answers, which fires the waiters of those lines with the server's
:class:`~lbtx.interlogger.interfaces.Reply`.

A line is reported on its first reply, whatever it says: an ``unknown job``
reaches the producer at once (as upstream's ``ENOENT``) while the interlogger goes
on retrying it in the background for its window, as for any other event. A
producer that hears nothing within the handler's timeout gets a retryable error
(DGLOG: ``EAGAIN``); its event stays in the spool and is delivered all the same.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = ["Confirmations", "SYNC_MASK", "is_synchronous", "is_synchronous_line"]

#: DG.PRIORITY bits asking for synchronous logging (SYNC_COMPAT | SYNC, formats.md §2.6)
SYNC_MASK = 3


def is_synchronous(priority) -> bool:
    """Whether an event's ``priority`` asks for an answer after the server's."""
    try:
        return bool(int(priority) & SYNC_MASK)
    except (TypeError, ValueError):
        return False


_PRIORITY = re.compile(rb"[ \t]DG\.PRIORITY=\"?([0-9]{1,10})")


def is_synchronous_line(line: bytes) -> bool:
    """Whether the spool line ``line`` is a synchronous record (its ``DG.PRIORITY``)."""
    m = _PRIORITY.search(line)
    return m is not None and is_synchronous(m.group(1))


class Confirmations:
    """Waiters for the server's reply to spooled lines, by ``DG.LLLID``.

    :param remember: how many replies to synchronous lines nobody waited for yet
        to keep (0: none). An interlogger of its own hears the server before the
        logger asks for a line (the logger asks once the line is on disk, when the
        interlogger may have sent it already): it keeps the latest replies, and a
        late :meth:`expect` is answered from them.
    """

    log = Logger()

    def __init__(self, clock: IReactorTime, *, remember: int = 0):
        self._clock = clock
        self._waiting: dict[int, list[Deferred]] = {}
        self._remember = remember
        self._recent: OrderedDict[int, object] = OrderedDict()

    @property
    def waiting(self) -> int:
        """How many lines have a producer waiting."""
        return len(self._waiting)

    def expect(self, lllid: int, timeout: float) -> Deferred:
        """A Deferred firing with the server's reply for line ``lllid``; it fails with
        :class:`twisted.internet.defer.TimeoutError` after ``timeout`` seconds
        (and is forgotten), and can be cancelled."""
        if self._recent:
            reply = self._recent.pop(lllid, None)
            if reply is not None:
                return succeed(reply)
        waiters = self._waiting.setdefault(lllid, [])

        def forget(_=None):
            if d in waiters:
                waiters.remove(d)
                if not waiters and self._waiting.get(lllid) is waiters:
                    del self._waiting[lllid]
            return _

        d = Deferred(lambda _: forget())
        waiters.append(d)
        d.addTimeout(timeout, self._clock)
        d.addErrback(forget)
        return d

    def settle(self, entries: Sequence, replies: Sequence) -> None:
        """The server answered ``replies`` for the spool lines ``entries`` (pairwise;
        each has its ``lllid``): fire whoever waits for them."""
        if not self._waiting and not self._remember:
            return
        recent = self._recent
        for entry, reply in zip(entries, replies):
            waiters = self._waiting.pop(entry.lllid, None)
            if waiters:
                for d in waiters:
                    d.callback(reply)
            elif self._remember and is_synchronous_line(entry.line):
                recent[entry.lllid] = reply
                recent.move_to_end(entry.lllid)
                while len(recent) > self._remember:
                    recent.popitem(last=False)
