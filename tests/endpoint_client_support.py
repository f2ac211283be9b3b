"""Clients over any client endpoint description (``lbtls:``, ``lbkrb5:``, ``tcp:``), for
the end-to-end tests of the secure transports: a JSON API GET and a box batch."""

from __future__ import annotations

import json

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory, Protocol

import test_gss_endpoints  # noqa: F401  (puts the repository's plugins on the plugin path)
from lbtx.protocols.box.client import connect_box

DEADLINE = 20  # seconds; only reached when something is broken


class HTTPReader(Protocol):
    """Sends one request; collects the answer until its Content-Length, or the close."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.data = b""
        self.closed = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        head, sep, body = self.data.partition(b"\r\n\r\n")
        for line in head.lower().split(b"\r\n"):
            if sep and line.startswith(b"content-length:") and len(body) >= int(line.split(b":")[1]):
                self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.data)


async def api_get(description: str, path: str) -> tuple[int, dict]:
    """GET ``path`` of the JSON API through the client endpoint ``description``:
    (HTTP status, JSON body)."""
    request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
               "Connection: close\r\n\r\n").encode()
    endpoint = clientFromString(reactor, description)
    protocol = await endpoint.connect(Factory.forProtocol(lambda: HTTPReader(request))).addTimeout(
        DEADLINE, reactor)
    answer = await protocol.closed.addTimeout(DEADLINE, reactor)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def send_box(description: str, lines: list[str]) -> list:
    """One batch of ULM ``lines`` over the box protocol; the results."""
    client = await connect_box(clientFromString(reactor, description), clock=reactor,
                               connect_timeout=DEADLINE)
    try:
        return await client.send_batch([line.encode() for line in lines])
    finally:
        client.transport.loseConnection()
