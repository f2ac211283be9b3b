"""One delivery queue per destination server: batches, deadlines, back-off.

A :class:`DeliveryQueue` holds the events bound for one destination, in order, and
drives one connection through an Automat machine (docs/interlogger.md draws it)::

    idle ──wake──▶ connecting ──connected──▶ ready ──wake──▶ sending ──sent──▶ awaiting ack
      ▲               │                      ▲ │                 │                 │
      │          connect failed /            │ └─idle timeout─▶ idle          acked │ (all)
      │          timeout                     └──────────────────────────────────────┘
      │               ▼                                      send failed /    ack failed /
      └──────── backing off ◀──────────────────────────────── timeout          timeout / partial
                     │ retry
                     └──────▶ connecting

Every network step has a deadline (``Deferred.addTimeout`` on the injected
clock): connecting, sending, and waiting for the acknowledgement. A step that
fails or times out closes the connection, puts the unacknowledged events back at
the head of the queue and waits ``Backoff.delay(n)`` (exponential, jittered)
before connecting again. Nothing is ever taken off the queue except by a reply:
the sink hears of every reply and decides (commit, retry later, quarantine).

Queues share nothing, so a destination that is down, or accepts connections and
never answers, delays only its own events.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from lbtx.interlogger._queue_machine import QueueCore, build_machine
from lbtx.interlogger.backoff import Backoff
from lbtx.interlogger.interfaces import Destination, IDeliveryConnector, Reply

__all__ = ["DeliveryQueue", "QueueItem", "QueuePolicy", "Sink"]

SECOND = 1.0
MINUTE = 60 * SECOND


class QueueItem(Protocol):
    """What a queue carries: a line to send, and whether it is still wanted."""

    line: bytes

    @property
    def current(self) -> bool: ...


#: ``sink(items, replies)``: ``replies[i]`` answers ``items[i]``.
Sink = Callable[[Sequence[QueueItem], Sequence[Reply]], None]


@dataclass(frozen=True)
class QueuePolicy:
    """Batch sizes and deadlines of a queue (seconds)."""

    max_batch_lines: int = 500
    max_batch_bytes: int = 1024 * 1024
    #: A batch smaller than ``max_batch_lines`` waits until its oldest event has
    #: been queued this long (0: sent at once). Fewer, larger batches cost the
    #: server a transaction each; resent events never wait.
    linger: float = 0.0
    connect_timeout: float = 60 * SECOND
    send_timeout: float = 60 * SECOND
    ack_timeout: float = 60 * SECOND
    #: An idle connection is closed after this long.
    idle_timeout: float = 1 * MINUTE
    backoff: Backoff = Backoff()


_Machine = build_machine()


class DeliveryQueue:
    """The events bound for ``destination``, and the one connection that carries them.

    :param connector: opens channels (:class:`IDeliveryConnector`).
    :param clock: the reactor's time, for deadlines and back-off.
    :param sink: called with each batch's items and their replies.
    :param random: the jitter source, ``random() -> [0, 1)``.
    """

    log = Logger()

    def __init__(self, destination: Destination, connector: IDeliveryConnector, *,
                 clock: IReactorTime, sink: Sink, policy: QueuePolicy = QueuePolicy(),
                 random: Callable[[], float] = _random.random):
        self.destination = destination
        self._core = QueueCore(destination, connector, clock, sink, policy, random, self.log)
        self._machine = _Machine(self._core)

    def put(self, items: Iterable[QueueItem]) -> None:
        """Queue ``items`` (in order) and get them delivered."""
        core = self._core
        before = len(core.pending)
        core.pending.extend(items)
        if len(core.pending) > before:
            if not before and core.first_pending_at is None:
                core.first_pending_at = core.clock.seconds()
            self._machine.wake()

    def hurry(self) -> None:
        """Deliver what is queued now (a flush): without waiting for a fuller batch,
        and, if the destination is backing off after a failure, without waiting for
        the rest of the delay."""
        core = self._core
        core.first_pending_at = None
        if core.pending or core.batch:
            self._machine.hurry()

    @property
    def load(self) -> int:
        """Events queued or in flight."""
        return len(self._core.pending) + len(self._core.batch)

    @property
    def failures(self) -> int:
        """Failed attempts in a row (0 after a success)."""
        return self._core.failures

    @property
    def connected(self) -> bool:
        return self._core.channel is not None

    def stop(self) -> None:
        """Stop: cancel the step under way and close the connection. Queued events
        are dropped from memory only (they are still in the spool)."""
        self._machine.stop()
