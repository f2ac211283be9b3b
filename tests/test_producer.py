"""The producer library without daemons: sequence codes (formats.md §3.2),
records validated before they leave, addresses, timeouts of the blocking client."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lbtx.errors import LBFormatError
from lbtx.producer import Producer, RefusedError, UnavailableError
from lbtx.producer.address import Address, logger_address, server_address
from lbtx.producer.records import make_record, record_from_text
from lbtx.producer.sequence import Sequence
from lbtx.producer.wire import PIPELINE
from lbtx.protocols.actions import Handle, Send
from lbtx.protocols.box.messages import ErrorCode, Result, ResultCode
from lbtx.protocols.box.session import BoxServerSession
from lbtx.schema import Source
from lbtx import ulm

JOB = "https://lb.example.org:9000/9fNCdbnzCbuQZAX7wwrmrw"
ZERO = "UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


def test_sequence_installs_then_increments_its_own_counter():
    seq = Sequence(Source.USER_INTERFACE, ZERO, environ={})
    assert seq.current.startswith("UI=000001:NS=0000000000")       # RegJob carries UI=000001
    assert seq.advance().startswith("UI=000002:")
    wm = Sequence(Source.WORKLOAD_MANAGER, seq.current, environ={})
    assert wm.current == seq.current.replace("WM=000000", "WM=000001")  # others untouched


def test_sequence_from_the_environment_and_sources_without_counters():
    env = {"EDG_WL_SEQUENCE": ZERO.replace("NS=0000000000", "NS=0000000007")}
    seq = Sequence(Source.LOG_MONITOR, environ=env)
    assert "NS=0000000007" in seq.current and "LM=000001" in seq.current
    assert Sequence(Source.CREAM_INTERFACE, ZERO, environ={}).current == ZERO
    assert Sequence(Source.PBS_SERVER, environ={}).current.startswith("CLIENT=000000:SERVER=0000000001")


def test_records_are_validated_before_they_leave():
    line = make_record("Running", JOB, "LRMS", ZERO, node="wn01")
    ev = ulm.parse(line)
    assert ev.type_name == "Running" and ev.node == "wn01" and ev.user is None
    with pytest.raises(LBFormatError):
        make_record("NoSuchEvent", JOB, "LRMS", ZERO)
    with pytest.raises(LBFormatError):
        record_from_text("Transfer", JOB, "NetworkServer", ZERO, {"destination": "Nowhere"})
    with pytest.raises(LBFormatError):
        record_from_text("Running", JOB, "LRMS", ZERO, {"no_such": "x"})
    text = record_from_text("running", JOB, "LRMS", ZERO, {"node": 'wn "01"'}, host="a b")
    assert ulm.parse(text).node == 'wn "01"'


def test_addresses():
    assert logger_address(None, {}) == Address(path="lbtx-data/logger.sock")
    assert logger_address(None, {"GLITE_WMS_LOG_DESTINATION": "ui.example.org"}) == \
        Address(host="ui.example.org", port=9002)
    assert logger_address("/run/lb.sock", {}) == Address(path="/run/lb.sock")
    assert logger_address("h:1234", {}) == Address(host="h", port=1234)
    assert server_address(JOB) == Address(host="lb.example.org", port=9001)


def test_a_logger_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    producer = Producer(f"127.0.0.1:{listener.getsockname()[1]}", source="LRMS", timeout=0.3)
    ctx = producer.context(JOB, ZERO)
    before = ctx.seqcode
    start = time.monotonic()
    with pytest.raises(UnavailableError):
        producer.log(ctx, "Running", node="wn01")
    assert time.monotonic() - start < 3
    assert ctx.seqcode != before          # the counter moves on after a failed attempt too
    producer.close()
    listener.close()


def test_no_logger_is_unavailable(tmp_path):
    producer = Producer(str(tmp_path / "none.sock"), source="LRMS", timeout=1)
    with pytest.raises(UnavailableError):
        producer.log(producer.context(JOB, ZERO), "Running", node="wn01")


class FakeLogger:
    """A box server on a Unix socket in a thread (the sans-I/O session over a plain
    socket) that answers only when ``answer(requests)`` says so: it gets the
    requests not answered yet and returns the replies to send, in order (bytes from
    the session), or None to wait for more requests first."""

    def __init__(self, path, answer, *, max_batch: int = 2):
        self.path = str(path)
        self.answer = answer
        self.max_batch = max_batch
        self.seen: list[Handle] = []      # every request, in arrival order
        self.arrived_unanswered: list[int] = []   # unanswered requests at each answer
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(self.path)
        self._listener.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        session = BoxServerSession(max_batch=self.max_batch)
        waiting: list[Handle] = []
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for action in session.feed(data):
                    if isinstance(action, Send):
                        conn.sendall(action.data)
                    elif isinstance(action, Handle):
                        self.seen.append(action)
                        waiting.append(action)
                replies = self.answer(session, waiting)
                if replies is not None:
                    self.arrived_unanswered.append(len(waiting))
                    waiting.clear()
                    try:
                        conn.sendall(b"".join(replies))
                    except OSError:
                        return

    def close(self):
        self._listener.close()


def _stored(session, handle):
    return session.ack(handle.request_id, [Result(ResultCode.STORED)] * len(handle.lines))


def _all_at_once(count):
    """Answer nothing until ``count`` requests are waiting, then all of them."""
    def answer(session, waiting):
        if len(waiting) < count:
            return None
        return [_stored(session, h) for h in waiting]
    return answer


def test_log_many_pipelines_requests_over_max_batch(tmp_path):
    """7 events with max_batch 2 go as 4 requests, all on the wire before the first
    answer (the fake answers only when all 4 are there); codes advance per event."""
    fake = FakeLogger(tmp_path / "l.sock", _all_at_once(4))
    producer = Producer(fake.path, source="LRMS", timeout=5)
    ctx = producer.context(JOB, ZERO)
    first = ctx.seqcode
    codes = producer.log_many([(ctx, "Running", {"node": f"wn{i}"}) for i in range(7)])
    assert [len(h.lines) for h in fake.seen] == [2, 2, 2, 1]
    assert fake.arrived_unanswered == [4] and PIPELINE >= 4
    sent = [ulm.parse_bytes(line) for h in fake.seen for line in h.lines]
    assert [ev.node for ev in sent] == [f"wn{i}" for i in range(7)]
    assert sent[0].seqcode == first
    assert [ev.seqcode for ev in sent[1:]] == codes[:-1] and codes[-1] == ctx.seqcode
    assert len(set(codes)) == 7
    producer.close()
    fake.close()


def test_log_many_window_is_bounded_and_the_connection_reused(tmp_path):
    """With more requests than the pipeline holds, the producer waits for answers
    before sending more (the fake answers when PIPELINE requests wait, or the last
    one); the same connection then serves the next call."""
    def answer(session, waiting):
        if len(waiting) < PIPELINE and len(fake.seen) < 10:
            return None
        return [_stored(session, h) for h in waiting]
    fake = FakeLogger(tmp_path / "l.sock", answer, max_batch=1)
    producer = Producer(fake.path, source="LRMS", timeout=5)
    ctx = producer.context(JOB, ZERO)
    producer.log_many([(ctx, "Running", {"node": f"wn{i}"}) for i in range(10)])
    assert fake.arrived_unanswered == [PIPELINE, PIPELINE, 10 - 2 * PIPELINE]
    assert [h.request_id for h in fake.seen] == list(range(2, 12))   # 1 was the hello
    producer.log(ctx, "Running", node="again")
    assert len(fake.seen) == 11 and fake.seen[-1].request_id == 12
    producer.close()
    fake.close()


def test_log_many_validates_everything_before_sending(tmp_path):
    """An event that does not validate stops the call before anything is sent, and
    every context is as it was."""
    fake = FakeLogger(tmp_path / "l.sock", _all_at_once(1))
    producer = Producer(fake.path, source="LRMS", timeout=5)
    ctx, other = producer.context(JOB, ZERO), producer.context(JOB.replace("9fN", "8fN"), ZERO)
    before = (ctx.seqcode, other.seqcode)
    with pytest.raises((LBFormatError, TypeError)):
        producer.log_many([(ctx, "Running", {"node": "wn1"}), (other, "Running", {}),
                           (ctx, "Running", {"no_such_attribute": 1})])
    assert (ctx.seqcode, other.seqcode) == before
    assert producer.log_many([]) == []
    assert fake.seen == []
    producer.close()
    fake.close()


def test_log_many_refused_event_and_errors_mid_pipeline(tmp_path):
    """A refused event raises RefusedError naming it (index, every result); an error
    answer to one request of a pipeline is UnavailableError and the connection,
    with answers still due, is dropped and made afresh by the next call."""
    calls = []

    def answer(session, waiting):
        if len(waiting) < 2:
            return None
        calls.append(len(waiting))
        if len(calls) == 1:   # first call: the second event of request 2 is invalid
            return [_stored(session, waiting[0]),
                    session.ack(waiting[1].request_id, [Result(ResultCode.STORED),
                                                        Result.invalid("bad", "BAD_VALUE")])]
        return [session.fail(waiting[0].request_id, ErrorCode.INTERNAL, "disk full"),
                _stored(session, waiting[1])]
    fake = FakeLogger(tmp_path / "l.sock", answer)
    producer = Producer(fake.path, source="LRMS", timeout=5)
    ctx = producer.context(JOB, ZERO)
    with pytest.raises(RefusedError) as refused:
        producer.log_many([(ctx, "Running", {"node": f"wn{i}"}) for i in range(4)])
    assert refused.value.index == 3 and refused.value.code is ResultCode.INVALID
    assert [r.code for r in refused.value.results] == [ResultCode.STORED] * 3 + [
        ResultCode.INVALID]
    with pytest.raises(UnavailableError) as unavailable:
        producer.log_many([(ctx, "Running", {"node": f"wn{i}"}) for i in range(4)])
    assert unavailable.value.code is ErrorCode.INTERNAL
    connection = next(iter(producer._connections.values()))
    assert not connection.connected
    producer.close()
    fake.close()


def test_an_answer_to_another_request_is_unavailable(tmp_path):
    """An answer whose id is not the one awaited is never taken for it."""
    def wrong_id(session, waiting):
        if not waiting:
            return None
        return [session.ack(waiting[0].request_id + 1, [Result(ResultCode.STORED)])]
    fake = FakeLogger(tmp_path / "l.sock", wrong_id)
    producer = Producer(fake.path, source="LRMS", timeout=5)
    with pytest.raises(UnavailableError, match="expected one to"):
        producer.log(producer.context(JOB, ZERO), "Running", node="wn1")
    producer.close()
    fake.close()
