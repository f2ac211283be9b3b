"""Job stores: the durable home of events and job records (see :mod:`.interfaces`).

:func:`open_store` picks the backend from the ``--db`` URL of ``lb-server``:
``sqlite:///PATH`` for the embedded store, ``postgresql://...`` for PostgreSQL.
"""

from __future__ import annotations

from lbtx.server.store.interfaces import (IJobStore, StoredEvent, StoreError,
                                          StoreUnavailableError, UnknownJobError)

__all__ = ["IJobStore", "StoredEvent", "StoreError", "StoreUnavailableError", "UnknownJobError",
           "open_store"]


def open_store(url: str, reactor, *, lock_slots: int | None = None, clock=None) -> IJobStore:
    """The (not yet started) store the URL names."""
    if url.startswith("sqlite:///"):
        from lbtx.server.store.sqlite import SQLiteJobStore
        # sqlite:///relative/path, sqlite:////absolute/path
        return SQLiteJobStore(url[len("sqlite:///"):], reactor, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        from lbtx.server.store.postgres import DEFAULT_LOCK_SLOTS, PostgresJobStore
        return PostgresJobStore(url, reactor, clock=clock,
                                lock_slots=lock_slots or DEFAULT_LOCK_SLOTS)
    raise ValueError(f"unknown database URL {url!r}: expected sqlite:///PATH or postgresql://...")
