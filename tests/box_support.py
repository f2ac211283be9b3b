"""Fakes for box protocol tests: a recording batch handler and connected pairs."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.test import iosim
from zope.interface import implementer

from lbtx.protocols.box.client import BoxClient
from lbtx.protocols.box.messages import Result, ResultCode
from lbtx.protocols.box.server import BoxServerProtocol, ServerLimits
from lbtx.protocols.interfaces import IBatchHandler


def result_for(line: bytes) -> Result:
    """The result a line asks for by its first word (``stored``, ``unknown_job``, ...;
    anything else is stored); the reason is the rest of the line."""
    word, _, rest = line.partition(b" ")
    try:
        code = ResultCode(word.decode("ascii", "replace"))
    except ValueError:
        return Result(ResultCode.STORED)
    return Result(code, rest.decode("ascii", "replace"),
                  "KEY_DUPLICITY" if code is ResultCode.INVALID else "")


@dataclass
class Call:
    peer_identity: str
    lines: list[bytes]
    deferred: Deferred


@implementer(IBatchHandler)
class RecordingHandler:
    """Records every call. With ``auto`` it answers at once by :func:`result_for`;
    otherwise the test fires ``calls[i].deferred`` itself."""

    def __init__(self, auto: bool = True):
        self.auto = auto
        self.calls: list[Call] = []

    def handle_batch(self, peer_identity, lines):
        d = Deferred()
        self.calls.append(Call(peer_identity, list(lines), d))
        if self.auto:
            d.callback([result_for(line) for line in lines])
        return d

    def answer(self, index: int) -> None:
        """Fire call ``index`` with the results its lines ask for."""
        call = self.calls[index]
        call.deferred.callback([result_for(line) for line in call.lines])


def connected(handler, *, server_clock: Clock | None = None, client_clock: Clock | None = None,
              limits: ServerLimits = ServerLimits(), client_kwargs: dict | None = None,
              server_kwargs: dict | None = None):
    """A client and a server connected in memory: ``(client, server, pump)``.

    The handshake is pumped through before returning.
    """
    server_clock = server_clock or Clock()
    client_clock = client_clock or Clock()
    return iosim.connectedServerAndClient(
        lambda: BoxServerProtocol(handler, clock=server_clock, limits=limits,
                                  **(server_kwargs or {})),
        lambda: BoxClient(clock=client_clock, **(client_kwargs or {})),
    )
