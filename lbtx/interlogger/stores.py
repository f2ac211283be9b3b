"""What the interlogger keeps per spool file, and its tunables.

A :class:`SpoolStore` is one spool file's delivery state; a :class:`SpoolEntry`
one of its lines in flight. Rewinding a file bumps its ``generation``: older
entries become stale, the queue skips them and their replies are ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from twisted.internet.interfaces import IDelayedCall

from lbtx.interlogger import reader
from lbtx.interlogger.interfaces import Destination
from lbtx.interlogger.queue import QueuePolicy
from lbtx.jobid import JobId
from lbtx.logger import layout

__all__ = ["DeliveryConfig", "SpoolEntry", "SpoolStore"]

SECOND = 1.0
MINUTE = 60 * SECOND


@dataclass(frozen=True)
class DeliveryConfig:
    """Tunables of :class:`SpoolDelivery` (times in seconds)."""

    rescan_period: float = 1 * MINUTE
    #: Bytes read from a spool file in one pass.
    read_bytes: int = 1024 * 1024
    #: A destination's queue takes no more events from the spool beyond this many.
    queue_high: int = 10000
    #: How long to wait before re-sending the events of a job the server did not know.
    unknown_job_retry: float = 5 * SECOND
    #: How long a job may stay unknown before its events go to the quarantine folder.
    unknown_job_window: float = 5 * MINUTE
    queue_policy: QueuePolicy = field(default_factory=QueuePolicy)


class SpoolEntry:
    """One spool line in flight."""

    __slots__ = ("store", "generation", "start", "end", "line", "lllid", "done")

    def __init__(self, store: "SpoolStore", start: int, line: bytes):
        self.store = store
        self.generation = store.generation
        self.start = start
        self.end = start + len(line)
        self.line = line[:-1]  # what is sent: the record without its LF
        self.lllid = layout.lllid_of(line)
        self.done = False

    @property
    def current(self) -> bool:
        """False once the file was rewound or dropped: a stale entry is not sent and
        its reply is ignored."""
        return self.generation == self.store.generation and not self.store.removed


class SpoolStore:
    """The state of one spool file."""

    def __init__(self, info: reader.StoreInfo):
        self.stem = info.stem
        self.path = info.path
        self.jobid: JobId | None = info.jobid
        self.raw_jobid = info.raw_jobid
        self.destination = Destination(*info.jobid.store_address) if info.jobid else None
        self.committed = info.position
        self.read_offset = info.position.offset
        self.size_seen = info.size
        self.generation = 0
        self.outstanding: deque[SpoolEntry] = deque()
        self.reading = False
        self.more = False
        self.purging = False
        self.removed = False
        self.hold: IDelayedCall | None = None
        self.unknown_since: float | None = None

    def learn_job(self, jobid: JobId, raw: bytes) -> None:
        """The job of a file first found with no complete line naming it (the
        logger had created it and not yet written its first line)."""
        self.jobid = jobid
        self.raw_jobid = raw
        self.destination = Destination(*jobid.store_address)

    @property
    def jobid_text(self) -> str:
        return str(self.jobid) if self.jobid is not None else "-"

    @property
    def idle(self) -> bool:
        return not (self.reading or self.outstanding or self.purging or self.hold)
