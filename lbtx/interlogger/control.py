"""The control socket of an interlogger running as a process of its own.

A logger started with ``--no-interlogger`` shares its spool with a separate
``twistd lb-interlogger``; what the in-process interlogger does for the logger's
handler directly, this one does over a Unix socket (``--control``, box protocol):

* a flush command (formats.md §4.7, :mod:`lbtx.commands`) is carried out by
  :meth:`~lbtx.interlogger.delivery.SpoolDelivery.flush` and answered accepted
  when everything is delivered; ``invalid`` with detail ``IL_EVENTS_WAITING``
  when events still wait after its ``DG.TIMEOUT``; ``IL_SYS`` if it failed;
* a confirmation (``DG.COMMAND="confirm" DG.LLLID=n``) is answered with the
  server's result for spool line ``n`` once the server has answered its
  delivery (:class:`~lbtx.logger.confirmations.Confirmations`, which remembers
  recent replies: the line may have been delivered before the logger asks), or
  ``invalid`` with detail ``TIMEOUT`` after its ``DG.TIMEOUT``.

Every line gets its own result; the call never fails as a whole. The logger's
side is :mod:`lbtx.logger.interlogger_link`.
"""

from __future__ import annotations

import re

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from lbtx import commands
from lbtx.errors import LBFormatError
from lbtx.logger.handler import confirmed_result
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.interfaces import IBatchHandler

__all__ = ["CONTROL_COMMANDS", "ControlHandler", "EVENTS_WAITING", "IL_SYS", "TIMEOUT",
           "jobs_waiting"]

CONTROL_COMMANDS = (commands.FLUSH, commands.CONFIRM)
#: ``detail`` of the ``invalid`` results that are not about the line itself
EVENTS_WAITING, IL_SYS, TIMEOUT = "IL_EVENTS_WAITING", "IL_SYS", "TIMEOUT"
_ACCEPTED = Result(ResultCode.STORED)
_WAITING = re.compile(r"\Aevents of (\d+) job")


def _waiting_result(jobs: int, wait: float) -> Result:
    return Result.invalid(f"events of {jobs} job(s) still wait for delivery after {wait:g} s",
                          EVENTS_WAITING)


def jobs_waiting(result: Result) -> int | None:
    """How many jobs' events still wait, by a flush's ``EVENTS_WAITING`` result
    (at least 1); None for any other result."""
    if result.accepted or result.detail != EVENTS_WAITING:
        return None
    found = _WAITING.match(result.reason)
    return int(found.group(1)) if found else 1


@implementer(IBatchHandler)
class ControlHandler:
    """Flushes and confirmations for ``delivery`` (a running SpoolDelivery) and
    ``confirmations`` (fed by its replies).

    :param max_wait: the longest ``DG.TIMEOUT`` honoured, in seconds (less than the
        control port's request timeout), and the wait when none is given.
    """

    log = Logger()

    def __init__(self, delivery, confirmations, *, max_wait: float):
        self._delivery = delivery
        self._confirmations = confirmations
        self._max_wait = max_wait

    def handle_batch(self, peer_identity, lines):
        """See :meth:`IBatchHandler.handle_batch`."""
        return defer.gatherResults([self._one(line) for line in lines])

    def _one(self, raw) -> defer.Deferred:
        text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        try:
            command = commands.parse_command(text, known=CONTROL_COMMANDS)
        except LBFormatError as e:
            return defer.succeed(Result.invalid(str(e), e.code))
        if command is None:
            return defer.succeed(Result.invalid("the control socket takes commands only",
                                                "EVENT_UNDEF"))
        wait = self._max_wait if command.timeout is None else min(command.timeout,
                                                                  self._max_wait)
        if command.name == commands.FLUSH:
            return self._flush(command, wait)
        return self._confirm(command.lllid, wait)

    def _flush(self, command, wait: float) -> defer.Deferred:
        def done(waiting: int) -> Result:
            return _waiting_result(waiting, wait) if waiting else _ACCEPTED

        def failed(failure) -> Result:
            self.log.failure("flush failed", failure)
            return Result.invalid(f"the flush failed: {failure.getErrorMessage()}", IL_SYS)

        d = defer.maybeDeferred(self._delivery.flush, command.job_id, timeout=wait)
        return d.addCallbacks(done, failed)

    def _confirm(self, lllid: int, wait: float) -> defer.Deferred:
        def late(failure) -> Result:
            failure.trap(defer.TimeoutError)
            return Result.invalid(f"no answer from the server within {wait:g} s", TIMEOUT)

        d = self._confirmations.expect(lllid, wait)
        return d.addCallbacks(confirmed_result, late)
