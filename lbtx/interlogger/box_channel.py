"""The box protocol as the delivery queues' transport.

:class:`BoxDeliveryConnector` provides :class:`IDeliveryConnector`: it opens a
:class:`~lbtx.protocols.box.client.BoxClient` connection (handshake included) to
the endpoint of a destination, and wraps it in a :class:`BoxDeliveryChannel`,
which provides :class:`IDeliveryChannel`. A queue batch larger than the server's
``max_batch`` goes out as several pipelined requests and comes back as one list.
Result codes map by name (``unknown_job`` → ``UNKNOWN_JOB`` ...).

The client cannot tell when a request has left its buffers, so ``sent`` fires at
once and the queue's acknowledgement deadline covers the whole exchange.
"""

from __future__ import annotations

from typing import Callable, Sequence

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from zope.interface import implementer

from lbtx.interlogger.interfaces import (DeliveryProtocolError, DeliveryResult, Destination,
                                         IDeliveryChannel, IDeliveryConnector, Reply, Submission)
from lbtx.protocols.box.client import BoxClient, connect_box

__all__ = ["BoxDeliveryChannel", "BoxDeliveryConnector", "endpoint_description"]

_RESULTS = {result.name: result for result in DeliveryResult}


def _reply(result) -> Reply:
    try:
        mapped = _RESULTS[result.code.name]
    except (AttributeError, KeyError):
        raise DeliveryProtocolError(f"unknown result {result!r:.80}") from None
    words = " - ".join(part for part in (result.reason, result.detail) if part)
    return Reply(mapped, words)


@implementer(IDeliveryChannel)
class BoxDeliveryChannel:
    """One box connection, as a delivery channel."""

    def __init__(self, client: BoxClient):
        self._client = client

    def send_batch(self, lines: Sequence[bytes]) -> Submission:
        lines = list(lines)
        step = max(1, self._client.max_batch)
        requests = [self._client.send_batch(lines[i:i + step]) for i in range(0, len(lines), step)]
        if len(requests) == 1:
            answered = requests[0]
        else:
            answered = gatherResults(requests, consumeErrors=True)
            answered.addCallback(lambda parts: [r for part in parts for r in part])
            answered.addErrback(lambda f: f.value.subFailure if f.check(FirstError) else f)

        def cancel(_: Deferred) -> None:
            for request in requests:
                request.cancel()
            self.close()

        replies: Deferred = Deferred(cancel)
        answered.addCallback(lambda results: [_reply(r) for r in results])
        answered.chainDeferred(replies)
        return Submission(succeed(None), replies)

    def close(self) -> None:
        transport = self._client.transport
        if transport is not None:
            transport.loseConnection()


def endpoint_description(template: str, destination: Destination) -> str:
    """``template`` (e.g. ``"tcp:{host}:{port}"``) filled in for ``destination``,
    with the colons of an IPv6 address escaped for the endpoint parser."""
    return template.format(host=destination.host.replace(":", "\\:"), port=destination.port)


@implementer(IDeliveryConnector)
class BoxDeliveryConnector:
    """Connects to destinations with the box protocol.

    :param endpoint_for: the client endpoint of a destination; by default
        ``clientFromString(reactor, endpoint_description(template, destination))``.
    :param client_kwargs: passed to :class:`BoxClient` (``request_timeout`` ...).
    """

    def __init__(self, reactor, *, clock: IReactorTime | None = None,
                 template: str = "tcp:{host}:{port}",
                 endpoint_for: Callable[[Destination], IStreamClientEndpoint] | None = None,
                 connect_timeout: float = 60.0, **client_kwargs):
        self._clock = clock or reactor
        self._endpoint_for = endpoint_for or (
            lambda d: clientFromString(reactor, endpoint_description(template, d)))
        self._connect_timeout = connect_timeout
        self._client_kwargs = client_kwargs

    def connect(self, destination: Destination) -> Deferred:
        d = connect_box(self._endpoint_for(destination), clock=self._clock,
                        connect_timeout=self._connect_timeout, **self._client_kwargs)
        return d.addCallback(BoxDeliveryChannel)
