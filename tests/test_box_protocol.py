"""The box protocol's session and Twisted adapters: handshake, batches, ordering,
failures, deadlines, hostile peers, the legacy framings on the same port, and one
real TCP connection."""

from __future__ import annotations

import errno

import pytest_twisted
from twisted.internet import defer, error as ierror, task
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from box_support import RecordingHandler, connected, result_for
from lbtx.protocols.actions import Close, Handle, Ready, Send
from lbtx.protocols.box.codec import MAGIC, BoxDecoder, encode_box
from lbtx.protocols.box.messages import (
    BatchAck, ErrorCode, ErrorReply, EventBatch, Hello, Result, ResultCode, Welcome,
    decode_reply, encode_message, reply_id)
from lbtx.protocols.box.protocol import (
    LOGGER_PORT_FRAMINGS, BoxClient, BoxProtocolError, BoxRemoteError, BoxServerFactory,
    BoxServerProtocol, ServerLimits, connect_box, fixed_identity)
from lbtx.protocols.box.session import MAX_REASON, BoxServerSession
from lbtx.protocols.errors import FrameError
from lbtx.protocols.interfaces import IBatchHandler, IServerSession
from lbtx.protocols.legacy_framing.dglog import DglogAnswerDecoder, encode_dglog
from lbtx.protocols.legacy_framing.interlogger import (
    ILReply, ILReplyDecoder, encode_il_request)
from lbtx.protocols.legacy_framing.sessions import DglogServerSession, ILServerSession

HELLO = MAGIC + encode_message(Hello(1))
MIXED = [b"stored", b"duplicate seen before", b"unknown_job job not registered",
         b"not_owner job registered by another user", b"exists job already registered",
         b"invalid Duplicate ULM key"]


def _replies(data: bytes, commands: dict[int, str]) -> list:
    """Decode a server's output; ``commands`` gives each request id's command."""
    boxes = BoxDecoder(preamble=MAGIC).feed(data)
    return [decode_reply(b, commands.get(reply_id(b), "")) for b in boxes]


def _batch(request_id: int, *lines: bytes) -> bytes:
    return encode_message(EventBatch(request_id, lines))


# --- the sans-I/O session --------------------------------------------------------------------

class BoxSessionTests(SynchronousTestCase):

    def test_provides_interface(self):
        """Every server session provides IServerSession; the fake handler IBatchHandler."""
        for session in (BoxServerSession(), ILServerSession(), DglogServerSession()):
            verifyObject(IServerSession, session)
        verifyObject(IBatchHandler, RecordingHandler())

    def test_handshake(self):
        """Magic and hello give the magic and a welcome with the limits, then Ready."""
        session = BoxServerSession(max_frame=1000, max_batch=5, agent="test/1")
        assert session.feed(HELLO) == [
            Send(MAGIC + encode_message(Welcome(1, 1, "test/1", 1000, 5))), Ready("box", 1)]
        assert session.version == 1

    def test_batches_become_handle_actions(self):
        session = BoxServerSession()
        session.feed(HELLO)
        assert session.feed(_batch(2, b"a", b"b") + _batch(3, b"c")) == [
            Handle(2, (b"a", b"b")), Handle(3, (b"c",))]
        ack = session.ack(2, [Result(ResultCode.STORED), Result(ResultCode.DUPLICATE)])
        assert _replies(MAGIC + ack, {2: "events"}) == [
            BatchAck(2, (Result(ResultCode.STORED), Result(ResultCode.DUPLICATE)))]

    def test_request_before_hello_closes(self):
        (close,) = BoxServerSession().feed(MAGIC + _batch(1, b"a"))
        assert isinstance(close, Close)
        assert _replies(close.data, {}) == [
            ErrorReply(1, ErrorCode.HANDSHAKE_REQUIRED, "the first request must be hello")]

    def test_unsupported_version_closes_with_a_clear_error(self):
        """No common version: an error box naming both sides' versions, then close."""
        session = BoxServerSession()
        (close,) = session.feed(MAGIC + encode_message(Hello(1, (7, 8))))
        (reply,) = _replies(close.data, {})
        assert reply.code is ErrorCode.UNSUPPORTED_VERSION
        assert reply.versions == (1,)
        assert "this server speaks 1, the client offered 7, 8" in reply.message
        assert session.feed(HELLO) == []

    def test_bad_request_after_handshake_keeps_the_connection(self):
        session = BoxServerSession(max_batch=1)
        session.feed(HELLO)
        unknown = encode_box({"_ask": b"2", "_command": b"purge"})
        actions = session.feed(unknown + _batch(3, b"a", b"b") + _batch(4, b"a"))
        assert [type(a) for a in actions] == [Send, Send, Handle]
        replies = _replies(MAGIC + actions[0].data + actions[1].data, {})
        assert [(r.request_id, r.code) for r in replies] == [
            (2, ErrorCode.UNKNOWN_COMMAND), (3, ErrorCode.TOO_LARGE)]

    def test_second_hello_is_refused(self):
        session = BoxServerSession()
        session.feed(HELLO)
        (send,) = session.feed(encode_message(Hello(2)))
        assert _replies(MAGIC + send.data, {})[0].message == "hello already received"

    def test_reused_outstanding_id_closes(self):
        session = BoxServerSession()
        session.feed(HELLO)
        actions = session.feed(_batch(2, b"a") + _batch(2, b"b"))
        assert actions[0] == Handle(2, (b"a",))
        assert isinstance(actions[1], Close) and "reused while outstanding" in actions[1].reason
        # once answered, an id may be used again
        session = BoxServerSession()
        session.feed(HELLO)
        session.feed(_batch(2, b"a"))
        session.ack(2, [Result(ResultCode.STORED)])
        assert session.feed(_batch(2, b"b")) == [Handle(2, (b"b",))]

    def test_box_without_envelope_closes(self):
        session = BoxServerSession()
        session.feed(HELLO)
        (close,) = session.feed(encode_box({"x": b"1"}))
        (reply,) = _replies(MAGIC + close.data, {})
        assert reply.request_id == 0 and reply.code is ErrorCode.BAD_REQUEST

    def test_frame_error_after_good_requests(self):
        """Requests before the broken frame are handled; then a frame_error box closes."""
        session = BoxServerSession(max_frame=100)
        actions = session.feed(HELLO + _batch(2, b"a") + b"\x00\x00\x01\x00")
        assert actions[2] == Handle(2, (b"a",))
        assert isinstance(actions[3], Close)
        welcome, reply = _replies(actions[0].data + actions[3].data, {1: "hello"})
        assert reply == ErrorReply(0, ErrorCode.FRAME_ERROR,
                                   "frame of 256 bytes exceeds the maximum frame size of 100")

    def test_truncation_is_reported(self):
        session = BoxServerSession()
        session.feed(HELLO + _batch(2, b"abc")[:-1])
        assert "stream ended inside a frame" in session.end()
        assert BoxServerSession().end() is None


# --- the adapters over memory transports ----------------------------------------------------

def _string_server(handler=None, *, limits=ServerLimits(), **kwargs):
    clock = task.Clock()
    proto = BoxServerProtocol(handler or RecordingHandler(), clock=clock, limits=limits, **kwargs)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport, clock


class ServerProtocolTests(SynchronousTestCase):

    def test_handshake_and_mixed_results(self):
        """The client gets the welcome, then one result per event, in order."""
        handler = RecordingHandler()
        client, server, pump = connected(handler, server_kwargs={
            "identify": fixed_identity("unix:alice")})
        welcome = self.successResultOf(client.when_ready())
        assert (welcome.version, welcome.max_batch) == (1, 1000)
        d = client.send_batch(MIXED)
        pump.flush()
        results = self.successResultOf(d)
        assert [r.code for r in results] == [
            ResultCode.STORED, ResultCode.DUPLICATE, ResultCode.UNKNOWN_JOB,
            ResultCode.NOT_OWNER, ResultCode.EXISTS, ResultCode.INVALID]
        assert results[5] == Result(ResultCode.INVALID, "Duplicate ULM key", "KEY_DUPLICITY")
        assert handler.calls[0].peer_identity == "unix:alice"
        assert handler.calls[0].lines == MIXED

    def test_batches_may_follow_the_hello_at_once(self):
        """A client need not wait for the welcome before its first batch."""
        handler = RecordingHandler()
        proto, transport, _ = _string_server(handler)
        proto.dataReceived(HELLO + _batch(2, b"stored"))
        replies = _replies(transport.value(), {1: "hello", 2: "events"})
        assert [type(r) for r in replies] == [Welcome, BatchAck]

    def test_pipelined_requests_answered_in_order(self):
        """Batches are handled one at a time; answers and errors keep request order."""
        handler = RecordingHandler(auto=False)
        proto, transport, _ = _string_server(handler)
        bad = encode_box({"_ask": b"3", "_command": b"events", "count": b"2", "e.0": b"x"})
        proto.dataReceived(HELLO + _batch(2, b"a") + bad + _batch(4, b"b", b"c"))
        assert len(handler.calls) == 1
        assert len(_replies(transport.value(), {1: "hello"})) == 1  # the welcome only
        handler.answer(0)
        assert len(handler.calls) == 2 and handler.calls[1].lines == [b"b", b"c"]
        handler.answer(1)
        replies = _replies(transport.value(), {1: "hello", 2: "events", 4: "events"})
        assert [r.request_id for r in replies] == [1, 2, 3, 4]
        assert replies[2].code is ErrorCode.BAD_REQUEST

    def test_pipelined_through_the_client(self):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler)
        ds = [client.send_batch([b"stored %d" % i]) for i in range(3)]
        pump.flush()
        assert client.outstanding == 3
        fired = []
        for d in ds:
            d.addCallback(fired.append)
        for i in range(3):
            assert len(handler.calls) == i + 1
            handler.answer(i)
            pump.flush()
        assert [r[0].reason for r in fired] == ["0", "1", "2"]
        assert client.outstanding == 0

    def test_handler_failure_gives_an_error_and_the_connection_stays(self):
        """A failing handler gives a retryable internal error; the next batch works."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler)
        d1 = client.send_batch([b"a"])
        d2 = client.send_batch([b"b"])
        pump.flush()
        handler.calls[0].deferred.errback(ZeroDivisionError("boom"))
        pump.flush()
        failure = self.failureResultOf(d1, BoxRemoteError)
        assert failure.value.code is ErrorCode.INTERNAL and failure.value.retryable
        assert "boom" not in failure.value.reply.message
        assert len(self.flushLoggedErrors(ZeroDivisionError)) == 1
        handler.answer(1)
        pump.flush()
        assert self.successResultOf(d2)[0].code is ResultCode.STORED

    def test_handler_answering_the_wrong_count_is_an_internal_error(self):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler)
        d = client.send_batch([b"a", b"b"])
        pump.flush()
        handler.calls[0].deferred.callback([Result(ResultCode.STORED)])
        pump.flush()
        assert self.failureResultOf(d, BoxRemoteError).value.code is ErrorCode.INTERNAL

    def test_handler_raising_synchronously(self):
        class Raising:
            def handle_batch(self, peer_identity, lines):
                raise RuntimeError("synchronous")
        client, server, pump = connected(Raising())
        d = client.send_batch([b"a"])
        pump.flush()
        assert self.failureResultOf(d, BoxRemoteError).value.code is ErrorCode.INTERNAL
        assert len(self.flushLoggedErrors(RuntimeError)) == 1

    def test_unencodable_answer_closes(self):
        """An answer that cannot be encoded is logged and the connection closed, not
        left hanging."""
        class Verbose:
            def handle_batch(self, peer_identity, lines):
                return defer.succeed([Result(ResultCode.INVALID, "r" * 2000, "d" * 2000)
                                      for _ in lines])
        proto, transport, clock = _string_server(Verbose(), limits=ServerLimits(max_batch=9000))
        proto.dataReceived(HELLO + _batch(2, *[b"a"] * 9000))
        assert len(self.flushLoggedErrors(FrameError)) == 1
        assert transport.disconnecting

    def test_server_request_timeout(self):
        """A handler that does not answer in time gives a retryable timeout error."""
        server_clock = task.Clock()
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, server_clock=server_clock,
                                         limits=ServerLimits(request_timeout=5))
        d = client.send_batch([b"a"])
        pump.flush()
        server_clock.advance(4.9)
        pump.flush()
        self.assertNoResult(d)
        server_clock.advance(0.1)
        pump.flush()
        failure = self.failureResultOf(d, BoxRemoteError)
        assert failure.value.code is ErrorCode.TIMEOUT and failure.value.retryable
        d2 = client.send_batch([b"b"])
        pump.flush()
        handler.answer(1)
        pump.flush()
        assert self.successResultOf(d2)[0].code is ResultCode.STORED

    def test_idle_timeout_closes(self):
        """With nothing outstanding and nothing received, the server closes after
        idle_timeout; received bytes restart the count."""
        server_clock = task.Clock()
        client, server, pump = connected(RecordingHandler(), server_clock=server_clock,
                                         limits=ServerLimits(idle_timeout=10))
        server_clock.advance(9)
        d = client.send_batch([b"a"])
        pump.flush()
        self.successResultOf(d)
        server_clock.advance(9)
        assert not server.transport.disconnecting
        with capturedLogs() as events:
            server_clock.advance(1)
        assert server.transport.disconnecting
        assert any("idle" in e["log_format"] for e in events)
        pump.flush()
        assert server_clock.getDelayedCalls() == []
        self.failureResultOf(client.send_batch([b"b"]), ierror.ConnectionDone)

    def test_no_idle_timeout_while_a_request_is_outstanding(self):
        server_clock = task.Clock()
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, server_clock=server_clock,
                                         limits=ServerLimits(idle_timeout=10, request_timeout=60))
        d = client.send_batch([b"a"])
        pump.flush()
        server_clock.advance(30)
        assert not server.transport.disconnecting
        handler.answer(0)
        pump.flush()
        self.successResultOf(d)
        server_clock.advance(10)
        assert server.transport.disconnecting

    def test_handshake_timeout_closes_a_silent_peer(self):
        """A peer that connects and sends nothing is dropped at the handshake deadline."""
        proto, transport, clock = _string_server(limits=ServerLimits(handshake_timeout=30))
        clock.advance(29)
        assert not transport.disconnecting
        with capturedLogs() as events:
            clock.advance(1)
        assert transport.disconnecting and transport.value() == b""
        assert any("no handshake" in e["log_format"] for e in events)
        proto.connectionLost(ierror.ConnectionDone())
        assert clock.getDelayedCalls() == []

    def test_handshake_deadline_not_extended_by_trickling(self):
        proto, transport, clock = _string_server(limits=ServerLimits(handshake_timeout=5,
                                                                     idle_timeout=100))
        for byte in HELLO[:5]:
            proto.dataReceived(bytes([byte]))
            clock.advance(1)
        assert transport.disconnecting

    def test_close_aborts_a_peer_that_does_not_go(self):
        proto, transport, clock = _string_server(limits=ServerLimits(handshake_timeout=1,
                                                                     close_timeout=10))
        clock.advance(1)
        assert transport.disconnecting and not transport.disconnected
        clock.advance(10)
        assert transport.disconnected  # StringTransport's abortConnection mark
        proto.connectionLost(ierror.ConnectionLost())
        assert clock.getDelayedCalls() == []

    def test_handshake_done_in_time_leaves_only_the_idle_timer(self):
        proto, transport, clock = _string_server(limits=ServerLimits(idle_timeout=10))
        proto.dataReceived(HELLO + _batch(2, b"a"))
        (idle,) = clock.getDelayedCalls()
        assert idle.getTime() == 10
        proto.connectionLost(ierror.ConnectionDone())
        assert clock.getDelayedCalls() == []

    def test_garbage_is_dropped_with_a_log_line(self):
        proto, transport, clock = _string_server()
        with capturedLogs() as events:
            proto.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        assert transport.disconnecting and transport.value() == b""
        (event,) = [e for e in events if e["log_format"].startswith("dropping")]
        assert "unrecognised first bytes" in event["reason"]
        proto.dataReceived(b"more")  # ignored after the decision to close

    def test_oversized_frame_gets_an_error_box_and_a_close(self):
        proto, transport, clock = _string_server(limits=ServerLimits(max_frame=1000))
        proto.dataReceived(HELLO + b"\x00\x00\x03\xe9")
        replies = _replies(transport.value(), {1: "hello"})
        assert replies[-1] == ErrorReply(
            0, ErrorCode.FRAME_ERROR, "frame of 1001 bytes exceeds the maximum frame size of 1000")
        assert transport.disconnecting

    def test_close_waits_for_earlier_answers(self):
        """A broken stream after a pending batch: its ack comes first, then the error."""
        handler = RecordingHandler(auto=False)
        proto, transport, clock = _string_server(handler)
        proto.dataReceived(HELLO + _batch(2, b"a") + b"\x00\x00\x00\x00")
        assert not transport.disconnecting
        handler.answer(0)
        replies = _replies(transport.value(), {1: "hello", 2: "events"})
        assert [type(r) for r in replies] == [Welcome, BatchAck, ErrorReply]
        assert transport.disconnecting

    def test_backpressure(self):
        """Reading pauses while max_pending requests wait and resumes as they drain."""
        handler = RecordingHandler(auto=False)
        proto, transport, clock = _string_server(handler, limits=ServerLimits(max_pending=2))
        proto.dataReceived(HELLO + _batch(2, b"a"))
        assert transport.producerState == "producing"
        proto.dataReceived(_batch(3, b"b"))
        assert transport.producerState == "paused"
        handler.answer(0)
        assert transport.producerState == "producing"

    def test_connection_lost_while_handling(self):
        """The handler's late answer after the peer left is dropped quietly."""
        handler = RecordingHandler(auto=False)
        proto, transport, clock = _string_server(handler)
        proto.dataReceived(HELLO + _batch(2, b"a") + _batch(3, b"b"))
        written = transport.value()
        proto.connectionLost(ierror.ConnectionLost())
        handler.answer(0)
        assert transport.value() == written and len(handler.calls) == 1

    def test_factory_limits_connections(self):
        factory = BoxServerFactory(RecordingHandler(), clock=task.Clock(),
                                   limits=ServerLimits(max_connections=1))
        first = factory.buildProtocol(None)
        first.makeConnection(StringTransport())
        assert factory.buildProtocol(None) is None
        first.connectionLost(ierror.ConnectionDone())
        assert factory.buildProtocol(None) is not None


class LegacyOnTheSamePortTests(SynchronousTestCase):

    def _il(self, data: bytes, handler=None):
        proto, transport, clock = _string_server(handler or RecordingHandler())
        proto.dataReceived(data)
        return proto, transport, ILReplyDecoder().feed(transport.value())

    def test_legacy_interlogger_frames(self):
        """The store port answers legacy frames per formats.md §6.7, one by one."""
        handler = RecordingHandler()
        frames = b"".join(encode_il_request(line) for line in MIXED)
        proto, transport, replies = self._il(frames, handler)
        assert [(r.code, r.minor) for r in replies] == [
            (0, 0), (0, 0), (700, errno.ENOENT), (600, 0), (700, errno.EEXIST), (400, 1404)]
        assert [c.lines for c in handler.calls] == [[line] for line in MIXED]
        assert not transport.disconnecting

    def test_legacy_frame_split_byte_by_byte(self):
        proto, transport, clock = _string_server()
        for byte in encode_il_request(b"stored"):
            proto.dataReceived(bytes([byte]))
        assert ILReplyDecoder().feed(transport.value()) == [ILReply(0, 0, "OK")]

    def test_legacy_bad_magic_answered_and_closed(self):
        body = b"6 nobody\n1 x\n"
        proto, transport, replies = self._il(b"%16d\n" % len(body) + body)
        assert [(r.code, r.minor) for r in replies] == [(400, 0)]
        assert transport.disconnecting

    def test_legacy_bad_header_closed_unanswered(self):
        proto, transport, replies = self._il(b"   12 34 garbage\n" + b"x" * 20)
        assert replies == [] and transport.disconnecting

    def test_legacy_handler_failure_is_retryable(self):
        handler = RecordingHandler(auto=False)
        proto, transport, _ = self._il(encode_il_request(b"a"), handler)
        handler.calls[0].deferred.errback(RuntimeError("database is locked"))
        self.flushLoggedErrors(RuntimeError)
        (reply,) = ILReplyDecoder().feed(transport.value())
        assert (reply.code, reply.minor) == (700, 1411)

    def test_dglog_on_the_logger_port(self):
        class DiskFull:
            def handle_batch(self, peer_identity, lines):
                if lines == [b"full"]:
                    return defer.fail(OSError(errno.ENOSPC, "No space left on device"))
                return defer.succeed([result_for(line) for line in lines])
        proto, transport, clock = _string_server(DiskFull(), framings=LOGGER_PORT_FRAMINGS)
        proto.dataReceived(encode_dglog(b"stored") + encode_dglog(b"invalid x")
                           + encode_dglog(b"full") + b"HELLO")
        self.flushLoggedErrors(OSError)
        assert DglogAnswerDecoder().feed(transport.value()) == [0, 1404, errno.ENOSPC,
                                                                 errno.EINVAL]
        assert transport.disconnecting

    def test_framings_not_accepted_are_dropped(self):
        proto, transport, clock = _string_server()
        proto.dataReceived(encode_dglog(b"a"))
        assert transport.disconnecting and transport.value() == b""
        proto, transport, clock = _string_server(framings=LOGGER_PORT_FRAMINGS)
        proto.dataReceived(encode_il_request(b"a"))
        assert transport.disconnecting and transport.value() == b""


# --- the client ---------------------------------------------------------------------------

def _string_client(**kwargs):
    clock = task.Clock()
    client = BoxClient(clock=clock, **kwargs)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, clock


class ClientTests(SynchronousTestCase):

    def test_answer_in_time_leaves_no_delayed_calls(self):
        """A request answered before its deadline leaves the client's clock empty."""
        client_clock = task.Clock()
        client, server, pump = connected(RecordingHandler(), client_clock=client_clock)
        d = client.send_batch([b"a"], timeout=5)
        pump.flush()
        self.successResultOf(d)
        assert client_clock.getDelayedCalls() == []

    def test_request_timeout_and_late_answer_ignored(self):
        """Past its deadline a request fails with TimeoutError; its late answer is
        dropped and later requests still get their own answers."""
        client_clock = task.Clock()
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, client_clock=client_clock,
                                         client_kwargs={"request_timeout": 5})
        d1 = client.send_batch([b"stored first"])
        d2 = client.send_batch([b"duplicate second"], timeout=60)
        pump.flush()
        client_clock.advance(5)
        self.failureResultOf(d1, defer.TimeoutError)
        self.assertNoResult(d2)
        handler.answer(0)
        pump.flush()
        assert client.outstanding == 1
        handler.answer(1)
        pump.flush()
        assert self.successResultOf(d2) == [Result(ResultCode.DUPLICATE, "second")]
        assert client_clock.getDelayedCalls() == []
        assert not client.transport.disconnecting

    def test_welcome_timeout(self):
        client, transport, clock = _string_client(handshake_timeout=10)
        (hello,) = BoxDecoder(preamble=MAGIC).feed(transport.value())
        assert hello["_command"] == b"hello" and hello["versions"] == b"1"
        ready = client.when_ready()
        clock.advance(10)
        self.failureResultOf(ready, defer.TimeoutError)
        self.failureResultOf(client.when_ready(), defer.TimeoutError)
        assert transport.disconnecting

    def test_unsupported_version(self):
        client, server, pump = connected(RecordingHandler(), client_kwargs={"versions": (7,)})
        failure = self.failureResultOf(client.when_ready(), BoxRemoteError)
        assert failure.value.code is ErrorCode.UNSUPPORTED_VERSION
        assert "offered 7" in str(failure.value)
        assert server.transport.disconnected

    def test_connection_lost_fails_pending_requests(self):
        client, transport, clock = _string_client()
        d = client.send_batch([b"a"])
        client.connectionLost(ierror.ConnectionLost())
        self.failureResultOf(d, ierror.ConnectionLost)
        self.failureResultOf(client.send_batch([b"b"]), ierror.ConnectionLost)
        assert clock.getDelayedCalls() == []

    def test_garbage_from_the_server(self):
        client, transport, clock = _string_client()
        d = client.send_batch([b"a"])
        client.dataReceived(b"HTTP/1.1 400 Bad Request\r\n")
        self.failureResultOf(d, BoxProtocolError)
        self.failureResultOf(client.when_ready(), BoxProtocolError)
        assert transport.disconnected

    def test_answer_to_an_unknown_request(self):
        client, transport, clock = _string_client()
        d = client.send_batch([b"a"])
        client.dataReceived(MAGIC + encode_message(BatchAck(99, [Result(ResultCode.STORED)])))
        self.failureResultOf(d, BoxProtocolError)

    def test_ack_with_the_wrong_count(self):
        client, transport, clock = _string_client()
        d = client.send_batch([b"a", b"b"])
        client.dataReceived(MAGIC + encode_message(Welcome(1, 1))
                            + encode_message(BatchAck(2, [Result(ResultCode.STORED)])))
        failure = self.failureResultOf(d, BoxProtocolError)
        assert "1 results for 2 events" in str(failure.value)

    def test_welcome_with_a_version_not_offered(self):
        client, transport, clock = _string_client()
        client.dataReceived(MAGIC + encode_message(Welcome(1, 9)))
        self.failureResultOf(client.when_ready(), BoxProtocolError)

    def test_connection_level_error_fails_everything(self):
        client, transport, clock = _string_client()
        d = client.send_batch([b"a"])
        client.dataReceived(MAGIC + encode_message(
            ErrorReply(0, ErrorCode.FRAME_ERROR, "too big")))
        assert self.failureResultOf(d, BoxRemoteError).value.code is ErrorCode.FRAME_ERROR
        assert transport.disconnecting

    def test_batches_within_the_servers_limits(self):
        client, transport, clock = _string_client()
        client.dataReceived(MAGIC + encode_message(Welcome(1, 1, max_frame=100, max_batch=2)))
        assert client.max_batch == 2 and client.max_frame == 100
        self.failureResultOf(client.send_batch([]), ValueError)
        self.failureResultOf(client.send_batch([b"a"] * 3), ValueError)
        self.failureResultOf(client.send_batch([b"x" * 100]), FrameError)
        self.failureResultOf(client.send_batch(["text"]), ValueError)
        assert client.outstanding == 0


# --- a real socket --------------------------------------------------------------------------

@pytest_twisted.inlineCallbacks
def test_real_tcp_connection():
    """Over TCP on 127.0.0.1 with the real reactor: handshake, a 2 MB event and a
    mixed batch, pipelined, then a clean close on both ends."""
    from twisted.internet import reactor
    handler = RecordingHandler()
    factory = BoxServerFactory(handler, clock=reactor, identify=fixed_identity("tcp-test"))
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    try:
        endpoint = clientFromString(reactor, f"tcp:127.0.0.1:{port.getHost().port}")
        client = yield connect_box(endpoint, clock=reactor, connect_timeout=10,
                                   request_timeout=10)
        assert client.welcome.version == 1
        big = b"stored " + b"x" * (2 * 1024 * 1024)
        first = client.send_batch([big])
        second = client.send_batch(MIXED)
        results = yield defer.gatherResults([first, second])
        assert results[0] == [Result(ResultCode.STORED, "x" * MAX_REASON)]  # reasons are cut
        assert [r.code for r in results[1]][:3] == [
            ResultCode.STORED, ResultCode.DUPLICATE, ResultCode.UNKNOWN_JOB]
        assert handler.calls[0].lines == [big]
        assert {c.peer_identity for c in handler.calls} == {"tcp-test"}
        client.transport.loseConnection()
        for _ in range(200):
            if not factory.connections:
                break
            yield task.deferLater(reactor, 0.01, lambda: None)
        assert not factory.connections
    finally:
        yield port.stopListening()
