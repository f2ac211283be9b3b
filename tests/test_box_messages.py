"""Box protocol messages: round trips, the Delivery mapping, and what bad boxes say."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.acceptance import Delivery
from lbtx.protocols.box.messages import (
    DEFAULT_MAX_BATCH, PROTOCOL_VERSIONS, BatchAck, ErrorCode, ErrorReply, EventBatch, Hello,
    MessageError, Result, ResultCode, Welcome, choose_version, decode_reply, decode_request,
    reply_id)

MIXED = (Result(ResultCode.STORED), Result(ResultCode.DUPLICATE, "duplicate event"),
         Result(ResultCode.UNKNOWN_JOB, "job not registered"),
         Result(ResultCode.NOT_OWNER, "job registered by another user"),
         Result(ResultCode.EXISTS, "job already registered"),
         Result.invalid("Duplicate ULM key (key DATE)", "KEY_DUPLICITY"))


@pytest.mark.parametrize("request_", [
    Hello(1), Hello(5, (1, 2, 3), "lbtx-test/1"),
    EventBatch(2, [b"DATE=1 LVL=SYSTEM"]), EventBatch(2**63 - 1, [b"", b"\x00\xff", b"x" * 1000]),
])
def test_requests_round_trip(request_):
    assert decode_request(request_.to_box()) == request_


@pytest.mark.parametrize("reply, command", [
    (Welcome(1, 1, "lbtx/0", 1024, 10), "hello"),
    (BatchAck(3, MIXED), "events"),
    (ErrorReply(4, ErrorCode.INTERNAL, "database unavailable"), "events"),
    (ErrorReply(1, ErrorCode.UNSUPPORTED_VERSION, "no common version", (1,)), "hello"),
    (ErrorReply(0, ErrorCode.FRAME_ERROR, "frame too large"), ""),
])
def test_replies_round_trip(reply, command):
    box = reply.to_box()
    assert reply_id(box) == reply.request_id
    assert decode_reply(box, command) == reply


def test_ack_wire_keys():
    """Results travel as r.<i> tokens, reasons as m.<i>, details as d.<i>."""
    box = BatchAck(9, MIXED[:1] + MIXED[-1:]).to_box()
    assert box == {"_answer": b"9", "count": b"2", "r.0": b"stored", "r.1": b"invalid",
                   "m.1": b"Duplicate ULM key (key DATE)", "d.1": b"KEY_DUPLICITY"}


def test_every_delivery_maps_to_a_result():
    """Each acceptance outcome has its result code, and accepted agrees."""
    expected = {Delivery.STORED: ResultCode.STORED, Delivery.DUPLICATE: ResultCode.DUPLICATE,
                Delivery.REJECTED_UNREGISTERED: ResultCode.UNKNOWN_JOB,
                Delivery.REJECTED_NOT_OWNER: ResultCode.NOT_OWNER,
                Delivery.REJECTED_NOT_ALLOWED: ResultCode.NOT_OWNER,
                Delivery.REJECTED_EXISTS: ResultCode.EXISTS}
    assert set(expected) == set(Delivery)
    for delivery, code in expected.items():
        result = Result.from_delivery(delivery, "why")
        assert result == Result(code, "why")
        assert result.accepted == delivery.accepted


def test_result_code_properties():
    assert {c for c in ResultCode if c.accepted} == {ResultCode.STORED, ResultCode.DUPLICATE}
    assert {c for c in ResultCode if c.retryable} == {ResultCode.UNKNOWN_JOB}
    assert {c for c in ErrorCode if c.retryable} == {ErrorCode.INTERNAL, ErrorCode.TIMEOUT}


def test_choose_version():
    assert choose_version([1, 2], [1]) == 1
    assert choose_version([3, 2, 1], [1, 2]) == 2
    assert choose_version([7], PROTOCOL_VERSIONS) is None


def _batch(**extra) -> dict:
    box = {"_ask": b"3", "_command": b"events", "count": b"2", "e.0": b"a", "e.1": b"b"}
    box.update(extra)
    return {k: v for k, v in box.items() if v is not None}


@pytest.mark.parametrize("box, code, request_id, message", [
    ({"x": b"1"}, ErrorCode.BAD_REQUEST, None, "no _ask"),
    (_batch(_ask=b"0"), ErrorCode.BAD_REQUEST, None, "not a decimal number in 1.."),
    (_batch(_ask=b"-1"), ErrorCode.BAD_REQUEST, None, "request id"),
    (_batch(_ask=b"9223372036854775808"), ErrorCode.BAD_REQUEST, None, "request id"),
    (_batch(_command=None), ErrorCode.BAD_REQUEST, 3, "without _command"),
    (_batch(_command=b"purge"), ErrorCode.UNKNOWN_COMMAND, 3, "unknown command 'purge'"),
    (_batch(count=None), ErrorCode.BAD_REQUEST, 3, "missing key 'count'"),
    (_batch(count=b"two"), ErrorCode.BAD_REQUEST, 3, "not a decimal number"),
    (_batch(count=b"0", **{"e.0": None, "e.1": None}), ErrorCode.BAD_REQUEST, 3, "empty batch"),
    (_batch(**{"e.1": None}), ErrorCode.BAD_REQUEST, 3, "'e.1' is missing"),
    (_batch(**{"e.2": b"c"}), ErrorCode.BAD_REQUEST, 3, "3 e.* keys"),
    (_batch(count=str(DEFAULT_MAX_BATCH + 1).encode()), ErrorCode.TOO_LARGE, 3, "exceeds"),
    ({"_ask": b"1", "_command": b"hello"}, ErrorCode.BAD_REQUEST, 1, "missing key 'versions'"),
    ({"_ask": b"1", "_command": b"hello", "versions": b"1,x"}, ErrorCode.BAD_REQUEST, 1,
     "comma-separated"),
    ({"_ask": b"1", "_command": b"hello", "versions": b""}, ErrorCode.BAD_REQUEST, 1,
     "comma-separated"),
])
def test_bad_requests(box, code, request_id, message):
    """A bad request says what is wrong, what to answer, and to which request."""
    with pytest.raises(MessageError, match=message) as info:
        decode_request(box)
    assert info.value.code is code
    assert info.value.request_id == request_id


def test_batch_limit_is_configurable():
    with pytest.raises(MessageError) as info:
        decode_request(_batch(), max_batch=1)
    assert info.value.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize("box, command, message", [
    ({"count": b"1"}, "events", "no _answer or _error"),
    ({"_answer": b"0"}, "events", "request id"),
    ({"_answer": b"2", "count": b"1", "r.0": b"lost"}, "events", "unknown result"),
    ({"_answer": b"2", "count": b"2", "r.0": b"stored"}, "events", "'r.1' is missing"),
    ({"_answer": b"2", "version": b"1"}, "hello", "missing key 'max_frame'"),
    ({"_error": b"2", "code": b"oops"}, "events", "unknown error code"),
    ({"_error": b"2"}, "events", "missing key 'code'"),
    ({"_answer": b"2"}, "purge", "unknown command"),
])
def test_bad_replies(box, command, message):
    with pytest.raises(MessageError, match=message):
        decode_reply(box, command)


_KEYS = st.sampled_from(["_ask", "_answer", "_error", "_command", "count", "versions", "e.0",
                         "e.1", "r.0", "m.0", "version", "max_frame", "max_batch", "code"])
_VALUES = st.one_of(st.sampled_from([b"0", b"1", b"2", b"hello", b"events", b"stored", b"1,2",
                                     b"", b"-1", b"internal", b"99999999999999999999"]),
                    st.binary(max_size=8))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8), st.sampled_from(["hello", "events", ""]))
def test_random_boxes_only_message_error(box, command):
    """Whatever a well-framed box holds, decoding raises only MessageError."""
    for decode in (decode_request, lambda b: decode_reply(b, command)):
        try:
            decode(box)
        except MessageError:
            pass
