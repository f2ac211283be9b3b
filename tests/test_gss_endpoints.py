"""lbtls: and lbunix: endpoint descriptions, parsed through the Twisted plugins."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
import pytest_twisted
import twisted.plugins
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.protocol import Factory

from gss_support import ALICE, PKI
from lbtx.gss import CredentialsError, Identity, PeerRefusedError
from test_gss_tls import DEADLINE, Greeter, Reader

# The plugin lives in the repository's twisted/plugins/; make it visible from any cwd.
_PLUGINS = str(Path(__file__).resolve().parent.parent / "twisted" / "plugins")
if _PLUGINS not in twisted.plugins.__path__:
    twisted.plugins.__path__.append(_PLUGINS)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest_twisted.ensureDeferred
async def test_lbtls_server_and_client_from_strings(pki):
    """serverFromString/clientFromString build authenticated TLS endpoints from lbtls: descriptions."""
    server_file = pki.write("server", pki.server)
    alice_file = pki.write("alice_proxy_chain", pki.alice_proxy_chain)
    server = serverFromString(
        reactor, f"lbtls:0:interface=127.0.0.1:cert={server_file}:cadir={pki.cadir}:crl=optional"
        ":handshake_timeout=5")
    factory = Factory.forProtocol(Greeter)
    factory.seen = []
    port = await server.listen(factory)
    try:
        client = clientFromString(
            reactor, f"lbtls:host=127.0.0.1:port={port.getHost().port}:servername=localhost"
            f":cert={alice_file}:cadir={pki.cadir}:timeout=5")
        protocol = await client.connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
        data = await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert data == ALICE.encode() + b"\n"
    assert [identity for identity, _ in factory.seen] == [Identity.x509(ALICE)]


@pytest_twisted.ensureDeferred
async def test_lbtls_client_checks_host_by_default(pki):
    """Without servername= the client checks the host it connects to (here 127.0.0.1: refused)."""
    server_file = pki.write("server", pki.server)
    alice_file = pki.write("alice", pki.alice)
    factory = Factory.forProtocol(Greeter)
    factory.seen = []
    port = await serverFromString(
        reactor, f"lbtls:0:interface=127.0.0.1:cert={server_file}:cadir={pki.cadir}").listen(factory)
    try:
        client = clientFromString(
            reactor, f"lbtls:127.0.0.1:{port.getHost().port}:cert={alice_file}:cadir={pki.cadir}")
        with pytest.raises(PeerRefusedError) as caught:
            await client.connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert caught.value.reason == "wrong server name" and "127.0.0.1" in caught.value.detail


def test_lbtls_bad_options(pki, tmp_path):
    """Missing credentials, an unknown crl= mode or an unknown keyword are errors at parse time."""
    server_file = pki.write("server", pki.server)
    with pytest.raises(CredentialsError):
        serverFromString(reactor, f"lbtls:0:cert={tmp_path / 'nothing.pem'}:cadir={pki.cadir}")
    with pytest.raises(CredentialsError):
        serverFromString(reactor, f"lbtls:0:cert={server_file}:cadir={tmp_path}")
    with pytest.raises(ValueError):
        serverFromString(reactor, f"lbtls:0:cert={server_file}:cadir={pki.cadir}:crl=sometimes")
    with pytest.raises(ValueError):
        clientFromString(reactor, f"lbtls:host=h:port=1:cert={server_file}:cadir={pki.cadir}:colour=red")


@pytest_twisted.ensureDeferred
async def test_lbunix_server_and_client_from_strings(tmp_path):
    """lbunix: descriptions give UNIX endpoints whose peers are known by SO_PEERCRED."""
    me = Identity.unix(pwd.getpwuid(os.getuid()).pw_name, os.getuid())
    path = tmp_path / "logger.sock"
    factory = Factory.forProtocol(Greeter)
    factory.seen = []
    port = await serverFromString(reactor, f"lbunix:{path}:mode=600").listen(factory)
    try:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        client = clientFromString(reactor, f"lbunix:path={path}:user={me.name}")
        protocol = await client.connect(Factory.forProtocol(Reader)).addTimeout(DEADLINE, reactor)
        await protocol.closed.addTimeout(DEADLINE, reactor)
    finally:
        await port.stopListening()
    assert [identity for identity, _ in factory.seen] == [me]
