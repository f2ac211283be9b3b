"""TLS with mutual X.509 authentication, proxy certificates and a grid CA directory.

L{TLSTransport} is the L{ISecureTransport} for TLS (1.2 at least). OpenSSL runs
the handshake and proves that the peer holds the key of the certificate it sent;
the decision whether that certificate is acceptable is ours and is taken right
after the handshake, before the application protocol hears of the connection
(L{lbtx.gss.verify.PeerVerifier}: proxies resolved to the end entity, the CA
directory, CRLs, expiry, and on the client side the server name). A refused peer
is dropped with a log line that says why.
"""

from __future__ import annotations

import datetime
import ipaddress

from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from lbtx.gss.errors import NoPeerIdentityError, PeerRefusedError
from lbtx.gss.identity import Identity, IdentityKind
from lbtx.gss.interfaces import IPeerIdentity, ISecureTransport
from lbtx.gss.issuing import Credentials
from lbtx.gss.trust import TrustStore
from lbtx.gss.verify import PeerVerifier
from lbtx.gss.voms import VomsTrust
from lbtx.gss.wrapping import (
    AuthenticatingClientEndpoint,
    AuthenticatingFactory,
    AuthenticatingProtocol,
    AuthenticatingServerEndpoint,
)

SECOND = 1.0
#: How long a peer has from connecting to finishing the TLS handshake.
HANDSHAKE_TIMEOUT = 30 * SECOND


@implementer(IHandshakeListener)
class _TLSAuthenticator(AuthenticatingProtocol):
    """Verifies the peer's certificates when the TLS handshake completes."""

    mechanism = "TLS"
    tls_connection: SSL.Connection | None = None

    def handshakeCompleted(self) -> None:
        factory: _TLSAuthenticatingFactory = self.factory
        try:
            identity = factory.tls.verify_connection(self.tls_connection, factory.server_name)
        except PeerRefusedError as e:
            self.refuse(e)
        else:
            self.authenticated(identity)


class _TLSAuthenticatingFactory(AuthenticatingFactory):
    protocol = _TLSAuthenticator

    def __init__(self, wrapped_factory, tls: TLSTransport, server_name: str | None,
                 ready: Deferred | None = None) -> None:
        super().__init__(wrapped_factory, tls.clock, tls.handshake_timeout, ready)
        self.tls = tls
        self.server_name = server_name


@implementer(IOpenSSLServerConnectionCreator)
class _ServerCreator:
    def __init__(self, context: SSL.Context) -> None:
        self._context = context

    def serverConnectionForTLS(self, tls_protocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        tls_protocol.wrappedProtocol.tls_connection = connection
        return connection


@implementer(IOpenSSLClientConnectionCreator)
class _ClientCreator:
    def __init__(self, context: SSL.Context, server_name: str | None) -> None:
        self._context = context
        self._sni = None
        if server_name is not None and not _is_ip(server_name):
            self._sni = server_name.encode("idna")

    def clientConnectionForTLS(self, tls_protocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if self._sni is not None:
            connection.set_tlsext_host_name(self._sni)
        connection.set_connect_state()
        tls_protocol.wrappedProtocol.tls_connection = connection
        return connection


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _accept_for_now(connection, cert, errno, depth, ok) -> bool:
    # The handshake proves possession of the leaf's key; whether the certificates
    # are acceptable is decided by PeerVerifier once the handshake is over.
    return True


@implementer(ISecureTransport)
class TLSTransport:
    """Mutually authenticated TLS with our C{credentials}, trusting the CAs of C{trust}.

    @param clock: times the handshake and tells the time for certificate validity.
    @param handshake_timeout: seconds a peer has to finish the handshake.
    @param voms: the VOMS servers whose attribute certificates are believed
        (L{lbtx.gss.voms.VomsTrust}); C{None}: FQANs as the proxy chain asserts them.
    """

    name = "tls"

    def __init__(
        self,
        credentials: Credentials,
        trust: TrustStore,
        clock: IReactorTime,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        voms: VomsTrust | None = None,
    ) -> None:
        self.credentials = credentials
        self.trust = trust
        self.clock = clock
        self.handshake_timeout = handshake_timeout
        self._verifier = PeerVerifier(trust, voms)
        self._server_context = self._context(server=True)
        self._client_context = self._context(server=False)

    def _context(self, server: bool) -> SSL.Context:
        context = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        options = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
        if server:
            options |= SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_TICKET
        context.set_options(options)
        context.use_certificate(self.credentials.cert)
        for cert in self.credentials.chain:
            context.add_extra_chain_cert(cert)
        context.use_privatekey(self.credentials.key)
        context.check_privatekey()
        if server:
            context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_for_now)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        else:
            context.set_verify(SSL.VERIFY_PEER, _accept_for_now)
        return context

    def server_endpoint(self, inner: IStreamServerEndpoint) -> IStreamServerEndpoint:
        """See L{ISecureTransport.server_endpoint}."""
        creator = _ServerCreator(self._server_context)

        def wrap(factory: IProtocolFactory) -> IProtocolFactory:
            return TLSMemoryBIOFactory(creator, False, _TLSAuthenticatingFactory(factory, self, None))

        return AuthenticatingServerEndpoint(inner, wrap)

    def client_endpoint(
        self, inner: IStreamClientEndpoint, server_name: str | None = None
    ) -> IStreamClientEndpoint:
        """See L{ISecureTransport.client_endpoint}."""
        creator = _ClientCreator(self._client_context, server_name)

        def wrap(factory: IProtocolFactory, ready: Deferred) -> IProtocolFactory:
            return TLSMemoryBIOFactory(
                creator, True, _TLSAuthenticatingFactory(factory, self, server_name, ready)
            )

        return AuthenticatingClientEndpoint(inner, wrap)

    def peer_identity(self, transport) -> Identity:
        """See L{ISecureTransport.peer_identity}."""
        provider = IPeerIdentity(transport, None)
        identity = getattr(provider, "identity", None)
        if identity is None or identity.kind is not IdentityKind.X509:
            raise NoPeerIdentityError("the transport is not authenticated by TLS")
        return identity

    def verify_connection(self, connection: SSL.Connection, server_name: str | None) -> Identity:
        """The identity the peer of the finished handshake on C{connection} proved.

        Raises L{PeerRefusedError}.
        """
        leaf = connection.get_peer_certificate(as_cryptography=True)
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
        return self._verifier.verify(leaf, list(chain), self._now(), server_name)

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock.seconds(), datetime.timezone.utc)
