"""The authenticating wrapper, with a Clock and a StringTransport: deadlines, refusals, hand-over."""

from __future__ import annotations

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbtx.gss import Identity, IPeerIdentity, PeerRefusedError
from lbtx.gss.wrapping import AuthenticatingFactory, AuthenticatingProtocol

ALICE = Identity.x509("/CN=Alice")


class App(Protocol):
    made = 0
    received = b""
    lost = None

    def connectionMade(self):
        self.made += 1

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost = reason


def connect(timeout=5.0, ready=None):
    clock = Clock()
    factory = AuthenticatingFactory(Factory.forProtocol(App), clock, timeout, ready)
    wrapper = factory.buildProtocol(None)
    transport = StringTransport()
    wrapper.makeConnection(transport)
    return clock, wrapper, transport


class AuthenticatingProtocolTests(SynchronousTestCase):
    def test_application_waits_for_authentication(self):
        """The application is connected only when authenticated, then sees data; no timer is left."""
        clock, wrapper, transport = connect()
        app = wrapper.wrappedProtocol
        wrapper.dataReceived(b"early")
        self.assertEqual((app.made, app.received), (0, b""))
        wrapper.authenticated(ALICE)
        wrapper.dataReceived(b"late")
        self.assertEqual((app.made, app.received), (1, b"late"))
        self.assertIs(app.transport, wrapper)
        self.assertTrue(IPeerIdentity.providedBy(app.transport))
        self.assertEqual(app.transport.identity, ALICE)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_deadline(self):
        """No authentication within the handshake timeout: the connection is aborted and logged."""
        clock, wrapper, transport = connect(timeout=2.0)
        with capturedLogs() as events:
            clock.advance(1.9)
            self.assertFalse(transport.disconnecting)
            clock.advance(0.2)
        self.assertTrue(transport.disconnected)
        (event,) = events
        self.assertIn("no handshake within", event["log_format"])
        self.assertEqual(event["timeout"], 2.0)
        wrapper.authenticated(ALICE)  # too late: ignored
        self.assertEqual(wrapper.wrappedProtocol.made, 0)

    def test_refusal(self):
        """A refused peer is aborted with a log line naming the reason; the application never hears."""
        clock, wrapper, transport = connect()
        with capturedLogs() as events:
            wrapper.refuse(PeerRefusedError("revoked", "serial 0x1 was revoked"))
        self.assertTrue(transport.disconnected)
        self.assertEqual([(e["reason"], e["detail"]) for e in events], [("revoked", "serial 0x1 was revoked")])
        self.assertEqual(clock.getDelayedCalls(), [])
        wrapper.connectionLost(Failure(ConnectionError("gone")))
        self.assertIsNone(wrapper.wrappedProtocol.lost)

    def test_connection_lost_after_authentication_reaches_application(self):
        """Once connected, the application gets connectionLost as usual."""
        _, wrapper, _ = connect()
        app = wrapper.wrappedProtocol
        wrapper.authenticated(ALICE)
        wrapper.connectionLost(Failure(ConnectionError("gone")))
        self.assertIsInstance(app.lost.value, ConnectionError)

    def test_ready_fires_with_application(self):
        """A client's ready Deferred fires with the application protocol once authenticated."""
        ready = Deferred()
        _, wrapper, _ = connect(ready=ready)
        self.assertNoResult(ready)
        wrapper.authenticated(ALICE)
        self.assertIs(self.successResultOf(ready), wrapper.wrappedProtocol)

    def test_ready_fails_with_why(self):
        """Timeout gives TimeoutError, refusal PeerRefusedError, a lost handshake its reason."""
        ready = Deferred()
        clock, wrapper, _ = connect(timeout=1.0, ready=ready)
        clock.advance(1.0)
        wrapper.connectionLost(Failure(ConnectionError("aborted")))
        self.failureResultOf(ready, TimeoutError)

        ready = Deferred()
        _, wrapper, _ = connect(ready=ready)
        wrapper.refuse(PeerRefusedError("bad proxy", "x"))
        wrapper.connectionLost(Failure(ConnectionError("aborted")))
        self.failureResultOf(ready, PeerRefusedError)

        ready = Deferred()
        _, wrapper, _ = connect(ready=ready)
        with capturedLogs() as events:
            wrapper.connectionLost(Failure(ConnectionError("reset")))
        self.failureResultOf(ready, ConnectionError)
        self.assertIn("handshake with", events[0]["log_format"])

    def test_factory_may_refuse(self):
        """A wrapped factory that returns None refuses the connection outright."""
        factory = AuthenticatingFactory(Factory.forProtocol(App), Clock(), 1.0)
        factory.wrappedFactory.buildProtocol = lambda addr: None
        self.assertIsNone(factory.buildProtocol(None))

    def test_no_timeout(self):
        """A handshake timeout of None sets no timer (Unix peer credentials)."""
        clock, wrapper, _ = connect(timeout=None)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertIsInstance(wrapper, AuthenticatingProtocol)
