"""Job ids and notification ids (formats.md §1)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from conftest import SCENARIOS

from lbtx.errors import JobIdError, LBFormatError
from lbtx.jobid import (
    DEFAULT_PORT, DEFAULT_SUBJOB_SEED, MAX_JOBID_LENGTH, JobId, NotifId, new_unique,
)

EXAMPLE = "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"
B64URL22 = re.compile(r"[A-Za-z0-9_-]{22}\Z")


# --- parse / unparse (§1.1) ---------------------------------------------------------------

def test_parse_full_form():
    j = JobId.parse(EXAMPLE)
    assert (j.host, j.port, j.unique, j.info) == ("lb.example.org", 9000, "RSwFpSI95ivvdn2OQQFcKw", None)
    assert str(j) == EXAMPLE
    assert j.server == "lb.example.org:9000"
    assert j.store_address == ("lb.example.org", 9001)


def test_default_port_is_written_back():
    j = JobId.parse("https://lb.example.org/RSwFpSI95ivvdn2OQQFcKw")
    assert j.port == DEFAULT_PORT == 9000
    assert str(j) == EXAMPLE
    assert j == JobId.parse(EXAMPLE)
    assert hash(j) == hash(JobId.parse(EXAMPLE))


@pytest.mark.parametrize("port", [1, 80, 9000, 9003, 65535])
def test_explicit_port(port):
    j = JobId.parse(f"https://lb.example.org:{port}/abc")
    assert j.port == port
    assert str(j) == f"https://lb.example.org:{port}/abc"
    assert j.store_address == ("lb.example.org", port + 1)


def test_port_zero_means_default():
    """A stored port of 0 is treated as 9000 by unparse (§1.1)."""
    j = JobId.parse("https://lb.example.org:0/abc")
    assert j.port == 9000
    assert str(j) == "https://lb.example.org:9000/abc"
    assert JobId("lb.example.org", 0, "abc").port == 9000


def test_port_taken_after_last_colon():
    j = JobId.parse("https://a:b:9100/x")
    assert (j.host, j.port) == ("a:b", 9100)


def test_info_preserved():
    j = JobId.parse("https://lb.example.org:9000/abc?some=info&more")
    assert j.unique == "abc"
    assert j.info == "some=info&more"
    assert str(j) == "https://lb.example.org:9000/abc?some=info&more"
    # the info part is kept even when the port was implicit
    assert str(JobId.parse("https://lb.example.org/abc?x")) == "https://lb.example.org:9000/abc?x"
    # an empty info (a bare '?') is kept too
    assert str(JobId.parse("https://lb.example.org/abc?")) == "https://lb.example.org:9000/abc?"
    assert JobId.parse("https://h/abc?x") != JobId.parse("https://h/abc")


def test_unique_may_contain_slashes_and_info_question_marks():
    j = JobId.parse("https://h:9000/a/b/c?i?j")
    assert j.unique == "a/b/c"
    assert j.info == "i?j"
    assert str(j) == "https://h:9000/a/b/c?i?j"


def test_ipv6_literal_without_port():
    j = JobId.parse("https://[2001:db8::1]/abc")
    assert j.host == "[2001:db8::1]"
    assert j.port == 9000
    assert str(j) == "https://[2001:db8::1]:9000/abc"


def test_ipv6_literal_with_port():
    j = JobId.parse("https://[2001:db8::1]:9005/abc")
    assert (j.host, j.port, j.unique) == ("[2001:db8::1]", 9005, "abc")
    assert JobId.parse(str(j)) == j


@pytest.mark.parametrize("text", [
    EXAMPLE,
    "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw?info",
    "https://[::1]:9000/x",
    "https://10.0.0.1:7846/PBS.12345.server",
])
def test_unparse_parse_is_identity(text):
    assert str(JobId.parse(text)) == text
    assert JobId.parse(str(JobId.parse(text))) == JobId.parse(text)


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("http://lb.example.org:9000/abc", "wrong scheme"),
    ("HTTPS://lb.example.org:9000/abc", "prefix is case-sensitive"),
    ("https:/lb.example.org/abc", "broken prefix"),
    ("https://lb.example.org", "no slash"),
    ("https://lb.example.org:9000", "no slash"),
    ("https:///abc", "empty server"),
    ("https://:9000/abc", "empty host"),
    ("https://lb.example.org:9000/", "empty unique"),
    ("https://lb.example.org:9000/?info", "empty unique"),
    ("https://lb.example.org:/abc", "empty port"),
    ("https://lb.example.org:90a0/abc", "garbage port"),
    ("https://lb.example.org:-1/abc", "negative port"),
    ("https://lb.example.org:65536/abc", "port out of range"),
    ("https://lb.example.org:\u0669\u0660/abc", "non-ASCII digits"),
    ("https://lb.example.org:9000/ab c", "space in unique"),
    ("https://lb.exa mple.org:9000/abc", "space in host"),
    ("https://lb.example.org:9000/ab\tc", "tab in unique"),
    ("https://lb.example.org:9000/abc\n", "newline in unique"),
    ("https://lb.example.org\r:9000/abc", "CR in host"),
    ("https://lb.example.org:9000/ab\x0bc", "VT in unique"),
    ("https://lb.example.org:9000/a\0bc", "NUL in unique"),
    ("https://lb.example.org:9000/abc?in\0fo", "NUL in info"),
    ("https://lb.exa\0mple.org:9000/abc", "NUL in host"),
    (" https://lb.example.org:9000/abc", "leading blank"),
    ("https://lb.example.org:9000/" + "a" * MAX_JOBID_LENGTH, "oversized"),
])
def test_malformed_ids_rejected(text, why):
    with pytest.raises(JobIdError) as info:
        JobId.parse(text)
    assert isinstance(info.value, LBFormatError)
    assert info.value.code == "BAD_JOBID"
    assert str(info.value)


@pytest.mark.parametrize("value", [None, 17, b"https://h/abc", ["https://h/abc"]])
def test_non_text_rejected(value):
    with pytest.raises(JobIdError):
        JobId.parse(value)


def test_longest_accepted_id():
    text = "https://h:9000/" + "a" * (MAX_JOBID_LENGTH - len("https://h:9000/"))
    assert len(text) == MAX_JOBID_LENGTH
    assert str(JobId.parse(text)) == text


def test_ordering_and_repr():
    a, b = JobId.parse("https://h/a"), JobId.parse("https://h/b")
    assert a < b
    assert sorted([b, a]) == [a, b]
    assert repr(a) == "JobId('https://h:9000/a')"
    assert a != "https://h:9000/a"  # not equal to its text


_host = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True)
_unique = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                                blacklist_characters="?/"), min_size=1, max_size=40)
_info = st.none() | st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                            max_size=30)


@settings(max_examples=300, deadline=None)
@given(host=_host, port=st.integers(1, 65535), unique=_unique, info=_info)
def test_roundtrip_property(host, port, unique, info):
    j = JobId(host, port, unique, info)
    p = JobId.parse(str(j))
    assert p == j
    assert (p.host, p.port, p.unique, p.info) == (host, port, unique, info)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_raises_only_jobiderror(text):
    try:
        j = JobId.parse(text)
    except JobIdError:
        return
    assert JobId.parse(str(j)) == j


# --- generation (§1.2) ---------------------------------------------------------------------

def test_new_unique_format():
    seen = {new_unique() for _ in range(200)}
    assert len(seen) == 200
    for u in seen:
        assert B64URL22.match(u), u


@pytest.mark.parametrize("server, host, port", [
    ("lb.example.org", "lb.example.org", 9000),
    ("lb.example.org:9100", "lb.example.org", 9100),
    ("[2001:db8::1]", "[2001:db8::1]", 9000),
    ("[2001:db8::1]:9100", "[2001:db8::1]", 9100),
])
def test_generate(server, host, port):
    j = JobId.generate(server)
    assert (j.host, j.port, j.info) == (host, port, None)
    assert B64URL22.match(j.unique)
    assert JobId.parse(str(j)) == j
    assert JobId.generate(server) != j


@pytest.mark.parametrize("server", ["", ":9000", "host:", "host:abc", "bad host", "host:9000:x",
                                    "ho\0st", "host/path"])
def test_generate_rejects_bad_server(server):
    with pytest.raises(JobIdError):
        JobId.generate(server)


# --- subjob ids (§1.3) -----------------------------------------------------------------------

def test_subjob_examples_of_the_spec():
    parent = JobId.parse(EXAMPLE)
    assert [str(j) for j in parent.subjobs("exampleseed", 3)] == [
        "https://lb.example.org:9000/mrlMvE4DBendvyk4IoO3og",
        "https://lb.example.org:9000/z5mRxiE4FBooqwe1LN5YhA",
        "https://lb.example.org:9000/hdHcUYYPY3fko6WI4VUBcA",
    ]
    assert str(parent.subjob("exampleseed", 1)) == "https://lb.example.org:9000/z5mRxiE4FBooqwe1LN5YhA"


def test_subjob_without_seed():
    parent = JobId.parse(EXAMPLE)
    expected = "https://lb.example.org:9000/PZJrvgTbgtL3uDkIIFY_HQ"
    assert str(parent.subjob(None, 0)) == expected
    assert str(parent.subjob("", 0)) == expected  # DG.REGJOB.SEED="" counts as no seed
    assert str(parent.subjob(DEFAULT_SUBJOB_SEED, 0)) == expected


def test_subjob_keeps_server_drops_info():
    parent = JobId.parse("https://lb.example.org:9123/RSwFpSI95ivvdn2OQQFcKw?some-info")
    child = parent.subjob("exampleseed", 0)
    assert (child.host, child.port, child.info) == ("lb.example.org", 9123, None)
    # only the unique part enters the hash: the same unique as the 9000 example
    assert child.unique == "mrlMvE4DBendvyk4IoO3og"


def test_subjob_negative_index_rejected():
    with pytest.raises(JobIdError):
        JobId.parse(EXAMPLE).subjob("s", -1)


def test_subjob_of_id_with_undecodable_bytes():
    """Ids read with parse_bytes may carry surrogate escapes; the hash uses the original bytes."""
    import hashlib
    import base64
    raw = b"\xffP"
    parent = JobId("h", 9000, raw.decode("utf-8", "surrogateescape"))
    child = parent.subjob(b"s\xfe".decode("utf-8", "surrogateescape"), 0)
    digest = hashlib.md5(raw + b",s\xfe,0").digest()
    assert child.unique == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _scenario_subjob_cases():
    cases = []
    for path in sorted(SCENARIOS.glob("P1[01]*.json")):
        sc = json.loads(path.read_text(encoding="utf-8"))
        for parent, children in sc["subjobs"].items():
            regs = [s["event"] for s in sc["steps"]
                    if s["event"]["job"] == parent and s["event"]["type"] == "RegJob"]
            attrs = regs[0]["attrs"]
            cases.append(pytest.param(sc["jobs"][parent], attrs.get("seed"), attrs["nsubjobs"],
                                      [sc["jobs"][c] for c in children],
                                      id=f"{sc['id']}:{parent}"))
    assert len(cases) >= 2
    return cases


@pytest.mark.parametrize("parent, seed, n, children", _scenario_subjob_cases())
def test_subjob_ids_of_the_scenarios(parent, seed, n, children):
    assert n == len(children)
    assert [str(j) for j in JobId.parse(parent).subjobs(seed, n)] == children


def test_subjob_ids_are_distinct_and_well_formed():
    kids = JobId.parse(EXAMPLE).subjobs("exampleseed", 500)
    assert len(set(kids)) == 500
    assert all(B64URL22.match(k.unique) for k in kids)
    assert JobId.parse(EXAMPLE).subjobs("x", 0) == []


# --- notification ids (§1.4) -----------------------------------------------------------------

def test_notifid_parse():
    n = NotifId.parse("https://lb.example.org:9000/NOTIF:L6y4Gd4tDzN_90OMZsp0kQ")
    assert isinstance(n, NotifId)
    assert n.unique == "NOTIF:L6y4Gd4tDzN_90OMZsp0kQ"
    assert n.notif_unique == "L6y4Gd4tDzN_90OMZsp0kQ"
    assert str(n) == "https://lb.example.org:9000/NOTIF:L6y4Gd4tDzN_90OMZsp0kQ"
    assert NotifId.parse("https://lb.example.org/NOTIF:x").port == 9000


@pytest.mark.parametrize("text", [
    "https://lb.example.org:9000/L6y4Gd4tDzN_90OMZsp0kQ",
    "https://lb.example.org:9000/NOTIF:",
    "https://lb.example.org:9000/notif:abc",
    "https://lb.example.org:9000/NOTIF:a b",
    "NOTIF:abc",
])
def test_notifid_rejects(text):
    with pytest.raises(JobIdError):
        NotifId.parse(text)


def test_notifid_generate():
    n = NotifId.generate("lb.example.org:9100")
    assert isinstance(n, NotifId)
    assert n.port == 9100
    assert n.unique.startswith("NOTIF:")
    assert B64URL22.match(n.notif_unique)
    assert NotifId.parse(str(n)) == n
