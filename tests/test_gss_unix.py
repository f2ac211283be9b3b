"""Unix peer credentials (SO_PEERCRED) over a real UNIX socket."""

from __future__ import annotations

import os
import pwd

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, UNIXClientEndpoint, UNIXServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from zope.interface.verify import verifyObject

from lbtx.gss import Identity, IPeerIdentity, ISecureTransport, NoPeerIdentityError, PeerRefusedError, peer_identity
from lbtx.gss.unix import UnixTransport, unix_peer_credentials

from test_gss_tls import DEADLINE, Greeter, Reader

ME = Identity.unix(pwd.getpwuid(os.getuid()).pw_name, os.getuid())


class Recorder(Protocol):
    """Records the identity a plain protocol finds for its peer."""

    def connectionMade(self) -> None:
        try:
            self.factory.seen.append(peer_identity(self.transport))
            self.factory.credentials.append(unix_peer_credentials(self.transport))
        except NoPeerIdentityError as e:
            self.factory.seen.append(e)
        self.transport.write(b"ok\n")


async def listen(endpoint, protocol):
    factory = Factory.forProtocol(protocol)
    factory.seen = []
    factory.credentials = []
    return await endpoint.listen(factory), factory


@pytest_twisted.ensureDeferred
async def test_unix_transport_identifies_both_ends(tmp_path):
    """Behind UnixTransport each side's transport names the other's Unix user."""
    unix = UnixTransport(reactor)
    verifyObject(ISecureTransport, unix)
    path = str(tmp_path / "s.sock")
    port, factory = await listen(unix.server_endpoint(UNIXServerEndpoint(reactor, path)), Greeter)
    try:
        protocol = await unix.client_endpoint(UNIXClientEndpoint(reactor, path), ME.name).connect(
            Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
        data = await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    (identity, transport), = factory.seen
    assert identity == ME and identity.uid == os.getuid()
    assert data == b"unix:" + ME.name.encode() + b"\n"
    verifyObject(IPeerIdentity, transport)
    assert unix.peer_identity(protocol.transport) == ME


@pytest_twisted.ensureDeferred
async def test_unix_client_refuses_server_of_another_user(tmp_path):
    """A client that expects the socket to belong to another user refuses it."""
    unix = UnixTransport(reactor)
    path = str(tmp_path / "s.sock")
    port, _ = await listen(unix.server_endpoint(UNIXServerEndpoint(reactor, path)), Greeter)
    try:
        with pytest.raises(PeerRefusedError) as caught:
            await unix.client_endpoint(UNIXClientEndpoint(reactor, path), "nobody-at-all").connect(
                Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert caught.value.reason == "wrong server name"


@pytest_twisted.ensureDeferred
async def test_peer_identity_on_a_plain_unix_endpoint(tmp_path):
    """A protocol on an ordinary unix: endpoint gets its peer's user through peer_identity()."""
    path = str(tmp_path / "s.sock")
    port, factory = await listen(UNIXServerEndpoint(reactor, path), Recorder)
    try:
        protocol = await UNIXClientEndpoint(reactor, path).connect(Factory.forProtocol(Reader))
        await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert factory.seen == [ME]
    assert factory.credentials == [(os.getpid(), os.getuid(), os.getgid())]


@pytest_twisted.ensureDeferred
async def test_no_identity_on_plain_tcp():
    """Over plain TCP there is nobody to name: NoPeerIdentityError."""
    port, factory = await listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), Recorder)
    try:
        protocol = await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            Factory.forProtocol(Reader))
        await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    (seen,) = factory.seen
    assert isinstance(seen, NoPeerIdentityError)
