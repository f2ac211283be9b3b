"""TLS transport over real sockets on 127.0.0.1, with credentials from lbtx's issuing code."""

from __future__ import annotations

import os
import struct
import time

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import globalLogPublisher
from zope.interface.verify import verifyObject

from gss_support import ALICE, PKI, SERVER
from lbtx.gss import Identity, IPeerIdentity, ISecureTransport, PeerRefusedError, peer_identity
from lbtx.gss.credentials import load_credentials
from lbtx.gss.tls import TLSTransport
from lbtx.gss.trust import TrustStore

DEADLINE = 10  # seconds; only reached when something is broken


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def transport_for(pki: PKI, name: str, credentials, **kwargs) -> TLSTransport:
    path = str(pki.write(name, credentials))
    return TLSTransport(load_credentials(path), TrustStore(str(pki.cadir)), reactor, **kwargs)


class LogWatch:
    """Collects lbtx.gss log events; waits for one that matches."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._waiting: list[tuple] = []

    def __call__(self, event: dict) -> None:
        if not str(event.get("log_namespace", "")).startswith("lbtx.gss"):
            return
        self.events.append(event)
        for waiter in list(self._waiting):
            predicate, d = waiter
            if predicate(event):
                self._waiting.remove(waiter)
                d.callback(event)

    def wait(self, predicate) -> Deferred:
        for event in self.events:
            if predicate(event):
                return succeed(event)
        d = Deferred()
        self._waiting.append((predicate, d))
        return d.addTimeout(DEADLINE, reactor)


@pytest.fixture
def logs():
    watch = LogWatch()
    globalLogPublisher.addObserver(watch)
    yield watch
    globalLogPublisher.removeObserver(watch)


def refused(reason: str):
    return lambda e: e.get("reason") == reason and "refused" in e["log_format"]


class Greeter(Protocol):
    """Server side: tells the client who it is."""

    def connectionMade(self) -> None:
        identity = peer_identity(self.transport)
        self.factory.seen.append((identity, self.transport))
        self.transport.write(identity.display.encode() + b"\n")


class Reader(Protocol):
    """Client side: everything the server says, until it closes."""

    def __init__(self) -> None:
        self.data = b""
        self.closed: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if data.endswith(b"\n"):
            self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.data)


async def serve(server: TLSTransport):
    factory = Factory.forProtocol(Greeter)
    factory.seen = []
    port = await server.server_endpoint(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")).listen(factory)
    return port, factory


async def talk(client: TLSTransport, port, server_name="localhost"):
    """Connect, read until closed; (protocol, data) or raise what connect failed with."""
    endpoint = client.client_endpoint(
        TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), server_name)
    protocol = await endpoint.connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
    data = await protocol.closed.addTimeout(DEADLINE, reactor)
    return protocol, data


@pytest_twisted.ensureDeferred
async def test_mutual_authentication_gives_both_identities(pki):
    """A trusted user reaches a trusted server; each side learns the other's subject."""
    server = transport_for(pki, "server", pki.server)
    client = transport_for(pki, "alice", pki.alice)
    verifyObject(ISecureTransport, server)
    port, factory = await serve(server)
    try:
        protocol, data = await talk(client, port)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"
    (identity, transport), = factory.seen
    assert identity == Identity.x509(ALICE) and not identity.limited
    verifyObject(IPeerIdentity, transport)
    assert server.peer_identity(transport) == identity
    assert client.peer_identity(protocol.transport) == Identity.x509(SERVER)


@pytest.mark.parametrize("name", ["alice_proxy_chain", "alice_legacy_proxy"])
@pytest_twisted.ensureDeferred
async def test_proxy_chain_resolves_to_end_entity(pki, name):
    """Proxies (RFC 3820, limited, legacy /CN=proxy) authenticate as the end-entity subject."""
    server = transport_for(pki, "server", pki.server)
    client = transport_for(pki, name, getattr(pki, name))
    port, factory = await serve(server)
    try:
        _, data = await talk(client, port)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"
    (identity, _), = factory.seen
    assert identity == Identity.x509(ALICE)
    assert identity.limited is (name == "alice_proxy_chain")


@pytest.mark.parametrize("name, reason", [
    ("eve", "untrusted CA"),
    ("carol", "expired"),
    ("bob", "revoked"),
    ("forged_proxy", "bad proxy"),
])
@pytest_twisted.ensureDeferred
async def test_server_refuses_bad_client(pki, logs, name, reason):
    """Untrusted CA, expired, revoked, a proxy signed by someone else: refused, and the log says why."""
    server = transport_for(pki, "server", pki.server)
    client = transport_for(pki, name, getattr(pki, name))
    port, factory = await serve(server)
    try:
        try:
            _, data = await talk(client, port)
        except Exception:
            data = b""  # the server may drop us before our handshake ends
        event = await logs.wait(refused(reason))
    finally:
        await port.stopListening()
    assert data == b""
    assert factory.seen == []
    assert event["mechanism"] == "TLS"
    assert event["peer"].startswith("127.0.0.1:")


@pytest.mark.parametrize("name, reason", [
    ("misnamed_server", "wrong server name"),
    ("rogue_server", "untrusted CA"),
])
@pytest_twisted.ensureDeferred
async def test_client_refuses_bad_server(pki, logs, name, reason):
    """A server with another name or from an untrusted CA: connect fails and the log says why."""
    server = transport_for(pki, name, getattr(pki, name))
    client = transport_for(pki, "alice", pki.alice)
    port, factory = await serve(server)
    try:
        with pytest.raises(PeerRefusedError) as caught:
            await talk(client, port)
        event = await logs.wait(refused(reason))
    finally:
        await port.stopListening()
    assert caught.value.reason == reason
    assert "localhost" in event["detail"] or reason != "wrong server name"


@pytest_twisted.ensureDeferred
async def test_server_name_may_be_an_ip_address(pki):
    """Checking 127.0.0.1 against a certificate issued only for localhost refuses it."""
    server = transport_for(pki, "server", pki.server)
    client = transport_for(pki, "alice", pki.alice)
    port, _ = await serve(server)
    try:
        with pytest.raises(PeerRefusedError) as caught:
            await talk(client, port, server_name="127.0.0.1")
    finally:
        await port.stopListening()
    assert caught.value.reason == "wrong server name"


@pytest.mark.parametrize("version", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION])
@pytest_twisted.ensureDeferred
async def test_tls_1_2_and_1_3_accepted(pki, version):
    """Clients limited to TLS 1.2, or to 1.3, both authenticate."""
    server = transport_for(pki, "server", pki.server)
    client = transport_for(pki, "alice", pki.alice)
    client._client_context.set_max_proto_version(version)  # test-only: pin the version
    client._client_context.set_min_proto_version(version)
    port, _ = await serve(server)
    try:
        protocol, data = await talk(client, port)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"


def tls11_client_hello() -> bytes:
    """A TLS 1.1 ClientHello (no supported_versions extension) as an old peer sends it."""
    ciphers = bytes.fromhex("c013c014002f0035")
    body = b"\x03\x02" + os.urandom(32) + b"\x00" + struct.pack(">H", len(ciphers)) + ciphers + b"\x01\x00"
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


class Raw(Protocol):
    def __init__(self, send: bytes = b"") -> None:
        self.send = send
        self.data = b""
        self.closed: Deferred = Deferred()

    def connectionMade(self) -> None:
        if self.send:
            self.transport.write(self.send)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.data)


@pytest_twisted.ensureDeferred
async def test_tls_below_1_2_refused(pki, logs):
    """A TLS 1.1 ClientHello gets a protocol_version alert and a log line."""
    server = transport_for(pki, "server", pki.server)
    port, factory = await serve(server)
    try:
        raw = await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            Factory.forProtocol(lambda: Raw(tls11_client_hello())))
        data = await raw.closed.addTimeout(DEADLINE, reactor)
        event = await logs.wait(lambda e: "handshake with" in e["log_format"])
    finally:
        await port.stopListening()
    assert data[:1] == b"\x15" and data[-1:] == b"\x46"  # alert, protocol_version (70)
    assert factory.seen == []
    assert "unsupported protocol" in event["error"]


@pytest_twisted.ensureDeferred
async def test_silent_client_dropped_after_handshake_timeout(pki, logs):
    """A peer that connects and sends nothing is dropped once the handshake timeout passes."""
    server = transport_for(pki, "server", pki.server, handshake_timeout=0.3)
    port, factory = await serve(server)
    try:
        started = time.monotonic()
        raw = await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            Factory.forProtocol(Raw))
        await raw.closed.addTimeout(DEADLINE, reactor)
        elapsed = time.monotonic() - started
        event = await logs.wait(lambda e: "no handshake within" in e["log_format"])
    finally:
        await port.stopListening()
    assert 0.25 <= elapsed < DEADLINE
    assert event["timeout"] == 0.3
    assert factory.seen == []


@pytest_twisted.ensureDeferred
async def test_client_handshake_timeout(pki):
    """A server that accepts and never answers makes connect fail with TimeoutError."""
    client = transport_for(pki, "alice", pki.alice, handshake_timeout=0.3)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory.forProtocol(Raw))
    try:
        with pytest.raises(TimeoutError):
            await talk(client, port)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_cancelling_connect_drops_the_attempt(pki):
    """Cancelling connect() during the handshake drops the connection, with no timer left behind."""
    client = transport_for(pki, "alice", pki.alice, handshake_timeout=5)
    accepted = []
    factory = Factory.forProtocol(Raw)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)

    class Watch(Raw):
        def connectionMade(self):
            accepted.append(self)

    factory.protocol = Watch
    try:
        d = client.client_endpoint(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), "localhost"
        ).connect(Factory.forProtocol(Reader))
        while not accepted:
            await _sleep(0.01)
        d.cancel()
        with pytest.raises(Exception):
            await d
        await accepted[0].closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()


def _sleep(seconds: float) -> Deferred:
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
