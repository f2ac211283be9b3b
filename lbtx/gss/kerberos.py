"""Kerberos through GSS-API (python-gssapi): the second mechanism behind L{ISecureTransport}.

Messages (every one is a 4-byte big-endian length and that many bytes)::

    client → server   GSS context token (AP-REQ), then further tokens if the mechanism asks
    server → client   GSS context tokens (AP-REP: mutual authentication)
    both ways         once both contexts are complete: application bytes, each chunk
                      wrapped (integrity and confidentiality) by the GSS context

The server accepts with the keys of its keytab; the client initiates with the
tickets of its credential cache for the target service C{SERVICE@host}. The
peer's identity is its principal (C{alice@EXAMPLE.ORG}), compared exactly. The
first client step may ask the KDC for a service ticket, so it runs in a thread;
the other steps are local. The handshake timeout of L{AuthenticatingProtocol}
covers the exchange; tokens and frames are capped in size.
"""

from __future__ import annotations

import struct

import gssapi
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from lbtx.gss.errors import NoPeerIdentityError, PeerRefusedError
from lbtx.gss.identity import Identity, IdentityKind
from lbtx.gss.interfaces import IPeerIdentity, ISecureTransport
from lbtx.gss.tls import HANDSHAKE_TIMEOUT
from lbtx.gss.wrapping import (
    AuthenticatingClientEndpoint,
    AuthenticatingFactory,
    AuthenticatingProtocol,
    AuthenticatingServerEndpoint,
)

REASON_KERBEROS = "kerberos"
DEFAULT_SERVICE = "lbtx"
#: Largest context token or wrapped frame accepted (bytes).
MAX_FRAME = 1 << 20
#: Application writes are wrapped in chunks of at most this many bytes.
CHUNK = 1 << 16
_LENGTH = struct.Struct(">I")


def frame(data: bytes) -> bytes:
    """One length-prefixed message."""
    return _LENGTH.pack(len(data)) + data


class _KerberosAuthenticator(AuthenticatingProtocol):
    mechanism = "Kerberos"

    def start_authentication(self) -> None:
        self._buffer = b""
        self._busy = False
        factory: _KerberosFactory = self.factory
        try:
            self._context = factory.kerberos.new_context(factory.target)
        except gssapi.exceptions.GSSError as e:
            self._fail(e)
            return
        if factory.target is not None:  # client: the first token may need the KDC
            self._busy = True
            d = deferToThreadPool(factory.kerberos.reactor, factory.kerberos.reactor.getThreadPool(),
                                  self._context.step, None)
            d.addCallbacks(self._first_token, self._fail_failure)

    def _first_token(self, token: bytes | None) -> None:
        self._busy = False
        if self.transport is None or not self.connected:
            return
        if token:
            self.transport.write(frame(token))
        self._drain()

    def _fail_failure(self, failure) -> None:
        self._busy = False
        self._fail(failure.value)

    def _fail(self, error: Exception) -> None:
        detail = str(error).strip().replace("\n", " ")
        self.refuse(PeerRefusedError(REASON_KERBEROS, detail))

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        self._drain()

    def _drain(self) -> None:
        while not self._busy and len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                self.refuse(PeerRefusedError(REASON_KERBEROS, f"a frame of {length} bytes"))
                return
            if len(self._buffer) < _LENGTH.size + length:
                return
            message = self._buffer[_LENGTH.size:_LENGTH.size + length]
            self._buffer = self._buffer[_LENGTH.size + length:]
            if self._connected:
                try:
                    plain = self._context.unwrap(message).message
                except gssapi.exceptions.GSSError as e:
                    self.log.warn("dropped Kerberos peer {peer}: bad wrapped message: {error}",
                                  peer=self.transport.getPeer(), error=str(e))
                    self.transport.abortConnection()
                    return
                self.wrappedProtocol.dataReceived(plain)
            elif not self._handshake_step(message):
                return

    def _handshake_step(self, token: bytes) -> bool:
        try:
            reply = self._context.step(token)
            complete = self._context.complete  # python-gssapi may raise a step's error here
        except gssapi.exceptions.GSSError as e:
            self._fail(e)
            return False
        if reply:
            self.transport.write(frame(reply))
        if complete:
            if self.factory.target is None:
                principal = str(self._context.initiator_name)
            else:
                principal = str(self._context.target_name)
            self.authenticated(Identity.kerberos(principal))
        return True

    def write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            wrapped = self._context.wrap(data[start:start + CHUNK], True).message
            self.transport.write(frame(wrapped))

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))


class _KerberosFactory(AuthenticatingFactory):
    protocol = _KerberosAuthenticator

    def __init__(self, wrapped_factory, kerberos: KerberosTransport, target, ready=None) -> None:
        super().__init__(wrapped_factory, kerberos.reactor, kerberos.handshake_timeout, ready)
        self.kerberos = kerberos
        self.target = target


@implementer(ISecureTransport)
class KerberosTransport:
    """GSS-API Kerberos authentication and message protection over a stream.

    @param reactor: for the handshake timeout and the thread of the first client step.
    @param keytab: the server's keytab (default: the library's, C{KRB5_KTNAME}).
    @param ccache: the client's credential cache (default: C{KRB5CCNAME}).
    @param service: the service part of the server's principal, C{SERVICE/host@REALM}.
    """

    name = "kerberos"

    def __init__(self, reactor, keytab: str | None = None, ccache: str | None = None,
                 service: str = DEFAULT_SERVICE, handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.reactor = reactor
        self.keytab = keytab
        self.ccache = ccache
        self.service = service
        self.handshake_timeout = handshake_timeout

    def new_context(self, target: gssapi.Name | None) -> gssapi.SecurityContext:
        """An accepting context (C{target} None) or one initiating towards C{target}."""
        if target is None:
            store = {"keytab": self.keytab} if self.keytab else None
            creds = gssapi.Credentials(usage="accept", store=store)
            return gssapi.SecurityContext(creds=creds, usage="accept")
        store = {"ccache": self.ccache} if self.ccache else None
        creds = gssapi.Credentials(usage="initiate", store=store)
        flags = [gssapi.RequirementFlag.mutual_authentication, gssapi.RequirementFlag.confidentiality,
                 gssapi.RequirementFlag.integrity, gssapi.RequirementFlag.replay_detection,
                 gssapi.RequirementFlag.out_of_sequence_detection]
        return gssapi.SecurityContext(name=target, creds=creds, usage="initiate", flags=flags)

    def server_endpoint(self, inner: IStreamServerEndpoint) -> IStreamServerEndpoint:
        """See L{ISecureTransport.server_endpoint}."""
        return AuthenticatingServerEndpoint(inner, lambda factory: _KerberosFactory(factory, self, None))

    def client_endpoint(self, inner: IStreamClientEndpoint, server_name: str | None = None) -> IStreamClientEndpoint:
        """See L{ISecureTransport.client_endpoint}; C{server_name} is the server's host name (required)."""
        if server_name is None:
            raise ValueError("Kerberos clients need the server's host name")
        target = gssapi.Name(f"{self.service}@{server_name}", gssapi.NameType.hostbased_service)

        def wrap(factory: IProtocolFactory, ready: Deferred) -> IProtocolFactory:
            return _KerberosFactory(factory, self, target, ready)

        return AuthenticatingClientEndpoint(inner, wrap)

    def peer_identity(self, transport) -> Identity:
        """See L{ISecureTransport.peer_identity}."""
        provider = IPeerIdentity(transport, None)
        identity = getattr(provider, "identity", None)
        if identity is None or identity.kind is not IdentityKind.KERBEROS:
            raise NoPeerIdentityError("the transport is not authenticated by Kerberos")
        return identity
