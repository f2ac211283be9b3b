"""The ULM event text format (formats.md §2): lbtx.ulm.parse / format.

Real event streams (data/ulm/*.log), the examples of the spec, property-based round trips over
every event type of the schema, malformed input and fuzzing (nothing but LBFormatError may
escape the parser).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import ULM_DATA

from lbtx import ulm
from lbtx.errors import LBFormatError, ULMError
from lbtx.events import EVENT_CLASSES, Event, make_event, null_value
from lbtx.jobid import JobId, NotifId
from lbtx.schema import ENUMS, EVENT_SPECS, HEADER, Level, Source
from lbtx.timeval import NULL_TIME, Timeval

ULM_FILES = sorted(ULM_DATA.glob("*.log"))
MAX_SEC = 2**37 - 1  # the range Event.validate accepts (year 6325)

EXAMPLE_RUNNING = (
    'DATE=20240301120000.000500 HOST="wn01.example.org" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=4 '
    'DG.SOURCE="LRMS" DG.SRC_INSTANCE="" DG.EVNT="Running" '
    'DG.JOBID="https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw" '
    'DG.SEQCODE="UI=000002:NS=0000000004:WM=000003:BH=0000000001:JSS=000002:LM=000001:LRMS=000001:'
    'APP=000000:LBS=000000" DG.RUNNING.NODE="wn01.example.org"'
)
EXAMPLE_REGJOB = (
    'DATE=20240301115500.250000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=16 '
    'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" '
    'DG.JOBID="https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw" '
    'DG.SEQCODE="UI=000001:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:'
    'APP=000000:LBS=000000" DG.USER="/DC=org/DC=example/CN=Alice Example" '
    'DG.REGJOB.JDL="[ Executable = \\"/bin/true\\"; ]" DG.REGJOB.NS="wms.example.org:7443" '
    'DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="DAG" DG.REGJOB.NSUBJOBS="3" '
    'DG.REGJOB.SEED="exampleseed" DG.REGJOB.WMS_DN=""'
)
JOBID = "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"


def _data_lines(path):
    with open(path, "rb") as f:
        return [(i + 1, raw) for i, raw in enumerate(f) if raw.strip()]


def _short_real_lines(limit=3000):
    out = []
    for path in ULM_FILES:
        if path.stat().st_size > 1_000_000:
            continue
        out += [raw.decode("utf-8") for _, raw in _data_lines(path) if len(raw) < limit]
    return out


SHORT_LINES = _short_real_lines()


def expect_error(line, *, code, key=None, cls=ULMError, **kw) -> LBFormatError:
    with pytest.raises(LBFormatError) as info:
        ulm.parse(line, **kw)
    err = info.value
    assert isinstance(err, cls), f"{type(err).__name__}: {err}"
    assert err.code == code, f"code {err.code} ({err})"
    if key is not None:
        assert err.key == key, f"key {err.key} ({err})"
        assert key in str(err)
    assert err.key is not None or err.position is not None or code in ("TOO_LONG",), str(err)
    if err.position is not None:
        assert f"offset {err.position}" in str(err)
    return err


def replace_field(line: str, key: str, new: str | None) -> str:
    """Replace (or with None remove) the field ``key=...`` of ``line``."""
    m = re.search(rf'(?:(?<= )|^){re.escape(key)}=("(?:[^"\\]|\\.)*"|[^ ]*)', line)
    assert m is not None, key
    if new is None:
        return (line[:m.start()] + line[m.end():]).replace("  ", " ").strip()
    return line[:m.start()] + f"{key}={new}" + line[m.end():]


# --- real event streams ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ULM_FILES, ids=[p.name for p in ULM_FILES])
def test_real_streams_parse_and_roundtrip(path):
    lines = _data_lines(path)
    assert lines
    for lineno, raw in lines:
        text = raw.decode("utf-8")
        try:
            ev = ulm.parse(text, require_job_id=False)
        except LBFormatError as e:  # pragma: no cover - reported with its location
            pytest.fail(f"{path.name}:{lineno}: {e}")
        assert isinstance(ev, Event)
        assert ulm.parse_bytes(raw, require_job_id=False) == ev
        again = ulm.parse(ulm.format(ev), require_job_id=False)
        assert again == ev, f"{path.name}:{lineno}: round trip changed the event"
        # formatting is canonical: formatting the re-parsed event gives the same text
        assert ulm.format(again) == ulm.format(ev)


def test_real_streams_content():
    lines = _data_lines(ULM_DATA / "perf_simple_avg_events.log")
    evs = [ulm.parse(raw.decode(), require_job_id=False) for _, raw in lines]
    assert len(evs) == 20
    assert all(isinstance(e.job_id, JobId) for e in evs)  # this file carries its real job ids
    reg = ulm.parse((ULM_DATA / "perf_dag_avg_subjobs.reg.log").read_text().splitlines()[0],
                    require_job_id=False)
    assert reg.type_name == "RegJob"
    assert reg.job_id is None
    assert reg.jobtype is ENUMS["RegJobJobtype"].DAG
    assert reg.nsubjobs == 11
    assert reg.seed == "Userinterface"
    assert reg.source is Source.USER_INTERFACE
    assert reg.jdl.startswith('[ edg_jobid = "https://tigerman.cnaf.infn.it:9000/-N6UII7lyazB_ZpaYSJp8g";')
    assert reg.parent is None


def test_huge_real_values():
    path = ULM_DATA / "perf_dag_max_subjobs.reg.log"
    raw = max((r for _, r in _data_lines(path)), key=len)
    assert len(raw) > 1_000_000
    ev = ulm.parse_bytes(raw, require_job_id=False)
    assert len(ev.jdl) > 1_000_000
    with pytest.raises(ULMError) as info:
        ulm.parse_bytes(raw, require_job_id=False, max_length=100_000)
    assert info.value.code == "TOO_LONG"


def test_lines_without_jobid_need_require_job_id_false():
    text = _data_lines(ULM_DATA / "perf_simple_max_events.log")[0][1].decode()
    assert "DG.JOBID" not in text
    expect_error(text, code="MSG_INCOMPLETE", key="DG.JOBID")


# --- the examples of formats.md §2.9 ---------------------------------------------------------

def test_example_running():
    ev = ulm.parse(EXAMPLE_RUNNING)
    assert ev.type_name == "Running"
    assert ev.timestamp == Timeval(1709294400, 500)
    assert ev.host == "wn01.example.org"
    assert ev.level is Level.SYSTEM
    assert ev.priority == 4
    assert ev.source is Source.LRMS
    assert ev.src_instance == ""  # an empty text is the empty string, not unset
    assert ev.job_id == JobId.parse(JOBID)
    assert ev.seqcode.startswith("UI=000002:NS=0000000004:")
    assert ev.user is None
    assert ev.node == "wn01.example.org"
    assert ev.arrived == NULL_TIME
    # lbtx writes the record exactly as the spec shows it
    assert ulm.format(ev, newline=False) == EXAMPLE_RUNNING
    assert ulm.format(ev) == EXAMPLE_RUNNING + "\n"
    assert ulm.format_bytes(ev) == (EXAMPLE_RUNNING + "\n").encode()


def test_example_regjob():
    ev = ulm.parse(EXAMPLE_REGJOB, require_user=True)
    assert ev.type_name == "RegJob"
    assert ev.user == "/DC=org/DC=example/CN=Alice Example"
    assert ev.priority == 16
    assert ev.jdl == '[ Executable = "/bin/true"; ]'
    assert ev.ns == "wms.example.org:7443"
    assert ev.parent is None
    assert ev.jobtype is ENUMS["RegJobJobtype"].DAG
    assert ev.nsubjobs == 3
    assert ev.seed == "exampleseed"
    assert ev.wms_dn == ""  # empty text: the empty string
    # an empty id is unset; lbtx leaves unset texts and ids out (upstream readers take both)
    assert ulm.format(ev, newline=False) == EXAMPLE_REGJOB.replace(' DG.REGJOB.PARENT=""', "")
    assert ulm.parse(ulm.format(ev)) == ev


def test_format_field_order_and_quoting():
    """Header in the order of the schema's ulm.header_order; DATE, PROG, LVL, DG.PRIORITY bare."""
    ev = ulm.parse(EXAMPLE_REGJOB).copy(arrived=Timeval(1709294401, 0))
    text = ulm.format(ev, newline=False)
    keys = [m.group(1) for m in re.finditer(r'(?:^| )([A-Z_.]+)=', text)]
    assert keys[:12] == ["DATE", "ARR_DATE", "HOST", "PROG", "LVL", "DG.PRIORITY", "DG.SOURCE",
                         "DG.SRC_INSTANCE", "DG.EVNT", "DG.JOBID", "DG.SEQCODE", "DG.USER"]
    assert keys[12:] == [a.ulm_key for a in ev.attr_specs if getattr(ev, a.py_name) is not None]
    for key in ("DATE", "ARR_DATE", "PROG", "LVL", "DG.PRIORITY"):
        assert re.search(rf'(?:^| ){re.escape(key)}=[^"]', text), key
    for key in keys:
        if key not in ("DATE", "ARR_DATE", "PROG", "LVL", "DG.PRIORITY"):
            assert f'{key}="' in text, key
    assert ulm.parse(text).arrived == Timeval(1709294401, 0)


def test_format_writes_sentinels_and_leaves_out_unset_texts():
    ev = make_event("Done", timestamp=Timeval(1, 0), host="h", seqcode="", source=Source.LRMS,
                    status_code=ENUMS["DoneStatusCode"].OK)
    text = ulm.format(ev)
    # numbers are written even when equal to their sentinel; unset (None) texts are left out
    assert 'DG.DONE.STATUS_CODE="OK" DG.DONE.EXIT_CODE="-1"' in text
    assert "DG.DONE.REASON" not in text and "DG.SRC_INSTANCE" not in text
    assert 'DG.USER' not in text  # an unset user is left to the logger
    # ... and a required one equal to its sentinel (-1 for exit_code) makes the record incomplete
    expect_error(text, code="MSG_INCOMPLETE", key="DG.DONE.EXIT_CODE", require_job_id=False)
    ev = ev.copy(exit_code=0)
    text = ulm.format(ev)
    assert 'DG.DONE.EXIT_CODE="0"' in text
    assert ulm.parse(text, require_job_id=False) == ev
    # an empty text is a value and is written
    empty = ev.copy(reason="", src_instance="", user="")
    text = ulm.format(empty)
    assert 'DG.DONE.REASON=""' in text and 'DG.SRC_INSTANCE=""' in text and 'DG.USER=""' in text
    assert ulm.parse(text, require_job_id=False) == empty
    # unset enumerations are written by name, unset dates as the zero date
    und = make_event("CREAMStatus", timestamp=Timeval(1, 0), host="h", seqcode="",
                     source=Source.CREAM_EXECUTOR, new_state="IDLE",
                     result=ENUMS["CREAMStatusResult"].DONE)
    text = ulm.format(und)
    assert 'DG.CREAMSTATUS.ORIG_TIMESTAMP="19700101000000.000000"' in text
    assert ulm.parse(text, require_job_id=False) == und


# --- escaping (§2.2) --------------------------------------------------------------------------

@pytest.mark.parametrize("value, escaped", [
    ("plain", "plain"),
    ("a\nb", "a\\nb"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("\\n is not a newline", "\\\\n is not a newline"),
    ('\\"', '\\\\\\"'),
    ("tab\tcr\rutf8 \u017e\u00e1", "tab\tcr\rutf8 \u017e\u00e1"),  # nothing else is escaped
    ("trailing backslash\\", "trailing backslash\\\\"),
    ("", ""),
])
def test_escaping_roundtrip(value, escaped):
    ev = ulm.parse(EXAMPLE_RUNNING).copy(host=value, node=value or "n")
    text = ulm.format(ev)
    assert f'HOST="{escaped}"' in text
    back = ulm.parse(text)
    assert back.host == value
    assert back.node == (value or "n")
    assert back == ev


def test_unescaping_of_other_characters():
    """A backslash followed by any other byte yields that byte."""
    line = replace_field(EXAMPLE_RUNNING, "DG.RUNNING.NODE", r'"\a\b\\c\"\n\t"')
    assert ulm.parse(line).node == 'ab\\c"\nt'


def test_ids_and_taglists_are_escaped():
    jid = JobId("lb.example.org", 9000, 'we"ird\\id', 'info "x"\n')
    ev = make_event("PBSResourceUsage", timestamp=Timeval(1, 0), host="h", seqcode="",
                    source=Source.PBS_SERVER, job_id=jid, usage=ENUMS["PBSResourceUsageUsage"].USED,
                    resources=(("cpu", 'a"b'), ("mem\\x", "1\n2")))
    back = ulm.parse(ulm.format(ev))
    assert back == ev
    assert back.job_id == jid


def test_taglist_reading():
    line = ulm.format(make_event(
        "PBSResourceUsage", timestamp=Timeval(1, 0), host="h", seqcode="", source=Source.PBS_MOM,
        usage=ENUMS["PBSResourceUsageUsage"].USED, resources=(("x", "y"),)), newline=False)
    line = replace_field(line, "DG.PBSRESOURCEUSAGE.RESOURCES", '"a=1,novalue,b=,=c,d=e=f,,g=2"')
    ev = ulm.parse(line, require_job_id=False)
    # pairs without '=' or with an empty value are dropped (§2.5); the value may hold '='
    assert ev.resources == (("a", "1"), ("d", "e=f"), ("g", "2"))
    empty = replace_field(line, "DG.PBSRESOURCEUSAGE.RESOURCES", '"novalue,b="')
    expect_error(empty, code="MSG_INCOMPLETE", key="DG.PBSRESOURCEUSAGE.RESOURCES",
                 require_job_id=False)


def test_doubles():
    base = make_event("ResourceUsage", timestamp=Timeval(1, 0), host="h", seqcode="",
                      source=Source.LRMS, resource="cpu", unit="sec", quantity=12.5)
    text = ulm.format(base)
    assert 'DG.RESOURCEUSAGE.QUANTITY="12.500000"' in text
    for q in (1e300, -1e300, 1e-300, 5e-324, 0.1, 1 / 3, 2.0 ** 70, -7.25):
        ev = base.copy(quantity=q)
        assert ulm.parse(ulm.format(ev), require_job_id=False).quantity == q
    for good, value in (("1", 1.0), ("-2.5", -2.5), ("+3.", 3.0), (".5", 0.5), ("1e3", 1000.0),
                        ("1.5E-2", 0.015)):
        line = replace_field(text.strip(), "DG.RESOURCEUSAGE.QUANTITY", f'"{good}"')
        assert ulm.parse(line, require_job_id=False).quantity == value
    for bad in ("abc", "1_5", "nan", "inf", "-infinity", " 1.5", "1.5 ", "0x10", "1e", "\u0661",
                "1" * 70, "1e999"):
        line = replace_field(text.strip(), "DG.RESOURCEUSAGE.QUANTITY", f'"{bad}"')
        expect_error(line, code="BAD_VALUE", key="DG.RESOURCEUSAGE.QUANTITY", require_job_id=False)


# --- hypothesis round trip over every event type ---------------------------------------------

# strings without NUL and without lone surrogates: those have no UTF-8 form of their own (what
# parse_bytes makes of undecodable bytes is tested separately, in test_undecodable_bytes)
_char = st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))
_text = st.text(_char, max_size=20)
_text1 = st.text(_char, min_size=1, max_size=20)
_timeval = st.builds(Timeval, st.integers(0, MAX_SEC), st.integers(0, 999_999))
_timeval1 = _timeval.filter(lambda t: t != NULL_TIME)
_host = st.text(st.characters(blacklist_characters=" \t\r\n\v\f\0/?", blacklist_categories=("Cs",)),
                min_size=1, max_size=15)
_unique = st.text(st.characters(blacklist_characters=" \t\r\n\v\f\0?", blacklist_categories=("Cs",)),
                  min_size=1, max_size=22)
_info = st.none() | st.text(_char, max_size=10)
_port = st.integers(1, 65535)
_jobid = st.builds(JobId, _host, _port, _unique, _info)
_notifid = st.builds(lambda h, p, u, i: NotifId(h, p, "NOTIF:" + u, i), _host, _port, _unique, _info)
_tagname = st.text(_char.filter(lambda c: c not in ",="), min_size=1, max_size=8)
_tagvalue = st.text(_char.filter(lambda c: c != ","), min_size=1, max_size=8)
_taglist1 = st.lists(st.tuples(_tagname, _tagvalue), min_size=1, max_size=4).map(tuple)
_int64 = st.integers(-2**63, 2**63 - 1)
_double = st.floats(allow_nan=False, allow_infinity=False)


def attr_strategy(a):
    """Valid values of one attribute of the schema (required ones differ from the sentinel)."""
    req = a.required
    if a.enum is not None and a.flags is None:
        members = list(ENUMS[a.enum])
        if req:
            members = [m for m in members if m != null_value(a)]
        return st.sampled_from(members)
    t = a.type
    if t == "string":
        return _text if req else st.none() | _text
    if t == "int":
        return _int64.filter(lambda v: v != a.null) if req else _int64
    if t == "port":
        return _port if req else st.integers(0, 65535)
    if t in ("double", "float"):
        return _double.filter(lambda v: v != 0.0) if req else _double
    if t == "timeval":
        return _timeval1 if req else _timeval
    if t == "jobid":
        return _jobid if req else st.none() | _jobid
    if t == "notifid":
        return _notifid if req else st.none() | _notifid
    if t == "taglist":
        return _taglist1 if req else st.none() | _taglist1
    raise AssertionError(f"no strategy for type {t}")  # pragma: no cover


def header_strategies():
    return {
        "timestamp": _timeval1,
        "arrived": _timeval,
        "host": _text,
        "level": st.sampled_from(list(Level)),
        "priority": _int64.filter(lambda v: v != -1),
        "job_id": st.none() | _jobid,
        "seqcode": _text,
        "user": st.none() | _text,
        "source": st.sampled_from([s for s in Source if s != Source.NONE]),
        "src_instance": st.none() | _text,
    }


def test_header_strategies_cover_header():
    assert set(header_strategies()) == {a.py_name for a in HEADER}


def event_strategy(spec):
    fields = header_strategies()
    fields.update({a.py_name: attr_strategy(a) for a in spec.attrs})
    return st.fixed_dictionaries(fields).map(lambda kw: EVENT_CLASSES[spec.name](**kw))


def _roundtrip(ev):
    ev.validate(require_user=False, require_job_id=False)
    text = ulm.format(ev)
    assert text.endswith("\n") and text.count("\n") == 1
    back = ulm.parse(text, require_job_id=ev.job_id is not None, require_user=ev.user is not None)
    assert back == ev, f"{text!r}\n{back!r}\n{ev!r}"
    assert ulm.parse_bytes(ulm.format_bytes(ev), require_job_id=False) == ev
    assert ulm.format(back) == text


@pytest.mark.parametrize("spec", EVENT_SPECS, ids=[s.name for s in EVENT_SPECS])
def test_roundtrip_every_event_type(spec):
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event_strategy(spec))
    def check(ev):
        _roundtrip(ev)
    check()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_SPECS).flatmap(event_strategy))
def test_roundtrip_any_event(ev):
    _roundtrip(ev)


# --- a valid record of every type, for the malformed-input tests -----------------------------

def _sample_value(a):
    if a.enum is not None and a.flags is None:
        return next(m for m in ENUMS[a.enum] if m != null_value(a))
    return {
        "string": "x y", "int": 7, "port": 8080, "double": 1.5, "float": 1.5,
        "timeval": Timeval(1709294400, 1), "jobid": JobId.parse(JOBID),
        "notifid": NotifId.parse("https://lb.example.org:9000/NOTIF:abc"),
        "taglist": (("a", "1"),),
    }[a.type]


def sample_event(spec, **header):
    values = dict(timestamp=Timeval(1709294400, 500), host="h.example.org", seqcode="",
                  source=Source.LRMS, job_id=JobId.parse(JOBID), user="/CN=u", priority=0,
                  level=Level.SYSTEM)
    values.update(header)
    values.update({a.py_name: _sample_value(a) for a in spec.attrs})
    return EVENT_CLASSES[spec.name](**values)


SAMPLE_LINES = {s.name: ulm.format(sample_event(s), newline=False) for s in EVENT_SPECS}


@pytest.mark.parametrize("spec", EVENT_SPECS, ids=[s.name for s in EVENT_SPECS])
def test_missing_required_attribute(spec):
    line = SAMPLE_LINES[spec.name]
    if spec.name == "Notification":
        # a notification record written with DG.EVNT is checked for completeness; the
        # DG.TYPE form that format() writes is not (as upstream)
        line = line.replace('DG.TYPE="notification"', 'DG.EVNT="Notification"')
    assert ulm.parse(line, require_user=True) == sample_event(spec)
    for a in spec.attrs:
        removed = replace_field(line, a.ulm_key, None)
        emptied = replace_field(line, a.ulm_key, '""')
        if a.type == "string":
            # an empty text is the empty string: a value, also for a required attribute
            # (upstream strdup()s it and checks for NULL only)
            assert getattr(ulm.parse(emptied), a.py_name) == ""
        if a.optional:
            ev = ulm.parse(removed)
            assert getattr(ev, a.py_name) == null_value(a)
            if a.type != "string":
                assert ulm.parse(emptied) == ev  # an empty number, code, id or date is unset
            continue
        expect_error(removed, code="MSG_INCOMPLETE", key=a.ulm_key)
        if a.type != "string":
            expect_error(emptied, code="MSG_INCOMPLETE", key=a.ulm_key)
        # a required value equal to its sentinel counts as missing (§2.4)
        if a.enum is not None:
            null_text = null_value(a).text if a.type == "logsrc" else null_value(a).name
        elif a.type in ("int", "port"):
            null_text = str(a.null)
        elif a.type == "double":
            null_text = "0.000000"
        else:
            continue
        expect_error(replace_field(line, a.ulm_key, f'"{null_text}"'), code="MSG_INCOMPLETE",
                     key=a.ulm_key)


def test_listener_port_zero_is_incomplete():
    line = replace_field(SAMPLE_LINES["Listener"], "DG.LISTENER.SVC_PORT", '"0"')
    expect_error(line, code="MSG_INCOMPLETE", key="DG.LISTENER.SVC_PORT")


@pytest.mark.parametrize("key", ["DATE", "HOST", "DG.PRIORITY", "DG.SOURCE", "DG.JOBID",
                                 "DG.SEQCODE", "DG.USER"])
def test_missing_required_header_field(key):
    line = SAMPLE_LINES["Running"]
    expect_error(replace_field(line, key, None), code="MSG_INCOMPLETE", key=key, require_user=True)


@pytest.mark.parametrize("key, null", [("DATE", "19700101000000.000000"), ("DG.PRIORITY", "-1"),
                                       ("DG.SOURCE", '"Undefined"'), ("DG.JOBID", '""')])
def test_header_field_equal_to_its_sentinel_is_missing(key, null):
    expect_error(replace_field(SAMPLE_LINES["Running"], key, null), code="MSG_INCOMPLETE", key=key)


def test_optional_and_unchecked_header_fields():
    line = SAMPLE_LINES["Running"]
    # DG.USER is needed only where the server parses (require_user)
    assert ulm.parse(replace_field(line, "DG.USER", None)).user is None
    # DG.JOBID may be absent from template records
    assert ulm.parse(replace_field(line, "DG.JOBID", None), require_job_id=False).job_id is None
    # LVL is not checked for completeness (schema: required_note of level)
    assert ulm.parse(replace_field(line, "LVL", None)).level is Level.UNDEFINED
    # HOST and DG.SEQCODE may be empty strings
    ev = ulm.parse(replace_field(replace_field(line, "HOST", '""'), "DG.SEQCODE", '""'))
    assert ev.host == "" and ev.seqcode == ""
    # DG.SRC_INSTANCE is optional: absent it is unset, empty it is the empty string
    assert "DG.SRC_INSTANCE" not in line and ulm.parse(line).src_instance is None
    assert ulm.parse(line + ' DG.SRC_INSTANCE=""').src_instance == ""
    assert ulm.parse(line + ' DG.SRC_INSTANCE="i"').src_instance == "i"
    assert ulm.parse(replace_field(line, "DG.USER", '""')).user == ""
    # PROG, DG.LLLID and other unknown keys are ignored, in any case and position
    extra = "DG.LLLID=12000 " + line + " prog=other X-Y.z_1=\"ignored\" DG.UNKNOWN=\"1\""
    assert ulm.parse(extra) == ulm.parse(line)


def test_dg_arrived_prefix():
    ev = ulm.parse("DG.ARRIVED=20240301120001.000002 " + SAMPLE_LINES["Running"])
    assert ev.arrived == Timeval(1709294401, 2)
    expect_error("DG.ARRIVED=garbage " + SAMPLE_LINES["Running"], code="BAD_VALUE", key="DG.ARRIVED")


def test_key_names_are_case_insensitive():
    line = SAMPLE_LINES["Running"]
    lowered = re.sub(r'(^| )([A-Za-z_.]+)=', lambda m: m.group(1) + m.group(2).lower() + "=", line)
    assert lowered != line
    assert ulm.parse(lowered) == ulm.parse(line)
    assert ulm.parse(replace_field(line, "DG.EVNT", '"rUnNiNg"')).type_name == "Running"
    assert ulm.parse(replace_field(line, "DG.SOURCE", '"lrms"')).source is Source.LRMS
    assert ulm.parse(replace_field(line, "LVL", "debug")).level is Level.DEBUG


def test_sequence_code_is_kept_as_text():
    """The ULM layer does not parse sequence codes: whatever DG.SEQCODE holds is kept verbatim."""
    for code in ("garbage", "UI=1", "UI=x:NS=y", "TIMESTAMP=x", " spaced \\ \" text ", "\u017e"):
        line = replace_field(SAMPLE_LINES["Running"], "DG.SEQCODE",
                             '"' + code.replace("\\", "\\\\").replace('"', '\\"') + '"')
        ev = ulm.parse(line)
        assert ev.seqcode == code
        assert ulm.parse(ulm.format(ev)) == ev


def test_notification_record():
    line = ('DATE=20240301120000.000000 HOST="lb.example.org" DG.TYPE="notification" '
            'DG.NOTIFICATION.NOTIFID="https://lb.example.org:9000/NOTIF:abc" '
            'DG.NOTIFICATION.DEST_PORT="9999" DG.NOTIFICATION.JOBSTAT="<xml/>"')
    ev = ulm.parse(line)
    assert ev.type_name == "Notification"
    assert isinstance(ev.notif_id, NotifId) and ev.notif_id.notif_unique == "abc"
    assert ev.dest_port == 9999
    assert ev.owner is None  # notification records skip the completeness check
    expect_error(replace_field(line, "DG.NOTIFICATION.NOTIFID", '"https://lb.example.org:9000/abc"'),
                 code="BAD_JOBID", key="DG.NOTIFICATION.NOTIFID")


# --- malformed records -------------------------------------------------------------------------

BASE = SAMPLE_LINES["Running"]


def test_empty_records():
    for line in ("", " ", "\t \t", "\n", "   \n"):
        expect_error(line, code="BROKEN_ULM")


@pytest.mark.parametrize("line, what", [
    (BASE.replace('HOST="h.example.org"', 'HOST="h.example.org"x'), "text after closing quote"),
    (BASE.replace('HOST="h.example.org"', 'HOST="h.example.org""'), "quote after closing quote"),
    (BASE.replace('HOST="h.example.org"', 'HOST="h.exam"ple.org"'), "quote inside quotes"),
    (BASE.replace('HOST="h.example.org"', 'HOST=h.exam"ple.org'), "stray quote in a bare value"),
    (BASE.replace("PROG=edg-wms", "PROG=edg\\wms"), "backslash outside quotes"),
    (BASE.replace("PROG=edg-wms", "PROG=edg=wms"), "second '='"),
    (BASE.replace("PROG=edg-wms", "PROG =edg-wms"), "blank before '='"),
    (BASE.replace("PROG=edg-wms", "PROG= edg-wms"), "blank after '='"),
    (BASE.replace("PROG=edg-wms", "PROG"), "key without '='"),
    (BASE.replace("PROG=edg-wms", "=edg-wms"), "'=' without key"),
    (BASE.replace("PROG=edg-wms", "PR@G=edg-wms"), "bad key character"),
    (BASE.replace('HOST="h.example.org"', 'HOST="h.example.org'), "unterminated quote"),
    (BASE + ' X="unterminated', "unterminated quote at the end"),
    (BASE + ' X="dangling\\', "dangling backslash"),
    (BASE + ' X="ends with escaped quote\\"', "escaped closing quote"),
    (BASE + "\nDG.RUNNING.NODE=\"x\"", "field after the line feed"),
    (BASE + "\ntrailing text", "text after the line feed"),
    ('"' + BASE, "leading quote"),
    ("\\" + BASE, "leading backslash"),
])
def test_syntax_errors(line, what):
    err = expect_error(line, code="BROKEN_ULM")
    assert err.position is not None, what
    assert 0 <= err.position <= len(line)


def test_syntax_error_positions():
    line = BASE.replace('HOST="h.example.org"', 'HOST="h.example.org"x')
    err = expect_error(line, code="BROKEN_ULM", key="HOST")
    assert line[err.position] == "x"
    # a quote left open runs to the next quote, after which the record cannot go on
    line = BASE.replace('HOST="h.example.org"', 'HOST="h.example.org')
    err = expect_error(line, code="BROKEN_ULM", key="HOST")
    assert line[err.position - 1] == '"' and line[err.position] not in " \t"
    line = BASE + ' X="unterminated'
    err = expect_error(line, code="BROKEN_ULM", key="X")
    assert err.position == len(BASE) + len(' X=')
    line = BASE.replace("PROG=edg-wms", "PROG=edg\\wms")
    err = expect_error(line, code="BROKEN_ULM", key="PROG")
    assert line[err.position] == "\\"


def test_blanks_and_trailing_newline_accepted():
    ev = ulm.parse(EXAMPLE_RUNNING)
    assert ulm.parse("  \t" + EXAMPLE_RUNNING + " \t \n") == ev
    assert ulm.parse(EXAMPLE_RUNNING.replace(" ", " \t ")) == ev


def test_unknown_event_type():
    expect_error(replace_field(BASE, "DG.EVNT", '"NoSuchEvent"'), code="EVENT_UNDEF", key="DG.EVNT")
    expect_error(replace_field(BASE, "DG.EVNT", "Running2"), code="EVENT_UNDEF", key="DG.EVNT")


def test_missing_event_type():
    expect_error(replace_field(BASE, "DG.EVNT", None), code="EVENT_UNDEF", key="DG.EVNT")
    expect_error(replace_field(BASE, "DG.EVNT", '""'), code="EVENT_UNDEF", key="DG.EVNT")


def test_command_record_is_not_an_event():
    line = 'DATE=20240301120000.000000 PROG=internal LVL=system DG.PRIORITY=1 DG.TYPE="command" ' \
           'DG.COMMAND="flush" DG.TIMEOUT="30"'
    expect_error(line, code="EVENT_UNDEF", key="DG.TYPE")


@pytest.mark.parametrize("key, value", [
    ("DG.SOURCE", '"NoSuchSource"'),
    ("DG.SOURCE", '" LRMS"'),
    ("DG.SOURCE", '"7"'),
    ("LVL", "LOUD"),
])
def test_bad_header_enum_value(key, value):
    """lbtx reports an unknown name as a bad value (upstream maps it to UNDEFINED, see ulm.py)."""
    expect_error(replace_field(BASE, key, value), code="BAD_VALUE", key=key)


@pytest.mark.parametrize("event, key, value", [
    ("Done", "DG.DONE.STATUS_CODE", '"FINISHED"'),
    ("RegJob", "DG.REGJOB.JOBTYPE", '"1"'),
    ("Transfer", "DG.TRANSFER.DESTINATION", '"Nowhere"'),
    ("ChangeACL", "DG.CHANGEACL.OPERATION", '"ADD "'),
])
def test_bad_attribute_enum_value(event, key, value):
    expect_error(replace_field(SAMPLE_LINES[event], key, value), code="BAD_VALUE", key=key)


def test_enum_names_case_insensitive():
    line = replace_field(SAMPLE_LINES["Done"], "DG.DONE.STATUS_CODE", '"failed"')
    assert ulm.parse(line).status_code is ENUMS["DoneStatusCode"].FAILED


def test_source_alias_accepted():
    assert ulm.parse(replace_field(BASE, "DG.SOURCE", '"WM_PROXY"')).source is Source.NETWORK_SERVER


@pytest.mark.parametrize("value", ["abc", "1.5", "0x10", " 1", "1 ", "", "--1", "1e3",
                                   str(2**63), str(-2**63 - 1), "\u0661", "1" * 600])
def test_bad_int(value):
    if value == "":
        # an empty bare DG.PRIORITY is unset, hence missing
        expect_error(replace_field(BASE, "DG.PRIORITY", ""), code="MSG_INCOMPLETE", key="DG.PRIORITY")
        return
    quoted = '"' + value + '"'
    key = "DG.REGJOB.NSUBJOBS"
    code = "TOO_LONG" if len(value) > 512 else "BAD_VALUE"
    expect_error(replace_field(SAMPLE_LINES["RegJob"], key, quoted), code=code, key=key)
    if " " not in value:
        expect_error(replace_field(BASE, "DG.PRIORITY", value), code=code, key="DG.PRIORITY")


def test_int_limits_accepted():
    for v in (2**63 - 1, -2**63, 0, -1, 5):
        line = replace_field(SAMPLE_LINES["RegJob"], "DG.REGJOB.NSUBJOBS", f'"{v}"')
        assert ulm.parse(line).nsubjobs == v
    assert ulm.parse(replace_field(BASE, "DG.PRIORITY", "+16")).priority == 16


@pytest.mark.parametrize("value", ["-1", "65536", "http", "1.0"])
def test_bad_port(value):
    line = replace_field(SAMPLE_LINES["Listener"], "DG.LISTENER.SVC_PORT", f'"{value}"')
    expect_error(line, code="BAD_VALUE", key="DG.LISTENER.SVC_PORT")


@pytest.mark.parametrize("value", ["2024", "20241301120000.000000", "20240301120000.1234567",
                                   "x0240301120000.000000", "20240230120000"])
def test_bad_date(value):
    expect_error(replace_field(BASE, "DATE", value), code="BAD_VALUE", key="DATE")
    line = replace_field(SAMPLE_LINES["CREAMStatus"], "DG.CREAMSTATUS.ORIG_TIMESTAMP", f'"{value}"')
    expect_error(line, code="BAD_VALUE", key="DG.CREAMSTATUS.ORIG_TIMESTAMP")


@pytest.mark.parametrize("value", ['"not a job id"', '"http://lb.example.org/x"', '"https://h:x/u"',
                                   '"https://h/"', "https://h:x/u"])
def test_bad_jobid(value):
    err = expect_error(replace_field(BASE, "DG.JOBID", value), code="BAD_JOBID", key="DG.JOBID")
    assert isinstance(err, LBFormatError)
    line = replace_field(SAMPLE_LINES["RegJob"], "DG.REGJOB.PARENT", value)
    expect_error(line, code="BAD_JOBID", key="DG.REGJOB.PARENT")


def test_long_jobid_accepted():
    jid = JobId("lb.example.org", 9000, "u" * 2000, "i" * 1000)
    line = replace_field(BASE, "DG.JOBID", f'"{jid}"')
    assert ulm.parse(line).job_id == jid


def test_duplicate_keys():
    expect_error(BASE + ' HOST="other"', code="KEY_DUPLICITY", key="HOST")
    expect_error(BASE + ' host="other"', code="KEY_DUPLICITY", key="HOST")
    expect_error(BASE + ' DG.RUNNING.NODE="n2"', code="KEY_DUPLICITY", key="DG.RUNNING.NODE")
    expect_error(BASE + ' DG.EVNT="Running"', code="KEY_DUPLICITY", key="DG.EVNT")
    expect_error(BASE + " DATE=20240301120000.000000", code="KEY_DUPLICITY", key="DATE")
    # a key of another event type, even given twice, is a duplicate first
    expect_error(BASE + ' DG.REGJOB.NS="a" DG.REGJOB.NS="b"', code="KEY_DUPLICITY", key="DG.REGJOB.NS")
    # unknown keys may repeat
    assert ulm.parse(BASE + " PROG=again DG.LLLID=1 DG.LLLID=2") == ulm.parse(BASE)


def test_key_of_another_event_type():
    expect_error(BASE + ' DG.REGJOB.NS="wms"', code="KEY_MISUSE", key="DG.REGJOB.NS")
    expect_error(BASE + ' dg.done.exit_code="0"', code="KEY_MISUSE", key="DG.DONE.EXIT_CODE")
    # even an empty value of a foreign key is a misuse
    expect_error(BASE + ' DG.REGJOB.PARENT=""', code="KEY_MISUSE", key="DG.REGJOB.PARENT")


def test_field_count_limit():
    base = EXAMPLE_RUNNING  # no blanks inside its values
    n = len(base.split(" "))
    at_limit = base + "".join(f" X{i}=1" for i in range(ulm.MAX_FIELDS - n))
    assert len(at_limit.split(" ")) == ulm.MAX_FIELDS
    assert ulm.parse(at_limit) == ulm.parse(base)
    expect_error(at_limit + " X=1", code="TOO_LONG")
    expect_error(base + " X=1" * 500, code="TOO_LONG")


def test_separator_limit():
    """At most 100 blanks outside quotes; leading blanks do not count, trailing ones do."""
    base = EXAMPLE_RUNNING
    n = base.count(" ")  # every blank of this record is a separator outside quotes
    assert n < ulm.MAX_SEPARATORS
    inner = base.replace(" DG.EVNT=", " " * (ulm.MAX_SEPARATORS - n + 1) + "DG.EVNT=")
    assert inner.count(" ") == ulm.MAX_SEPARATORS
    assert ulm.parse(inner) == ulm.parse(base)
    expect_error(inner.replace(" DG.EVNT=", "  DG.EVNT="), code="TOO_LONG")
    assert ulm.parse(" " * 500 + base) == ulm.parse(base)
    assert ulm.parse(base + " " * (ulm.MAX_SEPARATORS - n) + "\n") == ulm.parse(base)
    expect_error(base + " " * (ulm.MAX_SEPARATORS - n + 1) + "\n", code="TOO_LONG")
    expect_error(base + "\t" * (ulm.MAX_SEPARATORS - n + 1), code="TOO_LONG")
    # blanks inside quoted values do not count
    assert ulm.parse(replace_field(base, "DG.RUNNING.NODE", '"' + " " * 1000 + '"')).node == " " * 1000


def test_max_length():
    line = BASE + "\n"
    assert ulm.parse(line, max_length=len(line)) == ulm.parse(BASE)
    err = expect_error(line, code="TOO_LONG", max_length=len(line) - 1)
    assert str(len(line)) in str(err)
    # parse_bytes applies the limit to bytes
    wide = replace_field(BASE, "DG.RUNNING.NODE", '"' + "\u017e" * 50 + '"')
    data = wide.encode()
    assert ulm.parse_bytes(data, max_length=len(data)).node == "\u017e" * 50
    with pytest.raises(ULMError) as info:
        ulm.parse_bytes(data, max_length=len(data) - 1)
    assert info.value.code == "TOO_LONG"
    assert ulm.DEFAULT_MAX_LENGTH >= 2_000_000  # the real streams hold 1.8 MB records


def test_oversized_non_text_value():
    line = replace_field(SAMPLE_LINES["Listener"], "DG.LISTENER.SVC_PORT", '"' + "1" * 1000 + '"')
    expect_error(line, code="TOO_LONG", key="DG.LISTENER.SVC_PORT")


def test_nul_bytes():
    for i in (0, 10, len(BASE) // 2, len(BASE) - 2, len(BASE)):
        line = BASE[:i] + "\0" + BASE[i:]
        err = expect_error(line, code="BROKEN_ULM")
        assert err.position == i
        with pytest.raises(ULMError):
            ulm.parse_bytes(line.encode())
    # the local logger payload ends with LF and NUL (formats.md §4.2): the caller strips it
    with pytest.raises(ULMError):
        ulm.parse(BASE + "\n\0")


def test_non_text_input():
    for value in (None, 5, b"DATE=1", ["x"]):
        with pytest.raises(ULMError):
            ulm.parse(value)
    for value in (None, 5, "DATE=1"):
        with pytest.raises(ULMError):
            ulm.parse_bytes(value)


def test_undecodable_bytes():
    data = replace_field(BASE, "DG.RUNNING.NODE", '"\udcff\udcfe"').encode("utf-8", "surrogateescape")
    assert b'"\xff\xfe"' in data
    ev = ulm.parse_bytes(data)
    assert ev.node == "\udcff\udcfe"
    assert ulm.format_bytes(ev) == data + b"\n"
    assert ulm.parse_bytes(bytearray(data)) == ev
    assert ulm.parse_bytes(memoryview(data)) == ev


def test_truncated_real_lines():
    """A record cut anywhere either parses or raises LBFormatError, never anything else."""
    lines = [EXAMPLE_RUNNING, EXAMPLE_REGJOB] + SHORT_LINES[::150]
    parsed = failed = 0
    for line in lines:
        for cut in range(len(line) + 1):
            try:
                ulm.parse(line[:cut], require_job_id=False)
                parsed += 1
            except LBFormatError:
                failed += 1
            try:
                ulm.parse_bytes(line.encode()[:cut], require_job_id=False)
            except LBFormatError:
                pass
    assert parsed and failed


def test_truncated_lines_report_incomplete_or_broken():
    line = EXAMPLE_RUNNING
    # cut just before the closing quote of the last value: unterminated quote
    expect_error(line[:-1], code="BROKEN_ULM", key="DG.RUNNING.NODE")
    # cut at a field boundary: the last field is missing
    expect_error(line[:line.index(" DG.RUNNING.NODE")], code="MSG_INCOMPLETE", key="DG.RUNNING.NODE")


# --- fuzzing ----------------------------------------------------------------------------------

def _accepts_or_lbformaterror(parse, data):
    try:
        ev = parse(data, require_job_id=False)
    except LBFormatError:
        return None
    # anything accepted can be written and read back unchanged
    assert ulm.parse(ulm.format(ev), require_job_id=False) == ev
    return ev


@settings(max_examples=1500, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_text(text):
    _accepts_or_lbformaterror(ulm.parse, text)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes(data):
    _accepts_or_lbformaterror(ulm.parse_bytes, data)


_NASTY = st.sampled_from(['"', "\\", "=", " ", "\t", "\n", "\r", "\0", ".", "x", "1", "-",
                          "\u017e", "\udcff", "\x7f"]) | st.characters()
_mutation = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1),
                      st.text(_NASTY, min_size=1, max_size=3))


def _mutate(line, mutations):
    for op, where, chars in mutations:
        i = int(where * len(line))
        if op == "insert":
            line = line[:i] + chars + line[i:]
        elif op == "delete":
            line = line[:i] + line[i + len(chars):]
        else:
            line = line[:i] + chars + line[i + len(chars):]
    return line


_real_or_sample = st.sampled_from([EXAMPLE_RUNNING, EXAMPLE_REGJOB] + SHORT_LINES[::10]
                                  + list(SAMPLE_LINES.values()))


@settings(max_examples=2500, deadline=None)
@given(_real_or_sample, st.lists(_mutation, min_size=1, max_size=4))
def test_fuzz_mutated_real_lines(line, mutations):
    mutated = _mutate(line, mutations)
    _accepts_or_lbformaterror(ulm.parse, mutated)
    _accepts_or_lbformaterror(ulm.parse_bytes, mutated.encode("utf-8", "surrogatepass"))


_SOUP_KEYS = sorted({a.ulm_key for s in EVENT_SPECS for a in s.attrs} | {h.ulm_key for h in HEADER}
                    | {"DG.EVNT", "DG.TYPE", "PROG", "DG.ARRIVED"})
_SOUP_VALUES = ['""', '"x"', '"0"', '"-1"', '"Running"', '"RegJob"', '"LRMS"', '"notification"',
                '"OK"', "0", "x", '"' + JOBID + '"', "20240301120000.000500", '"a=b,c=d"']


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_SOUP_KEYS), st.sampled_from(_SOUP_VALUES)), max_size=15))
def test_fuzz_field_soup(fields):
    """Random mixtures of known keys and plausible values: valid syntax, arbitrary semantics."""
    line = " ".join(f"{k}={v}" for k, v in fields)
    _accepts_or_lbformaterror(ulm.parse, line)


def test_notification_record_round_trips():
    """A notification record (DG.TYPE, no DG.EVNT) is written back in the same form,
    with only the job fields it had (found by test_fuzz_field_soup)."""
    line = ('DATE=20240301120002.100000 HOST="lb.example.org" PROG=edg-wms LVL=SYSTEM '
            'DG.SOURCE="Undefined" DG.TYPE="notification" DG.NOTIFICATION.DEST_PORT="40123" '
            'DG.SEQCODE="" DG.NOTIFICATION.OWNER="/CN=Alice"')
    ev = ulm.parse(line)
    text = ulm.format(ev)
    assert 'DG.TYPE="notification"' in text and "DG.EVNT" not in text and "DG.JOBID" not in text
    assert ulm.parse(text) == ev
