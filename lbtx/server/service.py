"""The store as a service: the database is opened before anything listens."""

from __future__ import annotations

from lbtx.gated_service import GatedService

__all__ = ["StoreService"]


class StoreService(GatedService):
    """Owns an :class:`~lbtx.server.store.interfaces.IJobStore`; its children (the
    listening services) run only while the store is open."""

    what = "job store"

    def __init__(self, store, reactor):
        super().__init__(reactor)
        self.store = store

    def open(self):
        return self.store.start()

    def close(self):
        return self.store.stop()
