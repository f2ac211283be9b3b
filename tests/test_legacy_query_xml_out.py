"""Answers of the legacy query protocol: jobStat, events, user jobs, sequence codes,
indexed attributes and error documents (formats.md §0.4, §7.4-7.12).

Statuses come from ``lbtx replay`` of the public scenarios. Our own output is read
back with the standard library's parser (it is trusted here) to check the fields.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings, strategies as st

from conftest import SCENARIOS
from lbtx.acceptance import thorough_histogram
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.escaping import escape, to_wire, unescape, unescape_entities
from lbtx.protocols.legacy_query.event_xml import EVENT_FIELD_ORDER
from lbtx.protocols.legacy_query.jobstat import JobView, jobstat_element
from lbtx.protocols.legacy_query.messages import StatusFlag as F
from lbtx.protocols.legacy_query.xml_out import (error_document, indexed_attrs_result,
                                                 query_events_result, query_jobs_result,
                                                 sequence_code_result, user_jobs_result)
from lbtx.query.conditions import Attr
from lbtx.schema import STATUS_FIELDS, JobState
from lbtx.status import JobStatus
from lbtx.timeval import NULL_TIME, Timeval

from legacy_query_support import ReplayBackend, replay_scenario

SCENARIO_FILES = sorted(SCENARIOS.glob("*.json"))
STATES = [JobState(i).text for i in range(12)]


def xml(text: str) -> ET.Element:
    return ET.fromstring(to_wire(text).decode("iso-8859-1"))


def fields(el: ET.Element) -> dict[str, str]:
    return {c.tag: unescape(c.text or "") for c in el if len(c) == 0}


def _expected(f, value):
    """What the element text of a scalar status field must be, or None (left out)."""
    if value is None or f.name in ("state", "user_fqans", "jdl_classad", "history"):
        return None
    if f.type == "bool":
        return "1" if value else None
    if f.type == "timeval":
        return None if value == NULL_TIME else f"{value.sec}.{value.usec:06d}"
    if f.type == "int":
        return None if int(value) == f.null else str(int(value))
    if f.type == "taglist":
        return ",".join(f"{k}={v}" for k, v in value) or None
    if f.type in ("strlist", "intlist", "stslist"):
        return None
    return str(value)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_jobstat_of_every_scenario_job(path):
    """Every job of every scenario: name, every scalar field, per-state times."""
    replay = replay_scenario(path)
    for rec in replay.jobs():
        st_ = rec.status
        el = xml(jobstat_element(st_, F.CLASSADS))
        assert el.tag == "jobStat" and el.get("name") == st_.state.text
        got = fields(el)
        for f in STATUS_FIELDS:
            if f.name in ("user_tags", "children", "children_hist", "children_states",
                          "possible_destinations", "possible_ce_nodes", "stateEnterTimes"):
                continue
            want = _expected(f, getattr(st_, f.py_name))
            assert got.get(f.name) == want, (rec.job_id, f.name)
        assert got["jobId"] == str(rec.job_id)
        times = el.find("stateEnterTimes")
        assert [c.tag for c in times] == STATES
        assert [int(c.text) for c in times] == [t or 0 for t in st_.state_enter_times]
        order = [c.tag for c in el]
        structured = [t for t in order if t in ("possible_destinations", "possible_ce_nodes",
                                                "children", "children_hist", "user_tags",
                                                "stateEnterTimes")]
        assert structured == sorted(structured, key=["possible_destinations",
                                                     "possible_ce_nodes", "children",
                                                     "children_hist", "user_tags",
                                                     "stateEnterTimes"].index)
        assert order[-1] == "stateEnterTimes"


def _job(path_stem: str):
    path = next(p for p in SCENARIO_FILES if p.stem.startswith(path_stem))
    return replay_scenario(path)


def test_key_fields_of_a_simple_job():
    """P01: a simple job's fields are written as §7.4 encodes them."""
    replay = _job("P01")
    rec = replay.jobs()[0]
    got = fields(xml(jobstat_element(rec.status, F.NONE)))
    st_ = rec.status
    assert got["owner"] == rec.owner
    assert got["jobtype"] == "0"  # numeric enumeration
    assert got["stateEnterTime"] == "%d.%06d" % st_.state_enter_time
    assert "jdl" not in got and "matched_jdl" not in got  # no classadd
    if st_.done_code is not None:
        assert got["done_code"] == str(int(st_.done_code))
    for name in ("resubmitted", "cancelling", "subjob_failed"):
        assert got.get(name) in (None, "1")


def test_user_tags():
    """P09: user tags as <tag name="...">value</tag>."""
    rec = _job("P09").jobs()[0]
    tags = xml(jobstat_element(rec.status)).find("user_tags")
    assert {unescape(t.get("name")): unescape(t.text) for t in tags} == rec.status.user_tags


@pytest.mark.parametrize("stem", ["P10", "P11"])
def test_children_histograms_and_states(stem):
    """Collections and DAGs: children ids, fast (stored) and thorough (counted)
    histograms, children states, one element per state code."""
    replay = _job(stem)
    backend = ReplayBackend(replay, noauth=True)
    parent = next(r for r in replay.jobs() if r.children)
    children = list(parent.children)
    assert "children" not in [c.tag for c in xml(jobstat_element(backend.view(parent, F.NONE)))]
    el = xml(jobstat_element(backend.view(parent, F.CHILDREN | F.CHILDHIST_FAST), F.CHILDREN
                             | F.CHILDHIST_FAST))
    assert [c.text for c in el.find("children")] == [str(c) for c in children]
    hist = el.find("children_hist")
    assert [c.tag for c in hist] == STATES
    assert [int(c.text) for c in hist] == parent.status.children_hist
    flags = F.CHILDHIST_THOROUGH | F.CHILDSTAT
    el = xml(jobstat_element(backend.view(parent, flags), flags))
    thorough = [int(c.text) for c in el.find("children_hist")]
    assert thorough == thorough_histogram(replay.table, parent)
    assert sum(thorough) == len(children)
    states = el.find("children_states")
    assert [s.get("name") for s in states] == [replay.table.get(c).status.state.text
                                               for c in children]
    assert [fields(s)["jobId"] for s in states] == [str(c) for c in children]


def test_history_is_a_json_array_of_the_events():
    """The history flag adds the job's events as JSON (§7.10); [] when there are none."""
    replay = _job("P04")
    rec = replay.jobs()[0]
    backend = ReplayBackend(replay, noauth=True)
    got = fields(xml(jobstat_element(backend.view(rec, F.HISTORY), F.HISTORY)))
    history = json.loads(got["history"])
    events = replay.table.events[rec.job_id]
    assert [h["type"] for h in history] == [e.type_name for e in events]
    assert list(history[0])[:len(EVENT_FIELD_ORDER) + 1] == ["type", *EVENT_FIELD_ORDER]
    assert history[0]["jobId"] == str(rec.job_id)
    assert history[0]["timestamp"] == events[0].timestamp.to_ulm()
    assert history[0]["source"] == events[0].source.text
    empty = fields(xml(jobstat_element(JobView(rec.status, history=[]), F.HISTORY)))
    assert empty["history"] == "[]"
    assert "history" not in fields(xml(jobstat_element(rec.status)))


def test_escaping_in_jobstat_and_error_attributes():
    """Markup, quotes, %, control characters and non-ASCII text survive (§0.4)."""
    reason = "a<b>&\"c'%\n\x01 čau\udcff"
    st_ = JobStatus(state=JobState.DONE, job_id=JobId.parse("https://h:9000/x"), reason=reason)
    text = jobstat_element(st_, error=(2, 'no "match" & <more>'))
    raw = to_wire(text)
    assert b"&lt;b&gt;&amp;&quot;c&apos;%25%0a%01 " in raw
    el = xml(text)
    assert fields(el)["reason"] == reason
    assert (el.get("code"), unescape(el.get("desc"))) == ("2", 'no "match" & <more>')


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_escape_round_trip(text):
    """escape then (entity, %xx) unescape gives the text back, byte for byte."""
    if any(0xD800 <= ord(c) <= 0xDFFF and not 0xDC80 <= ord(c) <= 0xDCFF for c in text):
        return  # lone surrogates other than surrogateescape's do not occur in our texts
    esc = escape(text)
    assert all(ord(c) < 256 for c in esc)
    assert not any((ord(c) & 0x7F) < 0x20 for c in esc)
    assert unescape_entities(esc) == text


def test_unescape_keeps_other_percent_sequences():
    """%xx is decoded only for control bytes and % itself."""
    assert unescape("%41%2f%zz%25%0A%9f") == "%41%2f%zz%\n" + "\udc9f"


def test_query_jobs_result_forms():
    """States, no_states (empty Unknown jobStat) and no_jobs rows; code/desc on error."""
    rec = _job("P01").jobs()[0]
    doc = xml(query_jobs_result([(rec.job_id, JobView(rec.status))]))
    (job,) = doc.findall("edg_wll_Job")
    assert job.find("jobId").text == str(rec.job_id)
    assert job.find("jobStat").get("name") == rec.status.state.text
    doc = xml(query_jobs_result([(rec.job_id, None), (None, JobView(rec.status))],
                                error=(7, "Query result size limit exceeded")))
    first, second = doc.findall("edg_wll_Job")
    assert first.find("jobStat").get("name") == "Unknown" and len(first.find("jobStat")) == 0
    assert second.find("jobId") is None
    assert (doc.get("code"), doc.get("desc")) == ("7", "Query result size limit exceeded")


def test_query_events_result():
    """Events: common fields in §7.8 order, sources by name, enumerations numeric."""
    replay = _job("P01")
    rec = replay.jobs()[0]
    events = replay.table.events[rec.job_id]
    doc = xml(query_events_result(events))
    els = doc.findall("edg_wll_Event")
    assert [e.get("name") for e in els] == [e.type_name for e in events]
    for ev, el in zip(events, els):
        tags = [c.tag for c in el]
        common = [t for t in tags if t in EVENT_FIELD_ORDER]
        assert common == [t for t in EVENT_FIELD_ORDER if t in common]
        assert tags[:len(common)] == common
        got = fields(el)
        assert got["timestamp"] == "%d.%06d" % ev.timestamp
        assert got["level"] == str(int(ev.level))
        assert got["source"] == ev.source.text
        assert got["jobId"] == str(ev.job_id)
        assert got["priority"] == "0"
        for spec in ev.attr_specs:
            value = getattr(ev, spec.py_name)
            if spec.enum is not None and spec.type != "logsrc" and int(value) != spec.null:
                assert got[spec.name] == str(int(value))


def test_user_jobs_sequence_code_indexed_attrs_and_errors():
    ids = [JobId.parse("https://lb.example.org:9000/a"), JobId.parse("https://lb.example.org:9000/b")]
    doc = xml(user_jobs_result(ids))
    assert doc.tag == "edg_wll_UserJobs" and [j.text for j in doc] == [str(i) for i in ids]
    doc = xml(sequence_code_result("UI=000002:NS=0000000004"))
    assert doc.find("sequence_code").text == "UI=000002:NS=0000000004"
    doc = xml(indexed_attrs_result([[(Attr.OWNER, None)], [(Attr.TIME, "Running")],
                                    [(Attr.USERTAG, "color"), (Attr.NETWORK_SERVER, None)],
                                    [(Attr.JOBTYPE, None)]]))
    recs = [[fields(q) for q in i.findall("QueryRec")] for i in doc.findall("index")]
    assert recs == [[{"attribute": "EDG_WLL_QUERY_ATTR_OWNER"}],
                    [{"attribute": "EDG_WLL_QUERY_ATTR_TIME", "state": "Running"}],
                    [{"attribute": "EDG_WLL_QUERY_ATTR_USERTAG", "name": "color"},
                     {"attribute": "EDG_WLL_QUERY_ATTR_NETWORK_SERVER"}],
                    [{"attribute": "EDG_WLL_QUERY_ATTR_JOB_TYPE"}]]
    doc = xml(error_document("query_events", (2, "no matching events found")))
    assert (doc.tag, doc.get("code"), doc.get("desc"), len(doc)) == (
        "edg_wll_QueryEventsResult", "2", "no matching events found", 0)
    assert to_wire(error_document("query_jobs", None)) == (
        b"<edg_wll_QueryJobsResult>\r\n</edg_wll_QueryJobsResult>\r\n")


def test_timevals_keep_six_digits():
    st_ = JobStatus(state=JobState.RUNNING, state_enter_time=Timeval(1709294400, 500))
    assert fields(xml(jobstat_element(st_)))["stateEnterTime"] == "1709294400.000500"
