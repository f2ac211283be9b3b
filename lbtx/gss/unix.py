"""Unix domain sockets: the peer is the local user the kernel says it is (SO_PEERCRED).

Nothing is negotiated: the identity is known as soon as the connection exists.
L{unix_peer_identity} reads it from any connected UNIX socket transport;
L{UnixTransport} is the L{ISecureTransport} that attaches it to the transport of
the application protocol on either side.
"""

from __future__ import annotations

import pwd
import socket
import struct

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IReactorTime, IStreamClientEndpoint, IStreamServerEndpoint
from zope.interface import implementer

from lbtx.gss.errors import REASON_WRONG_NAME, NoPeerIdentityError, PeerRefusedError
from lbtx.gss.identity import Identity, IdentityKind
from lbtx.gss.interfaces import IPeerIdentity, ISecureTransport
from lbtx.gss.wrapping import (
    AuthenticatingClientEndpoint,
    AuthenticatingFactory,
    AuthenticatingProtocol,
    AuthenticatingServerEndpoint,
)

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def unix_peer_credentials(transport) -> tuple[int, int, int]:
    """C{(pid, uid, gid)} of the process at the other end of a connected UNIX socket transport.

    Raises L{NoPeerIdentityError} when the transport is not a UNIX socket or the
    platform has no SO_PEERCRED.
    """
    try:
        sock = transport.getHandle()
    except AttributeError:
        raise NoPeerIdentityError("the transport has no socket") from None
    if getattr(sock, "family", None) != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        raise NoPeerIdentityError("not a UNIX socket with SO_PEERCRED")
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError as e:
        raise NoPeerIdentityError(f"SO_PEERCRED failed: {e}") from None
    return _UCRED.unpack(data)


def unix_peer_identity(transport) -> Identity:
    """The local user at the other end of a connected UNIX socket transport.

    A uid without a passwd entry is named by its number. Raises
    L{NoPeerIdentityError} like L{unix_peer_credentials}.
    """
    _pid, uid, _gid = unix_peer_credentials(transport)
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Identity.unix(name, uid)


class _UnixAuthenticator(AuthenticatingProtocol):
    mechanism = "unix"

    def start_authentication(self) -> None:
        try:
            identity = unix_peer_identity(self.transport)
        except NoPeerIdentityError as e:
            self.refuse(PeerRefusedError("no peer credentials", str(e)))
            return
        expected = self.factory.expected_user
        if expected is not None and identity.name != expected:
            self.refuse(PeerRefusedError(
                REASON_WRONG_NAME, f"the socket belongs to {identity.name}, not {expected}"))
            return
        self.authenticated(identity)


class _UnixAuthenticatingFactory(AuthenticatingFactory):
    protocol = _UnixAuthenticator

    def __init__(self, wrapped_factory, clock, expected_user=None, ready=None) -> None:
        super().__init__(wrapped_factory, clock, None, ready)
        self.expected_user = expected_user


@implementer(ISecureTransport)
class UnixTransport:
    """Peer credentials on UNIX domain sockets."""

    name = "unix"

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def server_endpoint(self, inner: IStreamServerEndpoint) -> IStreamServerEndpoint:
        """See L{ISecureTransport.server_endpoint}; C{inner} listens on a UNIX socket."""
        return AuthenticatingServerEndpoint(
            inner, lambda factory: _UnixAuthenticatingFactory(factory, self.clock))

    def client_endpoint(
        self, inner: IStreamClientEndpoint, server_name: str | None = None
    ) -> IStreamClientEndpoint:
        """See L{ISecureTransport.client_endpoint}; C{server_name} is the user the server must run as."""

        def wrap(factory: IProtocolFactory, ready: Deferred) -> IProtocolFactory:
            return _UnixAuthenticatingFactory(factory, self.clock, server_name, ready)

        return AuthenticatingClientEndpoint(inner, wrap)

    def peer_identity(self, transport) -> Identity:
        """See L{ISecureTransport.peer_identity}; plain UNIX socket transports work too."""
        provider = IPeerIdentity(transport, None)
        identity = getattr(provider, "identity", None)
        if identity is not None:
            if identity.kind is not IdentityKind.UNIX:
                raise NoPeerIdentityError("the transport is not authenticated by peer credentials")
            return identity
        return unix_peer_identity(transport)
