"""The logger's side of a separate interlogger's control socket.

With ``--no-interlogger`` the logger's handler has no delivery in its process to
flush or to hear the server from. :class:`InterloggerLink` stands in for both, over
the control socket of ``twistd lb-interlogger`` (:mod:`lbtx.interlogger.control`):

* :meth:`flush` has the interlogger flush and fires with the number of jobs whose
  events still wait (0: all delivered); it fails if the interlogger cannot be
  reached or the flush failed (the producer then gets ``EDG_WLL_IL_SYS``);
* :meth:`expect` fires with the server's reply for a spool line, as
  :meth:`Confirmations.expect <lbtx.logger.confirmations.Confirmations.expect>`
  does, or fails with ``TimeoutError``. If the interlogger cannot be reached, the
  line is answered as stored on the logger's disk (what the logger does with no
  interlogger at all), and the logger says so in its log, once until it is
  reachable again.
"""

from __future__ import annotations

import math

from twisted.internet import defer
from twisted.logger import Logger

from lbtx.commands import MAX_TIMEOUT, confirm_record, flush_record
from lbtx.interlogger.control import TIMEOUT, jobs_waiting
from lbtx.interlogger.interfaces import DeliveryResult, Reply
from lbtx.producer import DeferredProducer
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.box.messages import ResultCode

__all__ = ["InterloggerLink"]

_ON_DISK = Reply(DeliveryResult.STORED, "")


def _seconds(timeout: float) -> int:
    """``timeout`` as a command's whole seconds (what commands accept at most)."""
    return min(MAX_TIMEOUT, max(0, math.ceil(timeout)))


class InterloggerLink:
    """The control socket ``path`` of the interlogger delivering this logger's spool.

    :param timeout: the longest a flush or confirmation is asked to wait; answers
        are awaited 30 s longer than that.
    """

    log = Logger()

    def __init__(self, reactor, path: str, *, timeout: float):
        self.path = path
        self._producer = DeferredProducer(reactor, path, host="localhost", timeout=timeout + 30)
        self._reachable = True

    def flush(self, job_id=None, *, timeout: float) -> defer.Deferred:
        """See the module docstring."""
        line = flush_record(job_id, timeout=_seconds(timeout), host="localhost")

        def answered(results) -> int:
            self._reached()
            result = results[0]
            if result.accepted:
                return 0
            waiting = jobs_waiting(result)
            if waiting is not None:
                return waiting
            raise RuntimeError(f"the interlogger at {self.path} did not flush: {result.reason}")

        return self._producer.send_records([line.encode()]).addCallback(answered)

    def expect(self, lllid: int, timeout: float) -> defer.Deferred:
        """See the module docstring."""
        line = confirm_record(lllid, timeout=_seconds(timeout), host="localhost")

        def answered(results) -> Reply:
            self._reached()
            result = results[0]
            if result.code is ResultCode.INVALID and result.detail == TIMEOUT:
                raise defer.TimeoutError(result.reason)
            return Reply(DeliveryResult[result.code.name], result.reason)

        def unreachable(failure) -> Reply:
            failure.trap(UnavailableError)
            if self._reachable:
                self._reachable = False
                self.log.warn("cannot reach the interlogger at {path} ({error}): synchronous "
                              "events are answered once they are on disk",
                              path=self.path, error=failure.getErrorMessage())
            return _ON_DISK

        d = self._producer.send_records([line.encode()])
        return d.addCallbacks(answered, unreachable)

    def close(self) -> None:
        self._producer.close()

    def _reached(self) -> None:
        if not self._reachable:
            self._reachable = True
            self.log.info("the interlogger at {path} answers again", path=self.path)
