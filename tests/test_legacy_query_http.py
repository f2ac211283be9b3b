"""HTTP-like framing and version negotiation of the legacy query protocol (§7.1-7.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.protocols.legacy_query.http import (HTTPFramingError, HTTPLimits, HTTPRequest,
                                              RequestDecoder, ResponseDecoder, format_request,
                                              format_response)
from lbtx.protocols.legacy_query.negotiation import ClientKind, Verdict, negotiate

API = ("Cache-Control: no-cache", "Accept: application/x-dglb",
       "User-Agent: edg_wll_Api/3.0/3.0", "Content-Type: application/x-dglb")
BODY = b"<edg_wll_QueryJobsRequest/>"
WIRE = format_request("POST /queryJobs HTTP/1.1", API, BODY)


def test_legacy_client_request():
    """The request of §7.1 frames as one request with its headers and body."""
    assert WIRE.startswith(b"POST /queryJobs HTTP/1.1\r\nCache-Control: no-cache\r\n")
    assert b"Content-Length: 27\r\n\r\n" + BODY in WIRE
    (req,) = RequestDecoder().feed(WIRE)
    assert req == HTTPRequest("POST /queryJobs HTTP/1.1", API + ("Content-Length: 27",), BODY)
    assert req.method == "POST"


def test_split_at_every_offset():
    """Two pipelined requests arrive whole however the bytes are split."""
    wire = WIRE + format_request("GET / HTTP/1.1", API)
    for cut in range(len(wire) + 1):
        dec = RequestDecoder()
        got = dec.feed(wire[:cut]) + dec.feed(wire[cut:])
        assert [r.request_line for r in got] == ["POST /queryJobs HTTP/1.1", "GET / HTTP/1.1"]
        assert got[0].body == BODY and got[1].body is None
        assert dec.idle


def test_byte_by_byte_and_pending():
    """Fed a byte at a time, nothing comes out before the last byte of the body."""
    dec = RequestDecoder()
    out = []
    for i in range(len(WIRE)):
        out += dec.feed(WIRE[i:i + 1])
        if i < len(WIRE) - 1:
            assert out == [] and dec.pending + 0 >= 0 and not dec.idle
    assert len(out) == 1


def test_content_length_is_case_insensitive_and_zero_means_empty_body():
    (req,) = RequestDecoder().feed(b"POST /x HTTP/1.1\r\ncontent-LENGTH: 0\r\n\r\n")
    assert req.body == b""


@pytest.mark.parametrize("wire, too_big", [
    (b"GET / HTTP/1.1\nUser-Agent: x\n\n", False),                       # bare LF
    (b"POST /x HTTP/1.1\r\nContent-Length: ten\r\n\r\n", False),
    (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", False),
    (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", False),
    (b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", True),     # over max_body
    (b"GET /" + b"a" * 9000, True),                                       # line too long
    (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101, True),                  # too many headers
    (b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", False),                         # bare CR
])
def test_framing_errors(wire, too_big):
    """Unframeable bytes raise HTTPFramingError; the decoder then refuses more input."""
    dec = RequestDecoder()
    with pytest.raises(HTTPFramingError) as info:
        dec.feed(wire)
    assert info.value.too_big == too_big
    with pytest.raises(HTTPFramingError):
        dec.feed(b"GET / HTTP/1.1\r\n\r\n")


def test_buffer_is_capped_while_waiting_for_a_line():
    """Without a CRLF the decoder holds no more than one line's worth of bytes."""
    dec = RequestDecoder(HTTPLimits(max_line=100))
    dec.feed(b"x" * 100)
    with pytest.raises(HTTPFramingError):
        dec.feed(b"x")


def test_truncated_body_waits():
    """A body shorter than Content-Length is not a request (yet)."""
    dec = RequestDecoder()
    assert dec.feed(WIRE[:-1]) == []
    assert dec.pending == len(BODY) - 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_only_framing_errors_escape(data):
    """Random bytes give requests or HTTPFramingError, nothing else."""
    dec = RequestDecoder(HTTPLimits(max_line=128, max_headers=8, max_body=256))
    try:
        for r in dec.feed(data):
            assert isinstance(r, HTTPRequest)
    except HTTPFramingError:
        pass


def test_response_round_trip():
    """format_response writes the status line, headers and Content-Length; the client
    decoder reads it back; no body means no Content-Length."""
    wire = format_response(579, ("Server: x",), b"<a/>")
    assert wire.startswith(b"HTTP/1.1 579 Invalid Data\r\nServer: x\r\nContent-Length: 4\r\n\r\n")
    resp, bare = ResponseDecoder().feed(wire + format_response(405))
    assert (resp.status, resp.body, resp.header("server")) == (579, b"<a/>", "x")
    assert (bare.status, bare.body) == (405, None)
    assert b"Content-Length" not in format_response(405)
    with pytest.raises(HTTPFramingError):
        ResponseDecoder().feed(b"HTTX 200\r\n\r\n")


# --- negotiation ----------------------------------------------------------------------

@pytest.mark.parametrize("headers, kind, verdict", [
    (API, ClientKind.API, Verdict.OK),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/2.1/2.0,2.1"), ClientKind.API,
     Verdict.V21),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/2.0/2.0"), ClientKind.API,
     Verdict.V21),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/4.0/3.5,3.0"), ClientKind.API,
     Verdict.OK),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/4.0/3.5"), ClientKind.API,
     Verdict.UNSUPPORTED),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/1.0/1.0"), ClientKind.API,
     Verdict.UNSUPPORTED),
    (("Accept: application/x-dglb", "User-Agent: edg_wll_Api/3.0"), ClientKind.API,
     Verdict.UNSUPPORTED),
    (("Accept: application/x-dglb", "User-Agent: curl"), ClientKind.API, Verdict.BAD_AGENT),
    (("Accept: application/x-dglb",), ClientKind.API, Verdict.NO_AGENT),
    (("accept: application/x-dglb", "User-Agent: x/3.0/3.0"), ClientKind.HTML, Verdict.OK),
    (("Accept: text/html", "Accept: application/x-dglb", "User-Agent: Mozilla/5.0"),
     ClientKind.HTML, Verdict.OK),
    (("User-Agent: curl",), ClientKind.HTML, Verdict.OK),
    (("Host: x",), ClientKind.HTML, Verdict.NO_AGENT),
])
def test_negotiation(headers, kind, verdict):
    """§7.2: the first Accept: line decides the kind; User-Agent carries the versions."""
    n = negotiate(headers)
    assert (n.kind, n.verdict) == (kind, verdict)
