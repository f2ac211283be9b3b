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

The answer comes only after every line of the batch is on disk. If any append fails (disk full, read-only spool) the whole batch fails
with that :class:`~lbtx.logger.errors.SpoolWriteError`: the producer gets an
error (``ENOSPC`` on the DGLOG framing, a retryable ``internal`` error on the box
protocol), never OK. Lines of the batch that did reach the disk are delivered
anyway; the producer's resend is a duplicate the server drops.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.gss.errors import NoPeerIdentityError
from lbtx.gss.peer import peer_identity
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.interfaces import IBatchHandler

__all__ = ["SpoolingHandler", "peer_identifier"]

_STORED = Result(ResultCode.STORED)


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

    def __init__(self, spool, *, max_line: int = ulm.DEFAULT_MAX_LENGTH):
        self._spool = spool
        self._max_line = max_line

    def stamp(self, peer_identity: str, raw: bytes) -> tuple:
        """``(job id, record bytes)`` of one line, stamped; raises LBFormatError.
        A record that names its user is kept byte for byte."""
        if isinstance(raw, bytes):
            text = raw.decode("utf-8", "surrogateescape")
        else:
            text, raw = raw, raw.encode("utf-8", "surrogateescape")
        ev = ulm.parse(text, max_length=self._max_line)
        if ev.user is None:
            ev.user = peer_identity
            raw = ulm.format(ev, newline=False).encode("utf-8", "surrogateescape")
        ev.validate()
        return ev.job_id, raw

    def handle_batch(self, peer_identity, lines):
        """See :meth:`IBatchHandler.handle_batch`."""
        results: list[Result | None] = [None] * len(lines)
        entries, where = [], []
        for i, raw in enumerate(lines):
            try:
                entries.append(self.stamp(peer_identity, raw))
            except LBFormatError as e:
                results[i] = Result.invalid(str(e), e.code)
                continue
            where.append(i)
        invalid = len(lines) - len(entries)
        if invalid:
            self.log.info("{count} invalid event(s) from {peer}", count=invalid, peer=peer_identity)
        if not entries:
            return defer.succeed(results)

        def appended(outcomes):
            for i, outcome in zip(where, outcomes):
                if isinstance(outcome, Exception):
                    return failed(Failure(outcome))
                results[i] = _STORED
            return results

        def failed(failure):
            self.log.warn("cannot spool events from {peer}: {error}", peer=peer_identity,
                          error=failure.getErrorMessage())
            return failure
        return self._spool.append_many(entries).addCallbacks(appended, failed)
