"""Just enough DER to read and write proxyCertInfo (RFC 3820 §3.8) and VOMS attribute certificates.

Pure functions over bytes. The reader yields C{(tag, value)} pairs of one level
(L{elements} also the whole encoding of each, for signatures); the writer builds
the few types those extensions need.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_UTF8_STRING = 0x0C
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_SET = 0x31


class DERError(ValueError):
    """The bytes are not the DER this module understands."""


def read(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each C{(tag, value)} of the DER elements laid end to end in C{data}."""
    for tag, value, _ in elements(data):
        yield tag, value


def elements(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """Each C{(tag, value, whole encoding)} of the DER elements laid end to end in C{data}."""
    pos = 0
    while pos < len(data):
        start = pos
        if pos + 2 > len(data):
            raise DERError("truncated element header")
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise DERError("multi-byte tags are not supported")
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise DERError("bad length")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise DERError("element runs past the end")
        yield tag, data[pos:pos + length], data[start:pos + length]
        pos += length


def read_one(data: bytes, tag: int) -> bytes:
    """The value of C{data}, which must be exactly one element tagged C{tag}."""
    elements = list(read(data))
    if len(elements) != 1 or elements[0][0] != tag:
        raise DERError(f"expected one element with tag {tag:#x}")
    return elements[0][1]


def decode_integer(value: bytes) -> int:
    """A DER INTEGER's value."""
    if not value:
        raise DERError("empty integer")
    return int.from_bytes(value, "big", signed=True)


def decode_oid(value: bytes) -> str:
    """A DER OBJECT IDENTIFIER in dotted form."""
    if not value:
        raise DERError("empty object identifier")
    arcs: list[int] = []
    n = 0
    for byte in value:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    if value[-1] & 0x80:
        raise DERError("truncated object identifier")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_time(tag: int, value: bytes) -> datetime.datetime:
    """A DER GeneralizedTime or UTCTime (UTC, C{Z}, whole seconds) as an aware datetime."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        raise DERError("a time that is not ASCII") from None
    if tag == TAG_GENERALIZED_TIME:
        layout, size = "%Y%m%d%H%M%S", 15
    elif tag == TAG_UTC_TIME:
        layout, size = "%y%m%d%H%M%S", 13
    else:
        raise DERError(f"expected a time, got tag {tag:#x}")
    if len(text) != size or not text.endswith("Z") or not text[:-1].isdigit():
        raise DERError(f"bad time {text!r}")
    try:
        when = datetime.datetime.strptime(text[:-1], layout)
    except ValueError:
        raise DERError(f"bad time {text!r}") from None
    return when.replace(tzinfo=datetime.timezone.utc)


def encode_generalized_time(when: datetime.datetime) -> bytes:
    """A DER GeneralizedTime (UTC, whole seconds)."""
    utc = when.astimezone(datetime.timezone.utc)
    return encode(TAG_GENERALIZED_TIME, utc.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def encode(tag: int, value: bytes) -> bytes:
    """One DER element."""
    n = len(value)
    if n < 0x80:
        header = bytes([tag, n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        header = bytes([tag, 0x80 | len(size)]) + size
    return header + value


def encode_integer(n: int) -> bytes:
    """A DER INTEGER."""
    return encode(TAG_INTEGER, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def encode_oid(dotted: str) -> bytes:
    """A DER OBJECT IDENTIFIER from dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2:
        raise DERError("an object identifier has at least two arcs")
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1]] + arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return encode(TAG_OID, bytes(out))


def encode_sequence(*parts: bytes) -> bytes:
    """A DER SEQUENCE of already encoded elements."""
    return encode(TAG_SEQUENCE, b"".join(parts))
