"""Stand-ins for :class:`lbtx.logger.durable.DiskWorker` that need no thread.

:class:`SynchronousWorker` runs each call at once (its Deferred has fired when
``run`` returns). :class:`ManualWorker` holds the calls until the test releases
them, so a test can see what is queued while a batch is "on the disk".
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred, maybeDeferred

__all__ = ["ManualWorker", "SynchronousWorker"]


class SynchronousWorker:
    """Runs blocking calls inline, on the caller's thread."""

    def __init__(self):
        self.calls = 0

    def run(self, func: Callable, *args, **kwargs) -> Deferred:
        self.calls += 1
        return maybeDeferred(func, *args, **kwargs)

    def stop(self) -> None:
        pass


class ManualWorker:
    """Queues blocking calls; :meth:`release` runs the oldest and fires its Deferred."""

    def __init__(self):
        self.queued: list[tuple[Callable, tuple, dict, Deferred]] = []

    def run(self, func: Callable, *args, **kwargs) -> Deferred:
        d: Deferred = Deferred()
        self.queued.append((func, args, kwargs, d))
        return d

    def release(self, count: int = 1) -> None:
        """Run the ``count`` oldest queued calls, in order."""
        for _ in range(count):
            func, args, kwargs, d = self.queued.pop(0)
            maybeDeferred(func, *args, **kwargs).chainDeferred(d)

    def release_all(self) -> None:
        """Run queued calls (including ones queued meanwhile) until none is left."""
        while self.queued:
            self.release()

    def stop(self) -> None:
        pass
