"""Decoded job statuses by their stored JSON text, so that a status is decoded once.

Every batch the server accepts reads the ``jobs`` rows of its jobs and rebuilds
their statuses from the JSON column (:func:`lbtx.status.from_json`): for a job
that receives events steadily that is the text the previous batch wrote. The
:class:`StatusCache` maps that text to the status it decodes to. The writer puts
the status it has just encoded (:func:`lbtx.server.store.rows.job_row`), the
reader puts what it had to decode; a lookup hands out an independent copy.

The key is the whole text, so an entry can never be stale: whatever wrote the
row (another server on the same database, a rolled-back transaction that never
wrote it at all), the same text decodes to the same status. That the writer may
put the status it encoded relies on the JSON round trip being exact, which
tests/test_status.py checks for every status of every scenario.

The cache is bounded by the total length of its keys (least recently used
entries go first) and skips texts longer than a fraction of that bound; lookups
and insertions hold a lock, as SQLite's store runs its work in threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from lbtx.status import JobStatus

__all__ = ["StatusCache", "DEFAULT_MAX_BYTES", "statuses"]

#: total length of the cached texts; the decoded statuses take about twice as much
#: again (measured on the scenarios' statuses), so about 24 MiB in all by default
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class StatusCache:
    """Statuses by their JSON text, least recently used out first.

    :param max_bytes: the most text kept; a text longer than an eighth of it is
        not kept at all. 0 turns the cache off.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self._entries: OrderedDict[str, JobStatus] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.resize(max_bytes)

    def resize(self, max_bytes: int) -> None:
        """Change the bound (0: off), dropping what no longer fits."""
        with self._lock:
            self.max_bytes = max(0, max_bytes)
            self._largest = self.max_bytes // 8
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes:
            old, _ = self._entries.popitem(last=False)
            self._bytes -= len(old)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The total length of the cached texts."""
        return self._bytes

    def get(self, text: str) -> JobStatus | None:
        """A copy of the status ``text`` decodes to, or None if it is not here."""
        with self._lock:
            status = self._entries.get(text)
            if status is None:
                self.misses += 1
                return None
            self._entries.move_to_end(text)
            self.hits += 1
        return status.copy()

    def put(self, text: str, status: JobStatus, *, evict: bool = True) -> None:
        """Remember that ``text`` decodes to ``status`` (a copy is kept). With
        ``evict=False`` only if that needs no room made: what a read decoded does
        not push out what the writers keep, so a scan over many jobs cannot empty
        the cache of the jobs receiving events."""
        with self._lock:
            if not self.max_bytes or len(text) > self._largest:
                return
            if text in self._entries:
                self._entries.move_to_end(text)
                return
            if not evict and self._bytes + len(text) > self.max_bytes:
                return
            self._entries[text] = status.copy()
            self._bytes += len(text)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


#: the process's cache, shared by both stores' reads and writes (``twistd lb-server
#: --status-cache`` sizes it)
statuses = StatusCache()
