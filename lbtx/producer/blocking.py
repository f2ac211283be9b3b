"""The blocking producer API: no reactor, plain sockets.

::

    producer = Producer(source="UserInterface")          # logger from the environment
    job = producer.register(JobId.generate("lb.example.org", 9000), jdl="[...]")
    producer.log(job, "Transfer", destination="NetworkServer", ...)  # -> new seqcode
    producer.log_many([(job, "Running", {"node": "wn01"}), ...])     # one round trip
    producer.flush(job)                     # returns once the server has them all

:meth:`Producer.log` returns once the logger has the event on disk;
:meth:`Producer.register` once the job's server stored the registration (and the
logger has its copy). Connections are kept open and reused; a reused connection
that turns out dead is replaced once before the call fails.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from lbtx.producer.address import Address, server_address
from lbtx.producer.context import LOCAL, SYNC, JobContext, ProducerBase
from lbtx.producer.errors import UnavailableError
from lbtx.producer.wire import BlockingConnection

__all__ = ["Producer"]


class Producer(ProducerBase):
    """Logs events through the local logger, blocking. Not thread-safe: use one per
    thread. See :class:`~lbtx.producer.context.ProducerBase` for the parameters."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connections: dict[Address, BlockingConnection] = {}

    def log(self, ctx: JobContext, type_name: str, **attrs) -> str:
        """Log one event of ``type_name`` (attributes by their Python names); return
        the new sequence code. Raises RefusedError, UnavailableError, or
        LBFormatError/TypeError for an event that does not validate (nothing sent)."""
        return self._log(ctx, self._record(ctx, type_name, attrs, text=False))

    def log_many(self, events: Iterable[tuple[JobContext, str, Mapping]]) -> list[str]:
        """Log several events, ``(context, event type, attributes)`` each, in one
        request (several, pipelined, beyond the logger's ``max_batch``); return once
        all are on the logger's disk, with the new sequence code after each event.
        Every event is validated before any is sent; each context advances once
        per event. Raises RefusedError for the first refused event (its ``index``
        and every ``results``; the others may be stored) or UnavailableError."""
        lines, codes = self._records(events)
        if lines:
            self._check(self._send(self.logger, lines), len(lines))
        return codes

    def log_text(self, ctx: JobContext, type_name: str, attrs: Mapping[str, str], *,
                 sync: bool = False) -> str:
        """:meth:`log` with attribute values as texts keyed by schema names. ``sync``:
        the event (flagged SYNC|LOCAL) goes to the job's server first and the call
        returns once the server stored it (then the logger gets its copy)."""
        if not sync:
            return self._log(ctx, self._record(ctx, type_name, attrs, text=True))
        line = self._record(ctx, type_name, attrs, text=True, priority=SYNC | LOCAL)
        self._direct(ctx, line, line)
        return ctx.seqcode

    def register(self, job_id, *, seqcode: str | None = None, jobtype="SIMPLE", jdl: str = "",
                 ns: str = "", nsubjobs: int = 0, seed: str | None = None,
                 exclusive: bool = False, **attrs) -> JobContext:
        """Register ``job_id``: the RegJob reaches the job's server (its store port)
        before this returns, then the logger. Returns the job's context. ``exclusive``:
        refused (``exists``) if the job is registered already."""
        attrs = dict(jobtype=jobtype, jdl=jdl, ns=ns, nsubjobs=nsubjobs, seed=seed, **attrs)
        return self._direct(*self._registration(job_id, seqcode, attrs, text=False,
                                                  exclusive=exclusive))

    def register_text(self, job_id, attrs: Mapping[str, str], *, seqcode: str | None = None,
                      exclusive: bool = False) -> JobContext:
        """:meth:`register` with the RegJob's attributes as texts keyed by schema names."""
        return self._direct(*self._registration(job_id, seqcode, attrs, text=True,
                                                  exclusive=exclusive))

    def flush(self, job=None, *, timeout: int | None = None) -> None:
        """Ask the logger to deliver now what it holds for ``job`` (a context or a
        job id; every job if None) and return once its server has all of it
        (formats.md §4.7). ``timeout``: whole seconds the logger may take (at most
        its ``--sync-timeout``, which is also the default); the call also gives up
        after this producer's ``timeout``. Raises UnavailableError if events still
        wait (they stay with the logger and are delivered later), RefusedError if
        the logger cannot flush (no interlogger in its process)."""
        self._check(self._send(self.logger, [self._flush_line(job, timeout)]))

    def _direct(self, ctx: JobContext, line: bytes, copy: bytes) -> JobContext:
        """``line`` to the job's server (stored, or fail), then ``copy`` to the logger."""
        try:
            self._check(self._send(server_address(ctx.job_id), [line]))
            self._check(self._send(self.logger, [copy]))
        finally:
            ctx.sequence.advance()
        return ctx

    def close(self) -> None:
        """Close the open connections."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _log(self, ctx: JobContext, line: bytes) -> str:
        try:
            self._check(self._send(self.logger, [line]))
        finally:
            ctx.sequence.advance()
        return ctx.seqcode

    def _send(self, address: Address, lines):
        connection = self._connections.get(address)
        if connection is None:
            connection = self._connections[address] = BlockingConnection(address,
                                                                         timeout=self.timeout)
        reused = connection.connected
        try:
            return connection.send(lines)
        except UnavailableError as e:
            if not reused or e.code is not None:
                raise
            return connection.send(lines)  # the kept connection had died: once more, afresh
