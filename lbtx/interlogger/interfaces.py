"""What a delivery queue needs from the network: a connector and a channel.

The interlogger's queues (:mod:`lbtx.interlogger.queue`) talk to a bookkeeping
server only through these two interfaces, so the box-protocol client (or the
legacy framing of formats.md §5.12, or the in-memory fake of
:mod:`lbtx.testing.delivery`) plugs in without changing them.

Delivery is in batches. A channel takes a batch of spool lines (each the ULM
record as stored, without its line feed), writes it, and later fires with one
:class:`Reply` per line, in order: what the server did with that event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

__all__ = ["DELIVERED", "REFUSED", "DeliveryProtocolError", "DeliveryResult", "Destination", "IDeliveryChannel",
           "IDeliveryConnector", "Reply", "Submission"]


class DeliveryResult(enum.Enum):
    """The server's answer for one event."""

    #: Stored now.
    STORED = "stored"
    #: Stored before (a re-delivery after a lost acknowledgement): done.
    DUPLICATE = "duplicate"
    #: The job is not registered (yet): the registration may still be on its way.
    UNKNOWN_JOB = "unknown job"
    #: The server does not own this job: it will never take the event.
    NOT_OWNER = "not owner"
    #: A registration for a job that exists already: done.
    EXISTS = "exists"
    #: The server refuses the event as malformed or not allowed: it never will take it.
    INVALID = "invalid"


#: Results after which the event is delivered and its spool position may pass it.
DELIVERED = frozenset({DeliveryResult.STORED, DeliveryResult.DUPLICATE, DeliveryResult.EXISTS})
#: Results after which the event can never be delivered: it goes to the quarantine folder.
REFUSED = frozenset({DeliveryResult.NOT_OWNER, DeliveryResult.INVALID})


@dataclass(frozen=True)
class Reply:
    """One event's answer: the result and the server's words (if any)."""

    result: DeliveryResult
    detail: str = ""


@dataclass(frozen=True, order=True)
class Destination:
    """A bookkeeping server's event intake: the job id's host and port + 1."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Submission:
    """A batch handed to a channel: two Deferreds, one per phase.

    ``sent`` fires (with None) once the batch has been written to the network, or
    fails if it could not be; a channel that cannot tell fires it at once.
    ``replies`` fires with one :class:`Reply` (or bare :class:`DeliveryResult`) per
    line, in the order of the lines; fewer replies than lines means the server
    answered for the first lines only (the rest were not processed and will be
    sent again). It fails if the connection is lost or the answer is garbled.
    Cancelling either Deferred must abandon the batch and make the channel
    unusable (the queue closes it).
    """

    sent: Deferred
    replies: Deferred


class DeliveryProtocolError(Exception):
    """A channel's answer does not fit the batch (more replies than lines, a reply
    that is not a result): the connection is dropped and the batch sent again."""


class IDeliveryChannel(Interface):
    """One open connection to a destination's event intake."""

    def send_batch(lines: Sequence[bytes]) -> Submission:
        """Send ``lines`` (spool lines without their LF) as one batch.

        Returns a :class:`Submission`. At most one batch is outstanding at a time:
        the queue waits for ``replies`` before sending the next.
        """

    def close() -> None:
        """Close the connection (abandoning any outstanding batch); idempotent."""


class IDeliveryConnector(Interface):
    """Opens channels to destinations (TLS with host credentials, in production)."""

    def connect(destination: Destination) -> Deferred:
        """Open a channel to ``destination``.

        Fires with an :class:`IDeliveryChannel` provider; fails with the
        connection's error (refused, unreachable, handshake failed ...).
        Cancelling the Deferred abandons the attempt.
        """
