"""Request documents of the legacy query protocol, as legacy clients write them (§7.6-7.14).

The documents below are laid out as the upstream client library writes them (tabs,
CRLF, a newline and two tabs inside each operator element, no trailing newline after
query requests). Each is parsed into the typed request; round trips check that our
own client writer gives documents that parse back to the same request.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.jobid import JobId, NotifId
from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.messages import (
    IndexedAttrsRequest, NotifChangeOp, NotifFunction, NotifRequest, QueryEventsRequest,
    QueryJobsRequest, QueryResults, ResultLimit, SequenceCodeRequest, StatusFlag, format_flags,
    parse_flags)
from lbtx.protocols.legacy_query.requests_out import (write_notif, write_query_events,
                                                      write_query_jobs, write_sequence_code)
from lbtx.protocols.legacy_query.xml_in import (parse_indexed_attrs, parse_notif,
                                                parse_query_events, parse_query_jobs,
                                                parse_sequence_code)
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.schema import JobState, Source, StatJobtype, StatVmState

JOB = "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"
ALICE = "/DC=org/DC=example/CN=Alice Example"


def op(name: str, *values: str) -> str:
    """One condition as the legacy client lays it out."""
    return f"\t\t\t<{name}>\n\t\t" + "".join(values) + f"\t\t\t</{name}>\r\n"


def val(tag: str, text: str, attrs: str = "") -> str:
    return f"\t\t\t<{tag}{attrs}>{text}</{tag}>\r\n"


def ors(*conds: str, tag: str = "orJobConditions") -> str:
    return f"\t\t<{tag}>\r\n" + "".join(conds) + f"\t\t</{tag}>\r\n"


def jobs_doc(*blocks: str, flags: str = "", soft: int = 0, res: int = 0) -> bytes:
    return (f'<edg_wll_QueryJobsRequest softLimit="{soft}" queryRes="{res}">\r\n'
            f"\t<flags>{flags}</flags>\r\n\t<and>\r\n" + "".join(blocks)
            + "\t</and>\r\n</edg_wll_QueryJobsRequest>").encode("iso-8859-1")


def events_doc(*blocks: str, soft: int = 0, res: int = 0) -> bytes:
    return (f'<edg_wll_QueryEventsRequest softLimit="{soft}" queryRes="{res}">\r\n\t<and>\r\n'
            + "".join(blocks) + "\t</and>\r\n</edg_wll_QueryEventsRequest>").encode("iso-8859-1")


def C(attr, o, value=None, value2=None, name=None):
    return Condition(attr, o, value, value2, name)


# --- queryJobs ------------------------------------------------------------------------

def test_job_status_request():
    """glite-lb-job_status: one jobId condition with the status flags."""
    req = parse_query_jobs(jobs_doc(ors(op("equal", val("jobId", JOB))),
                                    flags="classadd+children+childstat+childhist_thorough"))
    assert req == QueryJobsRequest(((C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB)),),),
                                   StatusFlag.CLASSADS | StatusFlag.CHILDREN
                                   | StatusFlag.CHILDSTAT | StatusFlag.CHILDHIST_THOROUGH,
                                   ResultLimit(0, QueryResults.UNSET))


def test_user_jobs_request_with_caller_and_null_owner():
    """User jobs: the caller's DN (queryRes ALL), or NULL meaning the caller."""
    req = parse_query_jobs(jobs_doc(ors(op("equal", val("owner", ALICE))), res=2))
    assert req.conditions == ((C(Attr.OWNER, Op.EQUAL, ALICE),),)
    assert req.limit.mode == QueryResults.ALL
    req = parse_query_jobs(jobs_doc(ors(op("equal", val("owner", "NULL")))))
    assert req.conditions == ((C(Attr.OWNER, Op.EQUAL, None),),)


def test_spec_example_my_running_jobs_at_two_ces():
    """§7.6: owner NULL AND (destination ce1 OR ce2) AND status Running."""
    ce1 = "ce1.example.org:2119/jobmanager-pbs-short"
    ce2 = "ce2.example.org:2119/jobmanager-pbs-short"
    req = parse_query_jobs(jobs_doc(
        ors(op("equal", val("owner", "NULL"))),
        ors(op("equal", val("destination", ce1)), op("equal", val("destination", ce2))),
        ors(op("equal", val("status", "Running"))), soft=50, res=3))
    assert req.conditions == (
        (C(Attr.OWNER, Op.EQUAL, None),),
        (C(Attr.DESTINATION, Op.EQUAL, ce1), C(Attr.DESTINATION, Op.EQUAL, ce2)),
        (C(Attr.STATUS, Op.EQUAL, JobState.RUNNING),))
    assert req.limit == ResultLimit(50, QueryResults.LIMITED)


@pytest.mark.parametrize("tag, text, attrs, want", [
    ("jobId", JOB, "", C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB))),
    ("parent_job", JOB, "", C(Attr.PARENT, Op.EQUAL, JobId.parse(JOB))),
    ("owner", ALICE, "", C(Attr.OWNER, Op.EQUAL, ALICE)),
    ("status", "Done", "", C(Attr.STATUS, Op.EQUAL, JobState.DONE)),
    ("status", "6", "", C(Attr.STATUS, Op.EQUAL, JobState.DONE)),
    ("location", "WorkloadManager/wms", "", C(Attr.LOCATION, Op.EQUAL, "WorkloadManager/wms")),
    ("destination", "", "", C(Attr.DESTINATION, Op.EQUAL, "")),
    ("donecode", "1", "", C(Attr.DONECODE, Op.EQUAL, 1)),
    ("usertag", "blue", ' name="Colour"', C(Attr.USERTAG, Op.EQUAL, "blue", name="colour")),
    ("time", "1709294400", ' state="Running"', C(Attr.TIME, Op.EQUAL, 1709294400,
                                                   name="Running")),
    ("resubmitted", "1", "", C(Attr.RESUBMITTED, Op.EQUAL, 1)),
    ("exitcode", "-1", "", C(Attr.EXITCODE, Op.EQUAL, -1)),
    ("jdl", "short", ' name="Queue"', C(Attr.JDL_ATTR, Op.EQUAL, "short", name="Queue")),
    ("stateentertime", "1709294400", "", C(Attr.STATEENTERTIME, Op.EQUAL, 1709294400)),
    ("lastupdatetime", "1709294400", "", C(Attr.LASTUPDATETIME, Op.EQUAL, 1709294400)),
    ("networkserver", "https://wms:7443/", "", C(Attr.NETWORK_SERVER, Op.EQUAL,
                                                 "https://wms:7443/")),
    ("jobtype", "Collection", "", C(Attr.JOBTYPE, Op.EQUAL, StatJobtype.COLLECTION)),
    ("jobtype", "SIMPLE", "", C(Attr.JOBTYPE, Op.EQUAL, StatJobtype.SIMPLE)),
    ("vm_status", "Vm_running", "", C(Attr.VM_STATUS, Op.EQUAL, StatVmState.VM_RUNNING)),
    ("JOBID", JOB, "", C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB))),
])
def test_every_job_attribute(tag, text, attrs, want):
    """Each job attribute of §8.1 is read with its value type; names fold case."""
    req = parse_query_jobs(jobs_doc(ors(op("EQUAL" if tag == "JOBID" else "equal",
                                           val(tag, text, attrs)))))
    assert req.conditions == ((want,),)


def test_within_changed_and_comparisons():
    """within carries two bounds, changed an empty element; less/greater/unequal one value."""
    req = parse_query_jobs(jobs_doc(
        ors(op("within", val("time", "10", ' state="Submitted"'),
               val("time", "20", ' state="Submitted"'))),
        ors(op("changed", "\t\t\t<status/>\r\n")),
        ors(op("less", val("exitcode", "3")), op("greater", val("exitcode", "9")),
            op("unequal", val("exitcode", "5")))))
    assert req.conditions == (
        (C(Attr.TIME, Op.WITHIN, 10, 20, "Submitted"),),
        (C(Attr.STATUS, Op.CHANGED),),
        (C(Attr.EXITCODE, Op.LESS, 3), C(Attr.EXITCODE, Op.GREATER, 9),
         C(Attr.EXITCODE, Op.UNEQUAL, 5)))


def test_flags_are_case_sensitive_and_unknown_ones_ignored():
    """§7.4: flag names match exactly; unknown names are ignored."""
    assert parse_flags("classadd+Children+nonsense+history") == (StatusFlag.CLASSADS
                                                                 | StatusFlag.HISTORY)
    every = StatusFlag(0)
    for bit in StatusFlag:
        every |= bit
    assert format_flags(every) == ("classadd+children+childstat+no_jobs+no_states+"
                                   "childhist_fast+childhist_thorough+anonymized+"
                                   "terminal_states+history+bootstrap+volatile")
    assert format_flags(StatusFlag.NONE) == ""


def test_escaped_values_are_decoded():
    """Entities and %xx escapes of control characters and % are decoded (§0.4)."""
    req = parse_query_jobs(jobs_doc(ors(op("equal", val(
        "usertag", "a&lt;b&amp;c%0a%25%41", ' name="t%09g"')))))
    assert req.conditions[0][0].value == "a<b&c\n%%41"
    assert req.conditions[0][0].name == "t\tg"


def test_no_conditions_parse_and_a_missing_and_too():
    """An empty query parses; the service answers it (EINVAL, unrestricted)."""
    assert parse_query_jobs(jobs_doc()).conditions == ()
    assert parse_query_jobs(b"<edg_wll_QueryJobsRequest/>") == QueryJobsRequest(())


# --- queryEvents -----------------------------------------------------------------------

def test_job_log_request():
    """glite-lb-job_log: jobid AND level < n (§7.8)."""
    req = parse_query_events(events_doc(ors(op("equal", val("jobId", JOB))),
                                        ors(op("less", val("level", "9")),
                                            tag="orEventConditions")))
    assert req == QueryEventsRequest(((C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB)),),),
                                     ((C(Attr.LEVEL, Op.LESS, 9),),))


def test_event_attributes_and_mixed_disjunctions():
    """Event blocks may mix attributes; sources are numbers, types codes; jdl is dropped."""
    req = parse_query_events(events_doc(
        ors(op("equal", val("owner", "NULL"))),
        ors(op("equal", val("source", "4")), op("equal", val("host", "wms01")),
            op("unequal", val("instance", "x")), op("greater", val("type", "10")),
            op("within", val("time", "1", ' state="Undefined"'),
               val("time", "2", ' state="Undefined"')),
            op("equal", val("usertag", "v", ' name="T"')),
            op("less", val("stateentertime", "7")),
            op("equal", val("jdl", "x", ' name="Queue"')), tag="orEventConditions")))
    assert req.job_conditions == ((C(Attr.OWNER, Op.EQUAL, "NULL"),),)
    assert req.event_conditions == ((
        C(Attr.SOURCE, Op.EQUAL, Source.BIG_HELPER), C(Attr.HOST, Op.EQUAL, "wms01"),
        C(Attr.INSTANCE, Op.UNEQUAL, "x"), C(Attr.EVENT_TYPE, Op.GREATER, 10),
        C(Attr.TIME, Op.WITHIN, 1, 2, "Undefined"), C(Attr.USERTAG, Op.EQUAL, "v", name="t"),
        C(Attr.STATEENTERTIME, Op.LESS, 7)),)


def test_event_query_accepts_the_attributes_upstream_rejected():
    """§8.1 quirk: networkserver, lastupdatetime and vm_status are accepted in the job part."""
    req = parse_query_events(events_doc(ors(op("equal", val("networkserver", "ns"))),
                                        ors(op("less", val("lastupdatetime", "5"))),
                                        ors(op("equal", val("vm_status", "Vm_boot")))))
    assert [c[0].attr for c in req.job_conditions] == [Attr.NETWORK_SERVER,
                                                       Attr.LASTUPDATETIME, Attr.VM_STATUS]


# --- other requests ----------------------------------------------------------------------

def test_sequence_code_request():
    """§7.14, as the client writes it (source by name)."""
    doc = (f"<edg_wll_QuerySequenceCodeRequest>\r\n\t\t\t<jobId>{JOB}</jobId>\r\n"
           "\t\t\t<source>NetworkServer</source>\r\n</edg_wll_QuerySequenceCodeRequest>\r\n")
    assert parse_sequence_code(doc.encode()) == SequenceCodeRequest(JobId.parse(JOB),
                                                                    "NetworkServer")


def test_indexed_attrs_request_body_is_ignored():
    """§7.3: the server ignores the body of /indexedAttrs."""
    doc = b"<edg_wll_IndexedAttrsRequest>\r\n</edg_wll_IndexedAttrsRequest>\r\n"
    assert parse_indexed_attrs(doc) == IndexedAttrsRequest()
    assert parse_indexed_attrs(b"\x00garbage") == IndexedAttrsRequest()


def test_notif_request_shape():
    """§7.13 example: function, flags, id, address, change op, validity, conditions."""
    nid = "https://lb.example.org:9000/NOTIF:L6y4Gd4tDzN_90OMZsp0kQ"
    doc = ('<edg_wll_NotifRequest function="New">\r\n\t<flags>terminal_states</flags>\r\n'
           f"\t\t\t<notifId>{nid}</notifId>\r\n\t\t\t<clientAddress>0.0.0.0:40123</clientAddress>\r\n"
           "\t\t\t<notifChangeOp>EDG_WLL_NOTIF_NOOP</notifChangeOp>\r\n"
           "\t\t\t<requestedValidity>1709301600</requestedValidity>\r\n\t<and>\r\n"
           + ors(op("equal", val("owner", ALICE))) + "\t</and>\r\n</edg_wll_NotifRequest>\r\n")
    req = parse_notif(doc.encode())
    assert req == NotifRequest(NotifFunction.NEW, NotifId.parse(nid), "0.0.0.0:40123",
                               NotifChangeOp.NOOP, 1709301600,
                               ((C(Attr.OWNER, Op.EQUAL, ALICE),),),
                               StatusFlag.TERMINAL_STATES)
    assert parse_notif(to_wire(write_notif(req))) == req


# --- bad requests ------------------------------------------------------------------------

def _error(parse, doc: bytes) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse(doc)
    return info.value


@pytest.mark.parametrize("doc", [
    jobs_doc(ors(op("equal", val("colour", "blue")))),                       # unknown attribute
    jobs_doc(ors(op("like", val("owner", "x")))),                           # unknown operator
    jobs_doc(ors(op("equal", val("level", "3")))),                          # event attribute
    jobs_doc(ors(op("equal", val("chkpt_tag", "x")))),                      # defined, rejected
    jobs_doc(ors(op("within", val("exitcode", "1"))))   ,                   # one bound
    jobs_doc(ors(op("equal", val("exitcode", "1"), val("exitcode", "2")))),  # two values
    jobs_doc(ors(op("within", val("exitcode", "1"), val("donecode", "2")))),  # two attributes
    jobs_doc(ors(op("equal", val("jobId", "not-a-job-id")))),                # bad job id
    jobs_doc(ors(op("equal", val("status", "Sleeping")))),                   # unknown state
    jobs_doc(ors(op("equal", val("exitcode", "one")))),                      # not a number
    jobs_doc(ors(op("equal", val("time", "1")))),                            # time needs state
    jobs_doc(ors(op("equal", val("time", "1", ' state="Dreaming"')))),       # unknown state
    jobs_doc(ors(op("equal", val("usertag", "v")))),                         # needs a name
    jobs_doc(ors(op("equal", val("owner", "x", ' extra="1"')))),             # stray attribute
    jobs_doc(ors(op("changed", val("status", "Done")))),                     # changed has a value
    jobs_doc(ors()),                                                         # empty disjunction
    jobs_doc("\t\t<orEventConditions></orEventConditions>\r\n"),             # event block
    jobs_doc("<orJobConditions>text<equal><owner>x</owner></equal></orJobConditions>"),
    b'<edg_wll_QueryJobsRequest softLimit="many"/>',
    b'<edg_wll_QueryJobsRequest queryRes="4"/>',
    b'<edg_wll_QueryJobsRequest colour="blue"/>',
    b"<edg_wll_QueryJobsRequest><flags/><flags/></edg_wll_QueryJobsRequest>",
    b"<edg_wll_QueryJobsRequest><sort/></edg_wll_QueryJobsRequest>",
    b"<edg_wll_QueryEventsRequest/>",                                        # wrong root
    b"<edg_wll_QueryJobsRequest>",                                           # truncated
    b"",
])
def test_malformed_query_jobs(doc):
    """Shape errors are malformed requests (400, EDG_WLL_ERROR_XML_PARSE)."""
    e = _error(parse_query_jobs, doc)
    assert e.malformed and e.code == ErrorCode.XML_PARSE


def test_same_attribute_rule_is_einval():
    """§8.3: one attribute (and tag name) per job disjunction, else EINVAL - not malformed."""
    for block in (ors(op("equal", val("owner", "x")), op("equal", val("status", "Done"))),
                  ors(op("equal", val("usertag", "1", ' name="a"')),
                      op("equal", val("usertag", "1", ' name="b"')))):
        e = _error(parse_query_jobs, jobs_doc(block))
        assert (e.code, e.malformed) == (ErrorCode.EINVAL, False)
        assert "only same attribute types" in e.desc


def test_operator_the_attribute_does_not_take_is_einval():
    """A condition the model refuses (owner < x) is EINVAL."""
    e = _error(parse_query_jobs, jobs_doc(ors(op("less", val("owner", "x")))))
    assert (e.code, e.malformed) == (ErrorCode.EINVAL, False)


@pytest.mark.parametrize("parse, doc", [
    (parse_sequence_code, b"<edg_wll_QuerySequenceCodeRequest/>"),
    (parse_sequence_code, b"<edg_wll_QuerySequenceCodeRequest><jobId>x</jobId>"
                          b"</edg_wll_QuerySequenceCodeRequest>"),
    (parse_notif, b'<edg_wll_NotifRequest function="Explode"/>'),
    (parse_notif, b"<edg_wll_NotifRequest/>"),
    (parse_query_events, events_doc(ors(op("equal", val("level", "x")),
                                        tag="orEventConditions"))),
    (parse_query_events, events_doc(ors(op("equal", val("location", "x")),
                                        tag="orEventConditions"))),
])
def test_malformed_other_requests(parse, doc):
    """The other parsers refuse bad shapes and values the same way."""
    assert _error(parse, doc).malformed


# --- round trips ---------------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20).filter(
    lambda s: not s.isspace())
_ids = st.builds(lambda n: JobId("lb.example.org", 9000, f"job{n}"), st.integers(0, 10**6))
_ints = st.integers(-2**31, 2**31)
_states = st.sampled_from(list(JobState))
_tag_names = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)


def _job_conditions():
    eq = st.sampled_from([Op.EQUAL, Op.UNEQUAL])
    allop = st.sampled_from([Op.EQUAL, Op.UNEQUAL, Op.LESS, Op.GREATER])
    return st.one_of(
        st.builds(lambda o, v: C(Attr.JOBID, o, v), eq, _ids),
        st.builds(lambda o, v: C(Attr.OWNER, o, v), eq,
                  _texts.filter(lambda s: s != "NULL") | st.none()),
        st.builds(lambda o, v: C(Attr.STATUS, o, v), allop, _states),
        st.builds(lambda o, v: C(Attr.DESTINATION, o, v), eq, _texts),
        st.builds(lambda o, v, n: C(Attr.USERTAG, o, v, name=n), allop, _texts, _tag_names),
        st.builds(lambda a, b, s: C(Attr.TIME, Op.WITHIN, min(a, b), max(a, b), s.text),
                  _ints, _ints, _states),
        st.builds(lambda o, v: C(Attr.EXITCODE, o, v), allop, _ints),
        st.builds(lambda v: C(Attr.JOBTYPE, Op.EQUAL, v), st.sampled_from(list(StatJobtype))),
        st.builds(lambda n: C(Attr.JDL_ATTR, Op.CHANGED, name=n), _tag_names),
    )


def _disjunction():
    # one attribute (and tag name) per disjunction
    return _job_conditions().flatmap(lambda c: st.lists(
        _job_conditions().filter(lambda d: d.same_kind(c)), max_size=2).map(
            lambda more: (c, *more)))


_limits = st.builds(ResultLimit, st.integers(0, 10**6), st.sampled_from(list(QueryResults)))
_flags = st.builds(StatusFlag, st.integers(0, 4095))


@settings(max_examples=60, deadline=None)
@given(st.lists(_disjunction(), max_size=4), _flags, _limits)
def test_query_jobs_round_trip(conditions, flags, limit):
    """Our client writer's queryJobs document parses back to the same request."""
    req = QueryJobsRequest(tuple(conditions), flags, limit)
    assert parse_query_jobs(to_wire(write_query_jobs(req))) == req


_event_conditions = st.one_of(
    st.builds(lambda v: C(Attr.LEVEL, Op.LESS, v), st.integers(0, 10)),
    st.builds(lambda v: C(Attr.HOST, Op.EQUAL, v), _texts),
    st.builds(lambda v: C(Attr.SOURCE, Op.EQUAL, v), st.sampled_from(list(Source))),
    st.builds(lambda v: C(Attr.EVENT_TYPE, Op.GREATER, v), st.integers(0, 600)),
    st.builds(lambda v, n: C(Attr.USERTAG, Op.EQUAL, v, name=n), _texts, _tag_names),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_disjunction(), max_size=3),
       st.lists(st.lists(_event_conditions, min_size=1, max_size=3).map(tuple), max_size=3),
       _limits)
def test_query_events_round_trip(job, events, limit):
    """Our client writer's queryEvents document parses back to the same request.

    (Owner NULL is a plain value in event queries, so it is left out here.)"""
    job = [tuple(c for c in ors if not (c.attr == Attr.OWNER and c.value is None))
           for ors in job]
    req = QueryEventsRequest(tuple(o for o in job if o), tuple(events), limit)
    assert parse_query_events(to_wire(write_query_events(req))) == req


@given(_ids, st.none() | _texts)
@settings(max_examples=30, deadline=None)
def test_sequence_code_round_trip(job_id, source):
    """The sequence code request round-trips."""
    req = SequenceCodeRequest(job_id, source if source != "" else None)
    assert parse_sequence_code(to_wire(write_sequence_code(req))) == req


def test_whitespace_only_values_read_as_empty():
    """Readers ignore whitespace-only text (§7.4), so such values read as empty."""
    req = parse_query_jobs(jobs_doc(ors(op("equal", val("destination", "   ")))))
    assert req.conditions[0][0].value == ""
