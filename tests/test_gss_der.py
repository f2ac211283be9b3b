"""The small DER reader and writer behind proxyCertInfo."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from lbtx.gss import der
from lbtx.gss.proxy import OID_POLICY_LIMITED, _parse_proxy_cert_info, encode_proxy_cert_info


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_integer_round_trip(n):
    """Integers of any sign and size survive encode/decode."""
    assert der.decode_integer(der.read_one(der.encode_integer(n), der.TAG_INTEGER)) == n


@pytest.mark.parametrize("oid", ["1.3.6.1.5.5.7.1.14", "1.3.6.1.4.1.3536.1.1.1.9", "2.999.1", "0.9"])
def test_oid_round_trip(oid):
    """Object identifiers survive encode/decode, large arcs included."""
    assert der.decode_oid(der.read_one(der.encode_oid(oid), der.TAG_OID)) == oid


def test_known_encoding():
    """The RFC 3820 inheritAll policy with path length 1 encodes as OpenSSL writes it."""
    assert encode_proxy_cert_info("1.3.6.1.5.5.7.21.1", 1).hex() == "300f020101300a06082b06010505071501"


def test_long_lengths():
    """Elements longer than 127 bytes use the long length form."""
    value = bytes(300)
    assert list(der.read(der.encode(der.TAG_OCTET_STRING, value))) == [(der.TAG_OCTET_STRING, value)]


@pytest.mark.parametrize("data", [b"\x30", b"\x30\x05\x02", b"\x30\x84\xff\xff\xff\xff", b"\x1f\x01\x00",
                                  b"\x30\x80"])
def test_malformed(data):
    """Truncated elements, bad lengths and multi-byte tags are DERError."""
    with pytest.raises(der.DERError):
        list(der.read(data))


def test_proxy_cert_info_forms():
    """RFC 3820 and GT3 ([1] path length after the policy) forms both parse; garbage does not."""
    assert _parse_proxy_cert_info(encode_proxy_cert_info(OID_POLICY_LIMITED, 3)) == (OID_POLICY_LIMITED, 3)
    assert _parse_proxy_cert_info(encode_proxy_cert_info(OID_POLICY_LIMITED)) == (OID_POLICY_LIMITED, None)
    gt3 = der.encode_sequence(der.encode_sequence(der.encode_oid(OID_POLICY_LIMITED)),
                              der.encode(0xA1, der.encode_integer(2)))
    assert _parse_proxy_cert_info(gt3) == (OID_POLICY_LIMITED, 2)
    with pytest.raises(der.DERError):
        _parse_proxy_cert_info(der.encode_sequence(der.encode_integer(1)))
    with pytest.raises(der.DERError):
        _parse_proxy_cert_info(b"\x04\x00")
