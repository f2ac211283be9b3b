"""Box frames: encoding, decoding split anywhere, limits, malformed and random input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.protocols.box.codec import (
    DEFAULT_MAX_FRAME, HEADER_SIZE, MAGIC, BoxDecoder, FrameError, encode_box)
from lbtx.protocols.box.messages import EventBatch, decode_request, encode_message

BOXES = [
    {"_ask": b"1", "_command": b"hello", "versions": b"1"},
    {"k": b""},
    {"binary": bytes(range(256)), "x" * 255: b"\x00\n\r"},
    {"_answer": b"2", "count": b"1", "r.0": b"stored"},
]
STREAM = MAGIC + b"".join(encode_box(b) for b in BOXES)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _entry(key: bytes, value: bytes, *, klen: int | None = None, vlen: int | None = None
           ) -> bytes:
    return (struct.pack(">H", len(key) if klen is None else klen) + key
            + struct.pack(">I", len(value) if vlen is None else vlen) + value)


def _decode_all(data: bytes, **kw) -> list:
    return BoxDecoder(**kw).feed(data)


def test_round_trip():
    """Boxes come back as they were sent, keys in order, after the magic."""
    assert BoxDecoder(preamble=MAGIC).feed(STREAM) == BOXES
    assert list(BoxDecoder(preamble=MAGIC).feed(STREAM)[2]) == ["binary", "x" * 255]


def test_wire_layout():
    """A frame is a big-endian body length, then uint16 key length, key, uint32 value
    length, value per entry."""
    assert encode_box({"ab": b"xyz"}) == (b"\x00\x00\x00\x0b" b"\x00\x02ab"
                                           b"\x00\x00\x00\x03xyz")


def test_byte_by_byte():
    """Fed one byte at a time, the decoder yields the same boxes, each as soon as its
    last byte arrives."""
    decoder = BoxDecoder(preamble=MAGIC)
    out = []
    ends = []
    for i in range(len(STREAM)):
        got = decoder.feed(STREAM[i:i + 1])
        out += got
        if got:
            ends.append(i + 1)
    assert out == BOXES
    assert ends[-1] == len(STREAM)
    assert decoder.buffered == 0
    decoder.finish()


def test_split_at_every_offset():
    """Whatever the split point, two feeds give the same boxes."""
    for i in range(len(STREAM) + 1):
        decoder = BoxDecoder(preamble=MAGIC)
        assert decoder.feed(STREAM[:i]) + decoder.feed(STREAM[i:]) == BOXES


def test_truncated_stream():
    """Every proper prefix gives only the complete boxes, and finish() says the
    stream ended inside a frame or the magic."""
    whole = [len(MAGIC)]
    for b in BOXES:
        whole.append(whole[-1] + len(encode_box(b)))
    for i in range(len(STREAM)):
        decoder = BoxDecoder(preamble=MAGIC)
        got = decoder.feed(STREAM[:i])
        assert got == BOXES[:sum(1 for w in whole[1:] if w <= i)]
        if i == 0 or i in whole:
            decoder.finish()  # nothing, or whole boxes only
        else:
            with pytest.raises(FrameError, match="stream ended inside"):
                decoder.finish()


def test_size_limit():
    """A body of exactly max_frame bytes passes; one byte more is refused as soon as
    the length field is read, before any body byte."""
    limit = 100
    body_at = _entry(b"k", b"v" * (limit - 7))
    assert len(body_at) == limit
    assert BoxDecoder(max_frame=limit).feed(_frame(body_at)) == [{"k": b"v" * (limit - 7)}]
    body_under = _entry(b"k", b"v" * (limit - 8))
    assert BoxDecoder(max_frame=limit).feed(_frame(body_under)) == [{"k": b"v" * (limit - 8)}]
    decoder = BoxDecoder(max_frame=limit)
    with pytest.raises(FrameError, match="exceeds the maximum frame size of 100"):
        decoder.feed(struct.pack(">I", limit + 1))
    assert decoder.buffered == 0


def test_encode_size_limit():
    """Encoding refuses a box over the limit with FrameError; at the limit it passes."""
    assert encode_box({"k": b"v" * 93}, max_frame=100)
    with pytest.raises(FrameError):
        encode_box({"k": b"v" * 94}, max_frame=100)


def test_default_limit_is_16_mib():
    assert DEFAULT_MAX_FRAME == 16 * 1024 * 1024
    with pytest.raises(FrameError):
        BoxDecoder().feed(struct.pack(">I", DEFAULT_MAX_FRAME + 1))


def test_two_megabyte_event_round_trip():
    """A 2 MB event passes in a batch under the default limits, fed in 64 KiB reads."""
    line = b"DG.JOBID=\"https://lb.example.org:9000/x\" DG.X=\"" + b"y" * (2 * 1024 * 1024) + b"\""
    frame = MAGIC + encode_message(EventBatch(7, [line, b"small"]))
    decoder = BoxDecoder(preamble=MAGIC)
    boxes = []
    for i in range(0, len(frame), 65536):
        boxes += decoder.feed(frame[i:i + 65536])
        assert decoder.buffered <= DEFAULT_MAX_FRAME + HEADER_SIZE
    assert len(boxes) == 1
    assert decode_request(boxes[0]) == EventBatch(7, (line, b"small"))


def test_buffer_never_exceeds_one_frame():
    """While a large frame trickles in, the buffer holds at most that frame."""
    frame = encode_box({"k": b"v" * 10_000})
    decoder = BoxDecoder(max_frame=10_007)
    for i in range(0, len(frame) - 1, 1000):
        decoder.feed(frame[i:i + 1000])
        assert decoder.buffered <= len(frame)


@pytest.mark.parametrize("body, message", [
    (b"", "empty frame"),
    (b"\x00", "truncated key length"),
    (_entry(b"", b"v", klen=0), "key length 0"),
    (b"\x01\x00" + b"k" * 256 + b"\x00\x00\x00\x00", "key length 256"),
    (_entry(b"k", b"v", vlen=2), "claims 2 bytes"),
    (_entry(b"k", b"v", vlen=2**32 - 1), "claims 4294967295 bytes"),
    (_entry(b"key", b"", klen=5), "runs past the end"),
    (_entry(b"k", b"1") + _entry(b"k", b"2"), "duplicate key 'k'"),
    (_entry(b"a b", b"v"), "not visible ASCII"),
    (_entry(b"\xc3\xa9", b"v"), "not visible ASCII"),
    (_entry(b"k", b"v") + b"\x00", "truncated key length"),
])
def test_malformed_frames(body, message):
    """Each malformed body is a FrameError that says what is wrong."""
    with pytest.raises(FrameError, match=message):
        _decode_all(_frame(body))


def test_bad_magic_refused_at_first_wrong_byte():
    """A stream that does not start with the magic fails as soon as a byte differs."""
    decoder = BoxDecoder(preamble=MAGIC)
    assert decoder.feed(MAGIC[:3]) == []
    with pytest.raises(FrameError, match="not a box stream"):
        decoder.feed(b"X")
    with pytest.raises(FrameError, match="not a box stream"):
        BoxDecoder(preamble=MAGIC).feed(b"GET / HTTP/1.0\r\n")


def test_spent_after_error_keeps_earlier_boxes():
    """Boxes completed before the bad bytes travel on the error; later feeds fail."""
    decoder = BoxDecoder()
    good = encode_box({"a": b"1"}) + encode_box({"b": b"2"})
    with pytest.raises(FrameError) as info:
        decoder.feed(good + struct.pack(">I", 0))
    assert info.value.decoded == [{"a": b"1"}, {"b": b"2"}]
    with pytest.raises(FrameError) as again:
        decoder.feed(encode_box({"c": b"3"}))
    assert again.value.decoded == []


@pytest.mark.parametrize("box, message", [
    ({}, "at least one key"),
    ({"": b"v"}, "not 1-255"),
    ({"a b": b"v"}, "not 1-255"),
    ({"é": b"v"}, "not 1-255"),
    ({"k" * 256: b"v"}, "not 1-255"),
    ({"k": "text"}, "not bytes"),
])
def test_encode_refuses_bad_boxes(box, message):
    with pytest.raises(ValueError, match=message):
        encode_box(box)


# --- properties ------------------------------------------------------------------------

_keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_boxes = st.dictionaries(_keys, st.binary(max_size=64), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(_boxes, min_size=1, max_size=4), st.data())
def test_random_boxes_round_trip_at_random_splits(boxes, data):
    stream = MAGIC + b"".join(encode_box(b) for b in boxes)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    decoder = BoxDecoder(preamble=MAGIC)
    out = []
    for start, end in zip([0] + cuts, cuts + [len(stream)]):
        out += decoder.feed(stream[start:end])
    assert out == boxes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans(), st.integers(1, 64))
def test_random_bytes_only_frame_error(data, with_magic, max_frame):
    """Whatever the bytes, only FrameError escapes and the buffer stays capped."""
    decoder = BoxDecoder(max_frame=max_frame, preamble=MAGIC)
    stream = (MAGIC + data) if with_magic else data
    try:
        for i in range(0, len(stream), 7):
            decoder.feed(stream[i:i + 7])
            assert decoder.buffered <= max_frame + HEADER_SIZE + 7
        decoder.finish()
    except FrameError:
        pass


@settings(max_examples=200, deadline=None)
@given(_boxes, st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_mutated_frames_only_frame_error(box, position, garbage):
    """A valid frame with bytes overwritten decodes or fails with FrameError only."""
    frame = bytearray(encode_box(box))
    pos = position % len(frame)
    frame[pos:pos + len(garbage)] = garbage
    try:
        BoxDecoder(max_frame=1024).feed(bytes(frame))
    except FrameError:
        pass
