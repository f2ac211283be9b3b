"""The interfaces of secure transports (TLS with X.509, Kerberos, Unix peer credentials).

A secure transport turns plain stream endpoints into authenticated ones. The
application protocol behind an authenticated endpoint is connected only once the
peer has proved who it is; its C{transport} then provides L{IPeerIdentity}.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IPeerIdentity(Interface):
    """A connected transport that knows who is at the other end."""

    identity = Attribute(
        "The L{lbtx.gss.identity.Identity} the peer authenticated as; fixed for the"
        " life of the connection."
    )


class ISecureTransport(Interface):
    """One way of authenticating stream connections, usable on both sides."""

    name = Attribute("Short name of the mechanism: 'tls', 'kerberos' or 'unix'.")

    def server_endpoint(inner):
        """Wrap the listening endpoint C{inner} (an C{IStreamServerEndpoint}).

        The returned C{IStreamServerEndpoint}'s C{listen(factory)} fires with the
        C{IListeningPort} of C{inner}. A protocol built by C{factory} is connected
        (C{makeConnection}) only after the peer authenticated, with a transport
        providing L{IPeerIdentity}; a peer that fails, or does not finish, the
        authentication within the transport's handshake timeout is disconnected
        and a log line says why.
        """

    def client_endpoint(inner, server_name=None):
        """Wrap the connecting endpoint C{inner} (an C{IStreamClientEndpoint}).

        C{server_name} is the name the server must prove (a DNS name or an IP
        address); C{None} skips that check. The returned endpoint's
        C{connect(factory)} fires with the protocol built by C{factory} once the
        server authenticated, connected to a transport providing
        L{IPeerIdentity}. It fails with L{lbtx.gss.errors.PeerRefusedError} when the
        server's credentials are refused, with C{twisted.internet.defer.TimeoutError}
        when the handshake does not finish in time, and with the connection error
        of C{inner} otherwise. Cancelling it drops the connection attempt.
        """

    def peer_identity(transport):
        """The L{lbtx.gss.identity.Identity} of the peer of the connected C{transport}.

        Raises L{lbtx.gss.errors.NoPeerIdentityError} when the transport did not
        come through this mechanism.
        """
