"""The :class:`~lbtx.server.store.interfaces.INotificationStore` methods of the job
stores: :class:`NotificationStoreMixin` over the SQL of
:mod:`~lbtx.server.store.notify_sql`, and its PostgreSQL form
:class:`PostgresNotifications` (the SQLite store provides its own transactions).
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred, fail

from lbtx.server.anonymize import Access
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify.model import UNSET, Registration, notif_unique
from lbtx.server.store import notify_sql as q
from lbtx.server.store.sql import POSTGRES, Dialect, Work
from lbtx.timeval import Timeval

__all__ = ["NotificationStoreMixin", "PostgresNotifications"]


class NotificationStoreMixin:
    """The :class:`INotificationStore` methods over a store that provides
    ``_notify_dialect``, ``_notify_write(factory)`` and ``_notify_read(factory)``
    (each running the work a factory makes in one transaction)."""

    read_policy: ReadPolicy = ReadPolicy()
    #: the server's lbtx.server.anonymize.Anonymizer (its salt), set by the server;
    #: None: a fixed salt
    anonymizer = None
    _notify_dialect: Dialect

    def _notify_write(self, factory: Callable[[], Work]) -> Deferred:
        raise NotImplementedError

    def _notify_read(self, factory: Callable[[], Work]) -> Deferred:
        raise NotImplementedError

    def _notify_clock(self):
        return self._clock

    def register(self, reg: Registration) -> Deferred:
        d = self._notify_dialect
        try:
            reg = q.normalised(Registration(reg.notif_id, reg.owner, reg.destination,
                                            reg.expires, reg.conditions, reg.job_ids,
                                            reg.flags, 0))
        except (ValueError, TypeError) as e:  # QueryError is a ValueError
            return fail(e)
        return self._notify_write(lambda: q.register(d, reg))

    def registration(self, notif_id: str) -> Deferred:
        d = self._notify_dialect
        try:
            unique = notif_unique(notif_id)
        except ValueError as e:
            return fail(e)
        return self._notify_read(lambda: q.registration(d, unique))

    def update_registration(self, notif_id: str, *, destination=UNSET, expires=UNSET,
                            conditions=UNSET, job_ids=UNSET) -> Deferred:
        d = self._notify_dialect
        changes = {"destination": destination, "expires": expires, "conditions": conditions,
                   "job_ids": job_ids}
        try:
            notif_unique(notif_id)
        except ValueError as e:
            return fail(e)
        return self._notify_write(lambda: q.update(d, notif_id, changes))

    def drop_registration(self, notif_id: str) -> Deferred:
        d = self._notify_dialect
        try:
            unique = notif_unique(notif_id)
        except ValueError as e:
            return fail(e)
        return self._notify_write(lambda: q.drop(d, unique))

    def messages(self, notif_id: str, *, after_seq: int, limit: int) -> Deferred:
        d = self._notify_dialect
        try:
            unique = notif_unique(notif_id)
            after_seq, limit = int(after_seq), max(0, int(limit))
        except (ValueError, TypeError) as e:
            return fail(e)
        return self._notify_read(lambda: q.messages(d, unique, notif_id, after_seq, limit))

    def acknowledge(self, notif_id: str, up_to_seq: int) -> Deferred:
        d = self._notify_dialect
        try:
            unique = notif_unique(notif_id)
            up_to_seq = int(up_to_seq)
        except (ValueError, TypeError) as e:
            return fail(e)
        return self._notify_write(lambda: q.acknowledge(d, unique, notif_id, up_to_seq))

    def registrations(self, owner: str | None = None, *, limit: int | None = None) -> Deferred:
        d = self._notify_dialect
        return self._notify_read(lambda: q.listing(d, owner, limit))

    def queue_bootstrap(self, notif_id: str, caller_may_read=None) -> Deferred:
        d = self._notify_dialect
        try:
            notif_unique(notif_id)
        except ValueError as e:
            return fail(e)
        if caller_may_read is None:
            access_of = self._access_of
        else:
            def access_of(owner, record):
                how = caller_may_read(owner, record)
                return how if isinstance(how, Access) or how is None else (
                    Access.FULL if how else None)
        now = Timeval.from_float(self._notify_clock().seconds())
        return self._notify_write(lambda: q.bootstrap(d, notif_id, access_of, now,
                                                    q.BOOTSTRAP_LIMIT, self.anonymizer))

    def _access_of(self, owner, record):
        policy = self.read_policy
        if hasattr(policy, "access"):
            return policy.access(owner, record)
        return Access.FULL if policy.may_read(owner, record) else None

    def pending_registrations(self, now: int, limit: int, *, after: str | None = None,
                              callbacks_only: bool = False) -> Deferred:
        """As :class:`INotificationStore`; besides, a scan in pages: ``after`` (a
        notification id) starts after that registration, and
        ``callbacks_only`` leaves out registrations without an ``http(s)://``
        destination (pull and legacy ``host:port`` ones)."""
        d = self._notify_dialect
        try:
            now, limit = int(now), max(0, int(limit))
            if after is not None:
                after = notif_unique(after)
        except (ValueError, TypeError) as e:
            return fail(e)
        callbacks_only = bool(callbacks_only)
        work = self._notify_read(lambda: q.pending(d, now, limit, after, callbacks_only))
        return work.addCallback(lambda found: [row[:4] for row in found])

    def purge_expired(self, now: int) -> Deferred:
        d = self._notify_dialect
        try:
            now = int(now)
        except (ValueError, TypeError) as e:
            return fail(e)
        return self._notify_write(lambda: q.purge(d, now))


class PostgresNotifications(NotificationStoreMixin):
    """The notification methods of :class:`lbtx.server.store.postgres.PostgresJobStore`
    (over its connection pool, ``self._pool``)."""

    _notify_dialect = POSTGRES

    def _notify_write(self, factory: Callable[[], Work]) -> Deferred:
        return self._pool.run(factory)

    def _notify_read(self, factory: Callable[[], Work]) -> Deferred:
        return self._pool.run(factory, read_only=True)
