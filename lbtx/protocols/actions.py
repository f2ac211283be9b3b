"""What a server session asks its adapter to do (:class:`~.interfaces.IServerSession`).

The adapter performs the actions strictly in order: a :class:`Send` queued behind
a :class:`Handle` is written only after that request's answer, which keeps every
answer in request order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["Send", "Handle", "Ready", "Close", "Action"]


@dataclass(frozen=True)
class Send:
    """Write these bytes (a reply that needs no handler: a welcome, an error)."""

    data: bytes


@dataclass(frozen=True)
class Handle:
    """Hand these event lines to the batch handler; answer with the session's
    ``ack`` (or ``fail``) for ``request_id``."""

    request_id: int
    lines: tuple[bytes, ...]


@dataclass(frozen=True)
class Ready:
    """The peer completed its handshake (or, for a legacy framing, its first frame):
    the handshake deadline is over and the idle timeout applies."""

    framing: str
    version: int | None = None


@dataclass(frozen=True)
class Close:
    """Write ``data`` (possibly empty), then close the connection. ``reason`` says
    why, for the log; the session accepts nothing afterwards."""

    data: bytes
    reason: str


Action = Union[Send, Handle, Ready, Close]
