"""Stand-ins for :class:`lbtx.logger.durable.DiskWorker` that need no thread.

:class:`SynchronousWorker` runs each call at once (its Deferred has fired when
``run`` returns). :class:`ManualWorker` holds the calls until the test releases
them, so a test can see what is queued while a batch is "on the disk"; it can
also run a call without answering it yet (:meth:`ManualWorker.run_next`), as a
writer thread does while the reactor has not yet heard of the result.
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
        self.unanswered: list[tuple[Deferred, Deferred]] = []  # (result, the caller's)

    def run(self, func: Callable, *args, **kwargs) -> Deferred:
        d: Deferred = Deferred()
        self.queued.append((func, args, kwargs, d))
        return d

    def release(self, count: int = 1) -> None:
        """Run the ``count`` oldest queued calls, in order, and answer each (after
        any call that ran unanswered before it)."""
        for _ in range(count):
            self.run_next()
            self.answer_all()

    def release_all(self) -> None:
        """Run queued calls (including ones queued meanwhile) until none is left."""
        self.answer_all()
        while self.queued:
            self.release()

    def run_next(self) -> None:
        """Run the oldest queued call but keep its result from the caller for now."""
        func, args, kwargs, d = self.queued.pop(0)
        self.unanswered.append((maybeDeferred(func, *args, **kwargs), d))

    def answer_all(self) -> None:
        """Fire the callers' Deferreds of the calls run so far, oldest first."""
        while self.unanswered:
            result, d = self.unanswered.pop(0)
            result.chainDeferred(d)

    def stop(self) -> None:
        pass
