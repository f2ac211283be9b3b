"""Kerberos transport against a real MIT KDC in a temporary realm (skipped without one)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from zope.interface.verify import verifyObject

from krb5_support import REALM, Realm, missing

if missing():
    pytest.skip(f"no MIT KDC: {', '.join(missing())} not installed (Debian: krb5-kdc krb5-admin-server"
                " krb5-user)", allow_module_level=True)
gssapi = pytest.importorskip("gssapi", reason="python-gssapi is not installed (pip install gssapi)",
                            exc_type=ImportError)

from lbtx.gss import Identity, ISecureTransport, PeerRefusedError  # noqa: E402
from lbtx.gss.kerberos import CHUNK, KerberosTransport  # noqa: E402
from test_gss_tls import DEADLINE, Greeter, Raw, Reader, logs  # noqa: E402,F401  (logs: a fixture)

ALICE = f"alice@{REALM}"


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    root = tmp_path_factory.mktemp("krb5")
    with pytest.MonkeyPatch.context() as patch:
        realm = Realm(root)
        for name, value in realm.env.items():
            patch.setenv(name, value)
        realm.keytab = root / "server.keytab"
        realm.server = realm.add_service("lbtx", "localhost", realm.keytab)
        realm.other_keytab = root / "other.keytab"
        realm.add_service("other", "localhost", realm.other_keytab)
        realm.add_user("alice", "alice-password")
        realm.alice_cc = root / "alice.cc"
        realm.kinit(ALICE, "alice-password", realm.alice_cc)
        try:
            yield realm
        finally:
            realm.stop()


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Collector(Protocol):
    def __init__(self, want: int) -> None:
        from twisted.internet.defer import Deferred

        self.want = want
        self.data = b""
        self.done = Deferred()

    def dataReceived(self, data):
        self.data += data
        if len(self.data) >= self.want and not self.done.called:
            self.done.callback(self.data)


async def serve(transport, protocol):
    factory = Factory.forProtocol(protocol)
    factory.seen = []
    port = await transport.server_endpoint(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")).listen(factory)
    return port, factory


def client_endpoint(transport, port, host="localhost"):
    return transport.client_endpoint(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), host)


@pytest_twisted.ensureDeferred
async def test_user_authenticates_as_principal(realm):
    """A user with a ticket reaches the server; each side learns the other's principal."""
    server = KerberosTransport(reactor, keytab=str(realm.keytab))
    client = KerberosTransport(reactor, ccache=str(realm.alice_cc))
    verifyObject(ISecureTransport, server)
    port, factory = await serve(server, Greeter)
    try:
        protocol = await client_endpoint(client, port).connect(Factory.forProtocol(Reader)).addTimeout(
            DEADLINE, reactor)
        data = await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"
    (identity, transport), = factory.seen
    assert identity == Identity.kerberos(ALICE)
    assert server.peer_identity(transport) == identity
    assert client.peer_identity(protocol.transport) == Identity.kerberos(realm.server)


@pytest_twisted.ensureDeferred
async def test_wrapped_data_both_ways(realm):
    """Application bytes larger than one wrap chunk go through the GSS context and come back whole."""
    server = KerberosTransport(reactor, keytab=str(realm.keytab))
    client = KerberosTransport(reactor, ccache=str(realm.alice_cc))
    port, _ = await serve(server, Echo)
    payload = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    try:
        protocol = await client_endpoint(client, port).connect(
            Factory.forProtocol(lambda: Collector(len(payload)))).addTimeout(DEADLINE, reactor)
        protocol.transport.write(payload)
        echoed = await protocol.done.addTimeout(DEADLINE, reactor)
        protocol.transport.loseConnection()
    finally:
        await port.stopListening()
    assert echoed == payload


@pytest_twisted.ensureDeferred
async def test_client_without_ticket_fails(realm, tmp_path):
    """No ticket in the credential cache: connect fails with PeerRefusedError."""
    server = KerberosTransport(reactor, keytab=str(realm.keytab))
    client = KerberosTransport(reactor, ccache=str(tmp_path / "empty.cc"))
    port, factory = await serve(server, Greeter)
    try:
        with pytest.raises(PeerRefusedError) as caught:
            await client_endpoint(client, port).connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert caught.value.reason == "kerberos"
    assert factory.seen == []


@pytest_twisted.ensureDeferred
async def test_server_without_the_key_refuses(realm, logs):  # noqa: F811
    """A server whose keytab lacks the service key cannot accept the ticket: refused and logged."""
    server = KerberosTransport(reactor, keytab=str(realm.other_keytab))
    client = KerberosTransport(reactor, ccache=str(realm.alice_cc))
    port, factory = await serve(server, Greeter)
    try:
        with pytest.raises(Exception):
            protocol = await client_endpoint(client, port).connect(Factory.forProtocol(Reader)).addTimeout(
                DEADLINE, reactor)
            await protocol.closed
        event = await logs.wait(lambda e: e.get("reason") == "kerberos" and e.get("mechanism") == "Kerberos")
    finally:
        await port.stopListening()
    assert factory.seen == []
    assert "refused" in event["log_format"]


@pytest_twisted.ensureDeferred
async def test_unknown_service_fails(realm):
    """A service the KDC does not know: the client's first step fails."""
    client = KerberosTransport(reactor, ccache=str(realm.alice_cc), service="nosuch")
    server = KerberosTransport(reactor, keytab=str(realm.keytab))
    port, _ = await serve(server, Greeter)
    try:
        with pytest.raises(PeerRefusedError):
            await client_endpoint(client, port).connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_silent_client_dropped(realm, logs):  # noqa: F811
    """A peer that connects and sends no token is dropped after the handshake timeout."""
    server = KerberosTransport(reactor, keytab=str(realm.keytab), handshake_timeout=0.3)
    port, factory = await serve(server, Greeter)
    try:
        raw = await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(Factory.forProtocol(Raw))
        await raw.closed.addTimeout(DEADLINE, reactor)
        await logs.wait(lambda e: "no handshake within" in e["log_format"])
    finally:
        await port.stopListening()
    assert factory.seen == []


@pytest_twisted.ensureDeferred
async def test_lbkrb5_endpoint_strings(realm):
    """lbkrb5: descriptions, parsed by the plugins, give Kerberos endpoints."""
    import test_gss_endpoints  # noqa: F401  (puts the repository's plugins on the plugin path)
    from twisted.internet.endpoints import clientFromString, serverFromString

    factory = Factory.forProtocol(Greeter)
    factory.seen = []
    port = await serverFromString(
        reactor, f"lbkrb5:0:interface=127.0.0.1:keytab={realm.keytab}:service=lbtx").listen(factory)
    try:
        client = clientFromString(
            reactor, f"lbkrb5:host=127.0.0.1:port={port.getHost().port}:servername=localhost"
            f":ccache={realm.alice_cc}:timeout=5")
        protocol = await client.connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
        data = await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"
    assert [identity for identity, _ in factory.seen] == [Identity.kerberos(ALICE)]
