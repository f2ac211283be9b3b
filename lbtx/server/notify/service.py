"""Notifications inside ``lb-server``: the delivery service and its timers.

:class:`NotificationService` is a child of the store service (it runs while the
store is open). It owns the :class:`~.delivery.CallbackDelivery` (started and
stopped with the service), the periodic outbox scan, the purge of expired
registrations (``store.purge_expired``) and the :class:`~.receive.PullReceiver`
of the long-poll endpoint. :class:`WakingStore` wraps the store given to event
intake so that every committed batch wakes the delivery and the pull receivers
at once instead of at the next scan.
"""

from __future__ import annotations

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.logger import Logger

from lbtx.server.notify.delivery import DEFAULT_SCAN_PERIOD, CallbackDelivery
from lbtx.server.notify.receive import PullReceiver

__all__ = ["NotificationService", "WakingStore", "PURGE_PERIOD"]

MINUTE = 60.0
PURGE_PERIOD = 1 * MINUTE


def _treq_client(reactor):
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 4
    pool.cachedConnectionTimeout = 30
    return HTTPClient(Agent(reactor, pool=pool, connectTimeout=10)), pool


class NotificationService(MultiService):
    """Delivery of the outbox, the scan and purge timers (see the module doc)."""

    log = Logger()

    def __init__(self, store, reactor, *, http=None, scan_period: float = DEFAULT_SCAN_PERIOD,
                 purge_period: float = PURGE_PERIOD, **delivery_options):
        super().__init__()
        self.store = store
        self.reactor = reactor
        self._pool = None
        if http is None:
            http, self._pool = _treq_client(reactor)
        self.delivery = CallbackDelivery(store, http, reactor, **delivery_options)
        self.receiver = PullReceiver(store, reactor)
        scan = TimerService(scan_period, self._scan)
        scan.clock = reactor
        scan.setServiceParent(self)
        purge = TimerService(purge_period, self._purge)
        purge.clock = reactor
        purge.setServiceParent(self)

    def wake(self, notif_id: str | None = None) -> None:
        """Something was queued or re-bound: deliver and answer pull receivers now."""
        self.delivery.wake(notif_id)
        self.receiver.wake(notif_id)

    def startService(self):
        self.delivery.start()
        super().startService()

    def stopService(self):
        d = super().stopService()
        d.addBoth(lambda _: self.delivery.stop())
        d.addBoth(lambda _: self.delivery.locks.close())
        self.receiver.stop()
        if self._pool is not None:
            d.addBoth(lambda _: self._pool.closeCachedConnections())
        return d

    def _scan(self):
        return self.delivery.scan()

    def _purge(self):
        if not self.running:
            return None
        d = self.store.purge_expired(int(self.reactor.seconds()))

        def purged(count):
            if count:
                self.log.info("purged {count} expired notification registrations", count=count)
        d.addCallbacks(purged, lambda f: self.log.failure(
            "purging expired notification registrations failed", f))
        return d


class WakingStore:
    """The store as event intake sees it: ``accept_events`` wakes notifications
    after the batch committed; everything else is the store itself."""

    def __init__(self, store, wake):
        self._store = store
        self._wake = wake

    def accept_events(self, *args, **kwargs):
        d = self._store.accept_events(*args, **kwargs)

        def committed(result):
            try:
                self._wake()
            except Exception:
                Logger().failure("waking notifications failed")
            return result
        return d.addCallback(committed)

    def __getattr__(self, name):
        return getattr(self._store, name)
