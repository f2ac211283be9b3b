"""Legacy framings (formats.md §4.2, §4.5, §5.12), their sessions, codes and the sniffer."""

from __future__ import annotations

import doctest
import errno

import pytest
from hypothesis import given, settings, strategies as st

import lbtx.protocols.box.codec
import lbtx.protocols.legacy_framing.dglog
import lbtx.protocols.legacy_framing.interlogger
from lbtx.protocols.actions import Close, Handle, Ready
from lbtx.protocols.box.codec import MAGIC
from lbtx.protocols.box.messages import ErrorCode, Result, ResultCode
from lbtx.protocols.errors import FrameError
from lbtx.protocols.legacy_framing.codes import (
    dglog_answer_for, dglog_answer_for_error, il_reply_for, il_reply_for_error, lb_error_code)
from lbtx.protocols.legacy_framing.dglog import (
    DglogAnswerDecoder, DglogDecoder, DglogFrameError, encode_dglog, encode_dglog_answer)
from lbtx.protocols.legacy_framing.interlogger import (
    ILBodyError, ILReply, ILReplyDecoder, ILRequestDecoder, encode_il_reply, encode_il_request)
from lbtx.protocols.legacy_framing.sessions import DglogServerSession, ILServerSession
from lbtx.protocols.sniff import Framing, sniff

RECORD = (b'DG.LLLID=4242000 DG.USER="/DC=org/DC=example/CN=Alice Example" '
          b'DATE=20240301120000.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM '
          b'DG.PRIORITY=0 DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" '
          b'DG.EVNT="Transfer" DG.JOBID="https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"')
RECORDS = [RECORD, b"x", RECORD.replace(b"Alice", b"Bob")]


def _split_everywhere(decoder_factory, stream: bytes, expected: list) -> None:
    for i in range(len(stream) + 1):
        decoder = decoder_factory()
        assert decoder.feed(stream[:i]) + decoder.feed(stream[i:]) == expected
    decoder = decoder_factory()
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i:i + 1])
    assert out == expected
    decoder.finish()


def test_doctests():
    for module in (lbtx.protocols.box.codec, lbtx.protocols.legacy_framing.dglog,
                   lbtx.protocols.legacy_framing.interlogger):
        assert doctest.testmod(module).failed == 0


# --- interlogger → server (§5.12) ----------------------------------------------------------

def test_request_layout_matches_the_spec_example():
    """A 418-byte record gives a 432-byte body: header, magic string, record string."""
    record = b"r" * 418
    frame = encode_il_request(record)
    assert frame.startswith(b"             432\n" b"6 michal\n" b"418 ")
    assert frame.endswith(record + b"\n")
    assert len(frame) == 17 + 432


def test_reply_layout_matches_the_spec_examples():
    assert encode_il_reply(0, 0, "OK") == b"               9\n0\n0\n2 OK\n"
    assert (encode_il_reply(700, 2, "job not registered")
            == b"              28\n700\n2\n18 job not registered\n")
    assert ILReplyDecoder().feed(b"              28\n700\n2\n18 job not registered\n") == [
        ILReply(700, 2, "job not registered")]


def test_requests_split_anywhere():
    _split_everywhere(ILRequestDecoder, b"".join(map(encode_il_request, RECORDS)), RECORDS)


def test_replies_split_anywhere():
    replies = [ILReply(0, 0, "OK"), ILReply(600, 0, "not owner"), ILReply(400, 1404, "")]
    stream = b"".join(encode_il_reply(r.code, r.minor, r.message) for r in replies)
    _split_everywhere(ILReplyDecoder, stream, replies)


def test_record_may_hold_any_bytes():
    """Lengths, not delimiters, frame the record: spaces, LF and NUL pass."""
    record = b"a b\nc\x00 12 d"
    assert ILRequestDecoder().feed(encode_il_request(record)) == [record]


@pytest.mark.parametrize("header", [
    b"             12a\n", b"12              \n", b"      1 2       \n", b"                \n",
    b"             +12\n", b"             -12\n", b"              12 ", b"\x00" * 16 + b"\n",
    b"               0\n", b"0000000000000000\n",
])
def test_malformed_headers_are_not_answerable(header):
    """A bad header is a FrameError but not an ILBodyError: it gets no reply."""
    with pytest.raises(FrameError) as info:
        ILRequestDecoder().feed(header + b"x" * 40)
    assert not isinstance(info.value, ILBodyError)


def test_header_with_leading_digits_only():
    """Sixteen digits with no padding are a valid header."""
    body = b"6 michal\n1 x\n"
    frame = b"%016d\n" % len(body) + body
    assert ILRequestDecoder().feed(frame) == [b"x"]


def test_size_limit():
    frame = encode_il_request(b"x" * 50)
    body = len(frame) - 17
    assert ILRequestDecoder(max_frame=body).feed(frame) == [b"x" * 50]
    decoder = ILRequestDecoder(max_frame=body - 1)
    with pytest.raises(FrameError, match="exceeds the maximum frame size"):
        decoder.feed(frame[:17])
    assert decoder.buffered == 0


@pytest.mark.parametrize("body, message", [
    (b"6 michax\n1 x\n", "wrong magic word"),
    (b"5 micha\n1 x\n", "wrong magic word"),
    (b"7 michal\n1 x\n", "not followed by LF"),
    (b"6michal\n1 x\n", "expected a decimal length"),
    (b"6 michal\n2 x\n", "not followed by LF"),
    (b"6 michal\n1 xy", "not followed by LF"),
    (b"6 michal\n1 x\nextra", "5 bytes after the record"),
    (b"6 michal\n", "record: expected a decimal length"),
    (b"6 michal\n-1 x\n", "expected a decimal length"),
])
def test_malformed_bodies_are_answerable(body, message):
    """A bad body inside a good frame is an ILBodyError (answered LB_PROTO)."""
    with pytest.raises(ILBodyError, match=message):
        ILRequestDecoder().feed(b"%16d\n" % len(body) + body)


@pytest.mark.parametrize("body", [b"0\n0\n2 OK", b"x\n0\n2 OK\n", b"0\n0\n3 OK\n", b"0\n0\n2 OK\n!",
                                  b"0\n", b"0\n0\n"])
def test_malformed_replies(body):
    with pytest.raises(ILBodyError):
        ILReplyDecoder().feed(b"%16d\n" % len(body) + body)


def test_truncated_frames():
    frame = encode_il_request(RECORD)
    for i in range(1, len(frame)):
        decoder = ILRequestDecoder()
        assert decoder.feed(frame[:i]) == []
        with pytest.raises(FrameError, match="stream ended inside a frame"):
            decoder.finish()


def test_decoded_before_error_are_kept():
    good = encode_il_request(b"a") + encode_il_request(b"b")
    with pytest.raises(FrameError) as info:
        ILRequestDecoder().feed(good + b"garbage garbage garbage")
    assert info.value.decoded == [b"a", b"b"]


# --- DGLOG (§4.2, §4.5) ------------------------------------------------------------------

def test_dglog_layout_matches_the_spec_example():
    """A 355-character record is sent as 357 payload bytes: record, LF, NUL."""
    record = b"r" * 355
    frame = encode_dglog(record)
    assert frame[:9] == bytes.fromhex("44474c4f4765010000")
    assert frame[9:] == record + b"\n\x00"
    assert encode_dglog(record + b"\n") == frame
    assert DglogDecoder().feed(frame) == [record]


def test_dglog_split_anywhere():
    _split_everywhere(DglogDecoder, b"".join(map(encode_dglog, RECORDS)), RECORDS)


def test_dglog_payload_without_terminators():
    """A payload without its LF and NUL is taken as the record itself."""
    assert DglogDecoder().feed(b"DGLOG\x03\x00\x00\x00abc") == [b"abc"]


@pytest.mark.parametrize("data, message", [
    (b"X", "does not start with DGLOG"),
    (b"DGLOX\x01\x00\x00\x00a", "does not start with DGLOG"),
    (b"dglog\x01\x00\x00\x00a", "does not start with DGLOG"),
    (b"DGLOG\x00\x00\x00\x00", "length 0 is not positive"),
    (b"DGLOG\xff\xff\xff\xff", "length -1 is not positive"),
    (b"DGLOG\x00\x00\x00\x80", "is not positive"),
])
def test_dglog_refusals_answer_einval(data, message):
    with pytest.raises(DglogFrameError, match=message) as info:
        DglogDecoder().feed(data)
    assert info.value.answer == errno.EINVAL


def test_dglog_size_limit():
    frame = encode_dglog(b"x" * 8)  # payload 10 bytes
    assert DglogDecoder(max_frame=10).feed(frame) == [b"x" * 8]
    with pytest.raises(DglogFrameError, match="exceeds"):
        DglogDecoder(max_frame=9).feed(frame[:9])


def test_dglog_truncated():
    frame = encode_dglog(RECORD)
    for i in range(1, len(frame)):
        decoder = DglogDecoder()
        assert decoder.feed(frame[:i]) == []
        with pytest.raises(FrameError):
            decoder.finish()


def test_dglog_answers():
    stream = encode_dglog_answer(0) + encode_dglog_answer(errno.EAGAIN) + encode_dglog_answer(1404)
    assert stream[:4] == b"\x00\x00\x00\x00" and stream[4:8] == b"\x0b\x00\x00\x00"
    decoder = DglogAnswerDecoder()
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i:i + 1])
    assert out == [0, errno.EAGAIN, 1404]
    decoder.finish()
    assert decoder.feed(b"\xff\xff") == []
    with pytest.raises(FrameError):
        decoder.finish()
    assert decoder.feed(b"\xff\xff") == [-1]


# --- random input --------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([b"", b"              ", b"DGLOG", b"    12\n"]))
def test_random_bytes_only_frame_error(data, prefix):
    """Whatever the bytes, the legacy decoders raise only FrameError."""
    for factory in (ILRequestDecoder, ILReplyDecoder, DglogDecoder):
        decoder = factory(max_frame=64)
        try:
            for i in range(0, len(prefix + data), 5):
                decoder.feed((prefix + data)[i:i + 5])
            decoder.finish()
        except FrameError:
            pass
    DglogAnswerDecoder().feed(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=40), st.integers(0, 80), st.binary(min_size=1, max_size=3))
def test_mutated_frames_only_frame_error(record, position, garbage):
    for frame, factory in ((encode_il_request(record), ILRequestDecoder),
                           (encode_il_reply(700, 2, record.decode("latin-1")), ILReplyDecoder),
                           (encode_dglog(record), DglogDecoder)):
        data = bytearray(frame)
        pos = position % len(data)
        data[pos:pos + len(garbage)] = garbage
        try:
            factory().feed(bytes(data))
        except FrameError:
            pass


# --- reply codes (§6.7, §4.5) --------------------------------------------------------------

@pytest.mark.parametrize("result, reply, answer", [
    (Result(ResultCode.STORED), (0, 0, "OK"), 0),
    (Result(ResultCode.DUPLICATE, "duplicate event"), (0, 0, "OK"), 0),
    (Result(ResultCode.UNKNOWN_JOB, "job not registered"), (700, 2, "job not registered"), 2),
    (Result(ResultCode.UNKNOWN_JOB), (700, 2, "job not registered"), 2),
    (Result(ResultCode.NOT_OWNER, "no"), (600, 0, "no"), errno.EPERM),
    (Result(ResultCode.EXISTS, "exists"), (700, errno.EEXIST, "exists"), errno.EEXIST),
    (Result.invalid("Duplicate ULM key", "KEY_DUPLICITY"), (400, 1404, "Duplicate ULM key"), 1404),
    (Result.invalid("bad value", "BAD_VALUE"), (400, 1401, "bad value"), 1401),
    (Result.invalid("", ""), (400, 1401, "invalid"), 1401),
])
def test_result_codes(result, reply, answer):
    assert il_reply_for(result) == reply
    assert dglog_answer_for(result) == answer


def test_failure_codes():
    """Retryable failures are LB_DBERR with a minor other than ENOENT (legacy senders
    retry); DGLOG producers get the failure's errno, else EAGAIN."""
    assert il_reply_for_error(ErrorCode.INTERNAL, "db down")[:2] == (700, 1411)
    assert il_reply_for_error(ErrorCode.TIMEOUT, "slow")[:2] == (700, errno.ETIMEDOUT)
    assert il_reply_for_error(ErrorCode.BAD_REQUEST, "bad")[:2] == (400, 0)
    assert dglog_answer_for_error(ErrorCode.INTERNAL, errno.ENOSPC) == errno.ENOSPC
    assert dglog_answer_for_error(ErrorCode.TIMEOUT) == errno.EAGAIN
    assert dglog_answer_for_error(ErrorCode.BAD_REQUEST) == errno.EINVAL
    assert lb_error_code("EVENT_UNDEF") == 1402 and lb_error_code("BAD_JOBID") == 1409


# --- sessions ------------------------------------------------------------------------------

def test_il_session_one_request_per_frame():
    session = ILServerSession()
    actions = session.feed(encode_il_request(b"a") + encode_il_request(b"b")[:20])
    assert actions == [Ready("legacy-interlogger"), Handle(1, (b"a",))]
    assert session.feed(encode_il_request(b"b")[20:]) == [Handle(2, (b"b",))]
    assert session.ack(1, [Result(ResultCode.STORED)]) == encode_il_reply(0, 0, "OK")
    assert session.fail(2, ErrorCode.INTERNAL, "db") == encode_il_reply(700, 1411, "db")
    assert session.end() is None


def test_il_session_bad_magic_answered_then_closed():
    """Frames before the bad one are still handled; the bad body gets LB_PROTO/0."""
    body = b"6 xxxxxx\n1 x\n"
    actions = ILServerSession().feed(encode_il_request(b"a") + b"%16d\n" % len(body) + body)
    assert actions[:2] == [Ready("legacy-interlogger"), Handle(1, (b"a",))]
    close = actions[2]
    assert isinstance(close, Close) and "wrong magic word" in close.reason
    (reply,) = ILReplyDecoder().feed(close.data)
    assert (reply.code, reply.minor) == (400, 0)


def test_il_session_bad_header_closed_without_answer():
    """A malformed header is not answered (§5.12); the session then takes nothing."""
    session = ILServerSession()
    (close,) = session.feed(b"not a header at all\n")
    assert close.data == b"" and "malformed frame header" in close.reason
    assert session.feed(encode_il_request(b"a")) == []


def test_il_session_reports_truncation():
    session = ILServerSession()
    session.feed(encode_il_request(b"abc")[:-1])
    assert "stream ended inside a frame" in session.end()


def test_dglog_session():
    session = DglogServerSession()
    assert session.feed(encode_dglog(b"a") + encode_dglog(b"b")) == [
        Ready("dglog"), Handle(1, (b"a",)), Handle(2, (b"b",))]
    assert session.ack(1, [Result.invalid("x", "KEY_MISUSE")]) == encode_dglog_answer(1405)
    assert session.fail(2, ErrorCode.INTERNAL, "disk", errno.ENOSPC) == encode_dglog_answer(28)
    (close,) = session.feed(b"HELLO")
    assert close.data == encode_dglog_answer(errno.EINVAL)


# --- sniffing ------------------------------------------------------------------------------

@pytest.mark.parametrize("first, framing", [
    (MAGIC, Framing.BOX), (MAGIC[:1], Framing.BOX),
    (encode_il_request(b"x")[:17], Framing.LEGACY_INTERLOGGER), (b" ", Framing.LEGACY_INTERLOGGER),
    (b"0000000000000013\n", Framing.LEGACY_INTERLOGGER), (b"7", Framing.LEGACY_INTERLOGGER),
    (b"DGLOG\x01", Framing.DGLOG), (b"D", Framing.DGLOG),
])
def test_sniff_decides_on_first_bytes(first, framing):
    assert sniff(first) is framing
    assert sniff(first, [framing]) is framing


def test_sniff_needs_a_byte():
    assert sniff(b"") is None


@pytest.mark.parametrize("first, accept", [
    (b"GET / HTTP/1.1\r\n", tuple(Framing)),
    (b"\x16\x03\x01\x02\x00", tuple(Framing)),          # a TLS ClientHello on a plain port
    (b"\x89LBTY", tuple(Framing)),                       # almost the magic
    (b"      12x", tuple(Framing)),                      # letters in a legacy header
    (b"             12 \n", tuple(Framing)),
    (b"DGLOX", tuple(Framing)),
    (b"DGLOG", (Framing.BOX, Framing.LEGACY_INTERLOGGER)),  # DGLOG on the store port
    (b"  1", (Framing.BOX, Framing.DGLOG)),                 # legacy IL on the logger port
    (MAGIC, (Framing.LEGACY_INTERLOGGER,)),
])
def test_sniff_refuses(first, accept):
    with pytest.raises(FrameError, match="unrecognised first bytes"):
        sniff(first, accept)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_sniff_random_bytes(data):
    """Only FrameError escapes; a decision is consistent with the first byte."""
    try:
        framing = sniff(data)
    except FrameError:
        return
    if framing is not None:
        assert data[:1] in {Framing.BOX: [b"\x89"], Framing.DGLOG: [b"D"]}.get(
            framing, [bytes([c]) for c in b" 0123456789"])
