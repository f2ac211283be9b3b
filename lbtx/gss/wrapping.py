"""Holding an application protocol back until its peer has authenticated.

Every secure transport stacks an L{AuthenticatingProtocol} between the
connection and the application protocol. The application protocol is connected
(C{makeConnection}) only once the peer proved an identity, with the
authenticating wrapper as its transport (which provides L{IPeerIdentity}). A peer
that does not finish authenticating within the handshake timeout is dropped; one
that is refused is dropped with a log line that says why. The endpoints here
apply such a wrapping factory to any inner stream endpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import directlyProvides, implementer, providedBy

from lbtx.gss.errors import PeerRefusedError
from lbtx.gss.identity import Identity
from lbtx.gss.interfaces import IPeerIdentity


@implementer(IPeerIdentity)
class AuthenticatingProtocol(ProtocolWrapper):
    """The transport of an application protocol whose peer is being authenticated.

    Subclasses call L{authenticated} or L{refuse} once they know.
    """

    log = Logger()
    identity: Identity | None = None
    #: what the mechanism is called in log lines
    mechanism = "secure"

    def __init__(self, factory: AuthenticatingFactory, wrapped) -> None:
        super().__init__(factory, wrapped)
        self._connected = False
        self._outcome: Failure | PeerRefusedError | None = None
        self._timer: IDelayedCall | None = None

    def makeConnection(self, transport) -> None:
        # Like ProtocolWrapper.makeConnection, without connecting the application yet.
        directlyProvides(self, providedBy(transport))
        self.transport = transport
        self.connected = 1
        self.factory.registerProtocol(self)
        timeout = self.factory.handshake_timeout
        if timeout is not None:
            self._timer = self.factory.clock.callLater(timeout, self._timed_out)
        self.start_authentication()

    def start_authentication(self) -> None:
        """Called when the connection is made; the default waits for the mechanism."""

    def authenticated(self, identity: Identity) -> None:
        """The peer proved C{identity}: connect the application protocol."""
        if self._outcome is not None or self._connected:
            return
        self._cancel_timer()
        self.identity = identity
        self._connected = True
        self.log.debug("{mechanism} peer {peer} authenticated as {identity}",
                       mechanism=self.mechanism, peer=_peer(self.transport), identity=identity.display)
        self.wrappedProtocol.makeConnection(self)
        self.factory.peer_ready(self.wrappedProtocol)

    def refuse(self, error: PeerRefusedError) -> None:
        """The peer's credentials are refused: log why and drop the connection."""
        if self._outcome is not None or self._connected:
            return
        self._cancel_timer()
        self._outcome = error
        self.log.warn("refused {mechanism} peer {peer}: {reason}: {detail}",
                      mechanism=self.mechanism, peer=_peer(self.transport),
                      reason=error.reason, detail=error.detail)
        self.transport.abortConnection()

    def _timed_out(self) -> None:
        self._timer = None
        if self._outcome is not None or self._connected:
            return
        timeout = self.factory.handshake_timeout
        self._outcome = TimeoutError(f"no {self.mechanism} handshake within {timeout} s")
        self.log.warn("dropped {mechanism} peer {peer}: no handshake within {timeout} s",
                      mechanism=self.mechanism, peer=_peer(self.transport), timeout=timeout)
        self.transport.abortConnection()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def dataReceived(self, data: bytes) -> None:
        if self._connected:
            self.wrappedProtocol.dataReceived(data)

    def connectionLost(self, reason: Failure) -> None:
        self._cancel_timer()
        self.connected = 0
        self.factory.unregisterProtocol(self)
        if self._connected:
            self.wrappedProtocol.connectionLost(reason)
            return
        if self._outcome is None:
            self._outcome = reason
            self.log.warn("{mechanism} handshake with {peer} failed: {error}",
                          mechanism=self.mechanism, peer=_peer(self.transport),
                          error=reason.getErrorMessage())
        self.factory.peer_failed(self._outcome)


def _peer(transport) -> str:
    try:
        address = transport.getPeer()
    except Exception:
        return "?"
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is not None:
        return f"{host}:{port}"
    return str(getattr(address, "name", None) or address)


class AuthenticatingFactory(WrappingFactory):
    """Wraps the protocols of C{wrapped_factory} in C{protocol} (an L{AuthenticatingProtocol}).

    @ivar ready: fired with the application protocol once its peer authenticated,
        or failed with why it did not (client connections only).
    """

    protocol = AuthenticatingProtocol

    def __init__(
        self,
        wrapped_factory: IProtocolFactory,
        clock: IReactorTime,
        handshake_timeout: float | None,
        ready: Deferred | None = None,
    ) -> None:
        super().__init__(wrapped_factory)
        self.clock = clock
        self.handshake_timeout = handshake_timeout
        self.ready = ready

    def buildProtocol(self, addr):
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return None
        return self.protocol(self, wrapped)

    def peer_ready(self, protocol) -> None:
        """The application C{protocol} is connected to an authenticated peer."""
        if self.ready is not None and not self.ready.called:
            self.ready.callback(protocol)

    def peer_failed(self, why) -> None:
        """The connection closed before the peer authenticated, for reason C{why}."""
        if self.ready is not None and not self.ready.called:
            self.ready.errback(why if isinstance(why, Failure) else Failure(why))


@implementer(IStreamServerEndpoint)
class AuthenticatingServerEndpoint:
    """A server endpoint whose connections go through C{wrap(factory)} first."""

    def __init__(self, inner: IStreamServerEndpoint, wrap: Callable[[IProtocolFactory], IProtocolFactory]) -> None:
        self._inner = inner
        self._wrap = wrap

    def listen(self, factory: IProtocolFactory) -> Deferred:
        """Fire with the inner endpoint's listening port."""
        return self._inner.listen(self._wrap(factory))


@implementer(IStreamClientEndpoint)
class AuthenticatingClientEndpoint:
    """A client endpoint whose C{connect} fires once the server authenticated.

    C{wrap(factory, ready)} builds the factory given to the inner endpoint; it
    must fire C{ready} with the application protocol, or fail it.
    """

    def __init__(
        self,
        inner: IStreamClientEndpoint,
        wrap: Callable[[IProtocolFactory, Deferred], IProtocolFactory],
    ) -> None:
        self._inner = inner
        self._wrap = wrap

    def connect(self, factory: IProtocolFactory) -> Deferred:
        """Fire with the application protocol once connected and authenticated."""
        state: dict = {}

        def cancel(d: Deferred) -> None:
            attempt = state.get("attempt")
            if attempt is not None and not attempt.called:
                attempt.cancel()
            elif "transport" in state:
                state["transport"].abortConnection()

        ready: Deferred = Deferred(cancel)

        def connected(protocol):
            state["transport"] = protocol.transport
            return None

        def failed(reason: Failure) -> None:
            if not ready.called:
                ready.errback(reason)

        attempt = self._inner.connect(self._wrap(factory, ready))
        state["attempt"] = attempt
        attempt.addCallbacks(connected, failed)
        return ready
