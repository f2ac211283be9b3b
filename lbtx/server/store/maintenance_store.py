"""Purge, dump and zombie lookups of the job stores (formats.md §6.8-6.9):
:class:`MaintenanceStoreMixin` over :mod:`~lbtx.server.store.maintenance_sql`.

A store that mixes it in provides ``_notify_dialect``, ``_notify_write`` and
``_notify_read`` (one transaction per call; the notification mixin's hooks), and
on PostgreSQL ``_lock(job_ids)``, the per-job advisory locks intake takes, so that
a purge never races an intake transaction on the same jobs.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, inlineCallbacks

from lbtx.jobid import JobId
from lbtx.server.store import maintenance_sql as m

__all__ = ["MaintenanceStoreMixin", "PURGE_CHUNK"]

#: jobs purged per transaction
PURGE_CHUNK = 200


class MaintenanceStoreMixin:

    def _maintenance_lock(self):
        lock = getattr(self, "_lock", None)
        if lock is None:
            return None
        return lambda ids: lock({JobId.parse(j) for j in ids})

    def purge_candidates(self, prefix: str, now: int, timeouts: dict | None = None) -> Deferred:
        """Ids of this server's jobs (``prefix`` ``https://host:port/``) old enough to
        purge under ``timeouts`` (JobState -> seconds; see
        :func:`~lbtx.server.store.maintenance_sql.effective_timeouts`)."""
        d = self._notify_dialect
        return self._notify_read(lambda: m.purge_candidates(d, prefix, now, timeouts or {}))

    @inlineCallbacks
    def purge(self, job_ids: list[str], now: int, *, really: bool = True, dump: bool = False):
        """Purge ``job_ids`` with their subjobs, :data:`PURGE_CHUNK` jobs a
        transaction; fires with ``(purged ids, dump lines)`` (lines are
        ``(arrived_sec, arrived_usec, ULM line)``)."""
        d = self._notify_dialect
        lock = self._maintenance_lock()
        purged, lines = [], []
        ids = list(dict.fromkeys(str(j) for j in job_ids))
        for i in range(0, len(ids), PURGE_CHUNK):
            chunk = ids[i:i + PURGE_CHUNK]
            run = self._notify_write if really else self._notify_read
            got, chunk_lines = yield run(
                lambda chunk=chunk: m.purge_jobs(
                    d, chunk, now, really=really, dump=dump, lock=lock,
                    notify=getattr(self, "read_policy", None),
                    anonymizer=getattr(self, "anonymizer", None)))
            purged += got
            lines += chunk_lines
        return purged, lines

    def dump_events(self, prefix: str, after_sec: int, upto_sec: int) -> Deferred:
        d = self._notify_dialect
        return self._notify_read(lambda: m.dump_events(d, prefix, after_sec, upto_sec))

    def is_zombie(self, job_id) -> Deferred:
        d = self._notify_dialect
        return self._notify_read(lambda: m.zombie(d, str(job_id)))

    def server_state(self, name: str) -> Deferred:
        d = self._notify_dialect
        return self._notify_read(lambda: m.server_state(d, name))

    def set_server_state(self, name: str, value: str) -> Deferred:
        d = self._notify_dialect
        return self._notify_write(lambda: m.set_server_state(d, name, value))
