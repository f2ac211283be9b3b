"""What both producer APIs share: the job context and the record building.

A :class:`JobContext` is one job as one component logs it: its id and its
:class:`~lbtx.producer.sequence.Sequence`. :class:`ProducerBase` turns
``(context, event type, attributes)`` into a validated ULM line, checks the
results that come back, and advances the sequence after every attempt (formats.md
§3.2: "after every logged event, successful or not").
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence as Seq

from lbtx import seqcode as _seqcode
from lbtx.commands import flush_record
from lbtx.jobid import JobId
from lbtx.producer.address import logger_address
from lbtx.producer.errors import RefusedError, UnavailableError
from lbtx.producer.records import make_record, record_from_text, source_of
from lbtx.producer.sequence import Sequence
from lbtx.producer.wire import DEFAULT_TIMEOUT
from lbtx.schema import ENUMS, Level

__all__ = ["DIRECT", "EXCL", "JobContext", "LOCAL", "ProducerBase", "SYNC", "default_user"]

#: Logging flags of DG.PRIORITY (formats.md §2.6).
SYNC, LOCAL, DIRECT, EXCL = 2, 4, 16, 64


def default_user() -> str:
    """The identity a local logger gives this process's user (``unix:LOGIN``)."""
    return "unix:" + getpass.getuser()


@dataclass
class JobContext:
    """One job as this producer logs it."""

    job_id: JobId
    sequence: Sequence

    @property
    def seqcode(self) -> str:
        """The code the next event of this job carries (pass it to the next component)."""
        return self.sequence.current


class ProducerBase:
    """Settings and record building shared by :class:`~lbtx.producer.Producer`
    and :class:`~lbtx.producer.DeferredProducer`.

    :param logger: the local logger's address (see :mod:`lbtx.producer.address`).
    :param source: the component this producer is (``UserInterface``, ``LRMS`` ...).
    :param user: ``DG.USER`` of the events; by default left to the logger, and on
        registrations (which also go straight to the server) :func:`default_user`.
    :param host: ``HOST`` of the events; by default this machine's FQDN, looked
        up at the first event.
    :param timeout: seconds for each connection attempt and each answer.
    """

    def __init__(self, logger: str | None = None, *, source="UserInterface",
                 user: str | None = None, host: str | None = None,
                 src_instance: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 environ: Mapping[str, str] | None = None, level=Level.SYSTEM):
        self.logger = logger_address(logger, environ)
        self.source = source_of(source)
        self.user = user
        self.host = host
        self.src_instance = src_instance
        self.timeout = timeout
        self.level = level
        self._environ = environ

    def context(self, job_id, seqcode: str | None = None, *, increment: bool = True) -> JobContext:
        """Start logging for ``job_id`` with the code received from the previous
        component (``seqcode``, else EDG_WLL_SEQUENCE / EDG_WL_SEQUENCE); with
        ``increment`` false the first event carries that code unchanged."""
        job = job_id if isinstance(job_id, JobId) else JobId.parse(str(job_id))
        return JobContext(job, Sequence(self.source, seqcode, environ=self._environ,
                                        increment=increment))

    def _registration_context(self, job_id, seqcode: str | None) -> JobContext:
        code = seqcode or str(_seqcode.ZERO_PBS if self.source.name.startswith("PBS")
                              else _seqcode.ZERO_GLITE)
        return self.context(job_id, code)

    def _record(self, ctx: JobContext, type_name: str, attrs: Mapping, *, text: bool,
                user: str | None = None, priority: int = LOCAL) -> bytes:
        """The ULM line of an event; ``DG.PRIORITY`` is the path's logging flag
        (formats.md §2.6): LOCAL (4) through the logger, DIRECT (16) for a
        registration, which goes to the server itself first."""
        if self.host is None:  # the FQDN, looked up once, not once per event
            self.host = socket.getfqdn()
        common = dict(user=user or self.user, host=self.host, src_instance=self.src_instance,
                      priority=priority, level=self.level)
        if text:
            line = record_from_text(type_name, ctx.job_id, self.source, ctx.seqcode, attrs,
                                    **common)
        else:
            line = make_record(type_name, ctx.job_id, self.source, ctx.seqcode, **common, **attrs)
        return line.encode("utf-8", "surrogateescape")

    def _registration(self, job_id, seqcode: str | None, attrs: Mapping, *, text: bool,
                      exclusive: bool) -> tuple[JobContext, bytes, bytes]:
        """The context of a new job and its RegJob: the line for the server
        (DIRECT, with EXCL if ``exclusive``) and the same record for the logger,
        without EXCL (the server answers its delivery ``duplicate``, not ``exists``)."""
        ctx = self._registration_context(job_id, seqcode)
        attrs = dict(attrs)
        if not text and isinstance(attrs.get("jobtype"), str):
            attrs["jobtype"] = ENUMS["RegJobJobtype"].from_text(attrs["jobtype"])
        flags = DIRECT | (EXCL if exclusive else 0)
        line = self._record(ctx, "RegJob", attrs, text=text, user=self.user or default_user(),
                            priority=flags)
        copy = line.replace(b" DG.PRIORITY=%d " % flags, b" DG.PRIORITY=%d " % DIRECT, 1)
        return ctx, line, copy

    def _records(self, events: Iterable[tuple[JobContext, str, Mapping]]
                 ) -> tuple[list[bytes], list[str]]:
        """The lines of several events and the code each context has after its
        event. Each context advances once per event as its line is built (the line
        is then sent, successful or not); if any event does not validate, every
        context is put back as it was and the error raised: nothing is sent."""
        lines: list[bytes] = []
        codes: list[str] = []
        saved: dict[int, tuple[Sequence, tuple]] = {}
        try:
            for ctx, type_name, attrs in events:
                seq = ctx.sequence
                if id(seq) not in saved:
                    saved[id(seq)] = (seq, seq.snapshot())
                lines.append(self._record(ctx, type_name, attrs, text=False))
                codes.append(seq.advance())
        except BaseException:
            for seq, state in saved.values():
                seq.restore(state)
            raise
        return lines, codes

    def _flush_line(self, job, timeout: int | None) -> bytes:
        """The flush command record for ``job`` (a context, a job id, or None: every job)."""
        if self.host is None:
            self.host = socket.getfqdn()
        job_id = job.job_id if isinstance(job, JobContext) else job
        return flush_record(job_id, timeout=timeout, host=self.host).encode(
            "utf-8", "surrogateescape")

    @staticmethod
    def _check(results: Seq, count: int = 1) -> None:
        if len(results) != count:
            raise UnavailableError(f"{len(results)} answers for {count} events")
        for index, result in enumerate(results):
            if not result.accepted:
                raise RefusedError(result.code, result.reason, index=index,
                                   results=list(results))
