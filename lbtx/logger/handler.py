"""The local logger's batch handler: validate, stamp, append durably, answer.

:class:`SpoolingHandler` is the :class:`~lbtx.protocols.interfaces.IBatchHandler`
behind the logger's port (box protocol and legacy ``DGLOG``). For each line it

1. parses and validates the event (:func:`lbtx.ulm.parse`); a bad line is answered
   ``invalid`` with the reason and nothing of it is stored;
2. stamps it: a record without ``DG.USER`` gets the peer's identity (the Unix
   user on the local socket, the certificate subject under TLS, the configured
   identity on plain TCP);
3. appends it to the job's spool file: the valid lines of a batch together
   (:meth:`lbtx.logger.spool.Spool.append_many`, one Deferred per batch).

The answer comes only after every line of the batch is on disk. A synchronous
line (``DG.PRIORITY & 3``, formats.md §4.3) is answered, when the handler has
``confirmations`` (the interlogger runs in this process), with the server's own
result for it: the handler waits for the server's reply to its delivery
(:mod:`lbtx.logger.confirmations`) for up to ``sync_timeout`` seconds, and then
fails the batch with a retryable error (the line stays spooled and is delivered
all the same). Without ``confirmations`` a synchronous line is answered as soon
as it is on disk, as any other.

A command record (``DG.TYPE="command"``, :mod:`lbtx.commands`) is not spooled: a
flush is handed to ``flush`` (the in-process interlogger's
:meth:`~lbtx.interlogger.delivery.SpoolDelivery.flush`) once the batch's events
are on disk, and answered when the job's events, or every job's, are delivered:
as accepted, or after its ``DG.TIMEOUT`` (at most ``sync_timeout``) with the
retryable ``EDG_WLL_IL_EVENTS_WAITING`` (DGLOG 1419). Without an interlogger in
the process a flush is refused (``IL_SYS``, 1418); any other command is invalid.

If any append fails (disk full, read-only spool) the whole batch fails with that
:class:`~lbtx.logger.errors.SpoolWriteError`: the producer gets an error
(``ENOSPC`` on the DGLOG framing, a retryable ``internal`` error on the box
protocol), never OK. Lines of the batch that did reach the disk are delivered
anyway; the producer's resend is a duplicate the server drops.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbtx import commands, ulm
from lbtx.errors import LBFormatError
from lbtx.gss.errors import NoPeerIdentityError
from lbtx.gss.peer import peer_identity
from lbtx.logger.confirmations import is_synchronous
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.box.server import TemporarilyUnavailable
from lbtx.protocols.interfaces import IBatchHandler
from lbtx.protocols.legacy_framing.codes import EDG_WLL_IL_EVENTS_WAITING, EDG_WLL_IL_SYS

__all__ = ["SpoolingHandler", "peer_identifier"]

_STORED = Result(ResultCode.STORED)

#: seconds a synchronous producer waits for the server's answer, by default
DEFAULT_SYNC_TIMEOUT = 60.0


def confirmed_result(reply) -> Result:
    """The result a synchronous producer gets for the server's ``reply``: the
    result code of the same name (the names the box channel reads replies by)."""
    code = ResultCode.__members__.get(reply.result.name, ResultCode.INVALID)
    return Result(code, reply.detail if not code.accepted else "")


def peer_identifier(configured: str):
    """An ``identify(transport) -> str`` for the logger's ports: the proven identity
    of the peer (Unix peer credentials, TLS, Kerberos), else ``configured``."""

    def identify(transport) -> str:
        try:
            return peer_identity(transport).display
        except NoPeerIdentityError:
            return configured
    return identify


@implementer(IBatchHandler)
class SpoolingHandler:
    """Appends the valid events of each batch to ``spool`` (a started
    :class:`~lbtx.logger.spool.Spool`).

    :param max_line: the longest record accepted, in characters.
    """

    log = Logger()

    def __init__(self, spool, *, max_line: int = ulm.DEFAULT_MAX_LENGTH, confirmations=None,
                 sync_timeout: float = DEFAULT_SYNC_TIMEOUT, flush=None):
        self._spool = spool
        self._max_line = max_line
        self._confirmations = confirmations
        self._sync_timeout = sync_timeout
        self._flush = flush
        self._said_unconfirmed = False

    def stamp(self, peer_identity: str, raw: bytes) -> tuple:
        """``(job id, record bytes, synchronous)`` of one line, stamped; raises
        LBFormatError. A record that names its user is kept byte for byte."""
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "surrogateescape")
        else:
            text, raw = raw, raw.encode("utf-8", "surrogateescape")
        ev = ulm.parse(text, max_length=self._max_line)
        if ev.user is None:
            ev.user = peer_identity
            raw = ulm.format(ev, newline=False).encode("utf-8", "surrogateescape")
        ev.validate()
        return ev.job_id, raw, is_synchronous(ev.priority)

    def handle_batch(self, peer_identity, lines):
        """See :meth:`IBatchHandler.handle_batch`."""
        results: list[Result | None] = [None] * len(lines)
        entries, where, synchronous, flushes = [], [], [], []
        for i, raw in enumerate(lines):
            try:
                job_id, record, sync = self.stamp(peer_identity, raw)
            except LBFormatError as e:
                command = self._command(raw)
                if isinstance(command, commands.Command):
                    flushes.append((i, command))
                else:
                    results[i] = command or Result.invalid(str(e), e.code)
                continue
            if sync:
                if self._confirmations is not None:
                    synchronous.append(len(entries))
                elif not self._said_unconfirmed:
                    self._said_unconfirmed = True
                    self.log.info("synchronous events are answered once they are on disk: "
                                  "no interlogger runs in this process to hear the server")
            entries.append((job_id, record))
            where.append(i)
        invalid = len(lines) - len(entries) - len(flushes)
        if invalid:
            self.log.info("{count} invalid event(s) from {peer}", count=invalid, peer=peer_identity)
        if not entries:
            return self._flushed(results, flushes, peer_identity) if flushes else \
                defer.succeed(results)

        def appended(outcomes):
            for i, outcome in zip(where, outcomes):
                if isinstance(outcome, Exception):
                    return failed(Failure(outcome))
                results[i] = _STORED
            if synchronous:  # the flushes (if any) follow the server's answers
                d = self._confirm([(where[k], outcomes[k].lllid) for k in synchronous],
                                  results, peer_identity)
                return d.addCallback(self._flushed, flushes, peer_identity) if flushes else d
            return self._flushed(results, flushes, peer_identity) if flushes else results

        def failed(failure):
            self.log.warn("cannot spool events from {peer}: {error}", peer=peer_identity,
                          error=failure.getErrorMessage())
            return failure
        return self._spool.append_many(entries).addCallbacks(appended, failed)

    def _command(self, raw) -> "commands.Command | Result | None":
        """The command of a line that is a command record, or the Result refusing
        it; None for a line that is not one (its parse error stands)."""
        text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        if not commands.is_command(text):
            return None
        try:
            return commands.parse_command(text, max_length=self._max_line)
        except LBFormatError as e:
            return Result.invalid(str(e), e.code)

    def _flushed(self, results: list, flushes: list[tuple[int, "commands.Command"]],
                 peer_identity: str):
        """``results`` once every flush command of the batch has done its work
        (formats.md §4.7): answered as accepted when everything was delivered, the
        batch failed with ``EDG_WLL_IL_EVENTS_WAITING`` when events still wait after
        the command's timeout (at most ``sync_timeout``), with ``IL_SYS`` when the
        flush failed (a separate interlogger out of reach), refused with ``IL_SYS``
        when the handler has no ``flush``."""
        if self._flush is None:
            for i, _ in flushes:
                results[i] = Result.invalid(
                    "this logger cannot flush: no interlogger runs in its process "
                    "(a separate lb-interlogger delivers on its own)", "IL_SYS")
            return defer.succeed(results)
        timeouts = [self._sync_timeout if c.timeout is None else min(c.timeout, self._sync_timeout)
                    for _, c in flushes]
        pending = [defer.maybeDeferred(self._flush, c.job_id, timeout=t)
                   for (_, c), t in zip(flushes, timeouts)]

        def done(waiting: list[int]):
            if any(waiting):
                self.log.info("flush from {peer}: events of {count} job(s) still wait for "
                              "delivery after {timeout} s", peer=peer_identity,
                              count=max(waiting), timeout=max(timeouts))
                raise TemporarilyUnavailable(
                    f"events of {max(waiting)} job(s) still wait for delivery after "
                    f"{max(timeouts):g} s; they stay spooled and will be delivered",
                    errno=EDG_WLL_IL_EVENTS_WAITING)
            for i, _ in flushes:
                results[i] = _STORED
            return results

        def failed(failure):
            failure.trap(defer.FirstError)
            why = failure.value.subFailure.getErrorMessage()
            self.log.warn("flush from {peer} failed: {error}", peer=peer_identity, error=why)
            raise TemporarilyUnavailable(f"the interlogger could not flush: {why}",
                                         errno=EDG_WLL_IL_SYS)

        d = defer.gatherResults(pending, consumeErrors=True)
        return d.addCallbacks(done, failed)

    def _confirm(self, waiting: list[tuple[int, int]], results: list, peer_identity: str):
        """``results`` once the server has answered for each ``(index, lllid)`` line."""
        expected = [self._confirmations.expect(lllid, self._sync_timeout)
                    for _, lllid in waiting]

        def answered(replies):
            for (i, _), reply in zip(waiting, replies):
                results[i] = confirmed_result(reply)
            return results

        def unanswered(failure):
            failure.trap(defer.FirstError)
            for d in expected:
                d.cancel()
            failure.value.subFailure.trap(defer.TimeoutError)
            self.log.warn("no answer from the server within {timeout} s for {count} "
                          "synchronous event(s) from {peer}; they stay spooled",
                          timeout=self._sync_timeout, count=len(waiting), peer=peer_identity)
            raise TemporarilyUnavailable(
                f"the server has not answered within {self._sync_timeout:g} s; the event is "
                "stored locally and will be delivered")

        d = defer.gatherResults(expected, consumeErrors=True)
        return d.addCallbacks(answered, unanswered)
