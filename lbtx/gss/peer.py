"""Who is at the other end of a transport, whichever mechanism proved it."""

from __future__ import annotations

from lbtx.gss.errors import NoPeerIdentityError
from lbtx.gss.identity import Identity
from lbtx.gss.interfaces import IPeerIdentity
from lbtx.gss.unix import unix_peer_identity


def peer_identity(transport) -> Identity:
    """The identity of the peer of the connected C{transport}.

    The identity a secure transport attached (L{IPeerIdentity}: TLS, Kerberos,
    peer credentials), else for a plain UNIX socket the peer's Unix user.
    Raises L{NoPeerIdentityError} for an unauthenticated network connection.
    """
    provider = IPeerIdentity(transport, None)
    identity = getattr(provider, "identity", None)
    if identity is not None:
        return identity
    try:
        return unix_peer_identity(transport)
    except NoPeerIdentityError:
        raise NoPeerIdentityError("the peer of this connection is not authenticated") from None
