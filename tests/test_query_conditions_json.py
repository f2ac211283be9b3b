"""Query conditions as JSON documents: typed values, round trips, malformed
documents and the size limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.query.conditions_json import (MAX_CONDITIONS, MAX_DISJUNCTIONS,
                                        ConditionDocumentError, condition_budget, parse_query,
                                        query_to_json)
from lbtx.schema import EVENTS_BY_NAME, JobState, Source, StatJobtype

JOB = "https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg"
C = Condition


def test_typed_values():
    """Each attribute gets the value type the condition model expects."""
    query = parse_query([
        [{"attr": "jobid", "value": JOB}],
        [{"attr": "owner", "value": None}, {"attr": "owner", "op": "unequal", "value": "/CN=x"}],
        [{"attr": "status", "value": "Running"}, {"attr": "status", "value": 9}],
        [{"attr": "jobtype", "value": "DAG"}],
        [{"attr": "time", "state": "running", "op": "within", "value": 10,
          "value2": "2012-03-14T10:00:00Z"}],
        [{"attr": "usertag", "name": "Colour", "value": "red"}],
        [{"attr": "exitcode", "op": "greater", "value": 0}],
        [{"attr": "status", "op": "changed"}],
    ])
    assert query == (
        (C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB)),),
        (C(Attr.OWNER, Op.EQUAL, None), C(Attr.OWNER, Op.UNEQUAL, "/CN=x")),
        (C(Attr.STATUS, Op.EQUAL, JobState.RUNNING), C(Attr.STATUS, Op.EQUAL, JobState(9))),
        (C(Attr.JOBTYPE, Op.EQUAL, StatJobtype.from_text("DAG")),),
        (C(Attr.TIME, Op.WITHIN, 10, 1331719200, name="Running"),),
        (C(Attr.USERTAG, Op.EQUAL, "red", name="colour"),),
        (C(Attr.EXITCODE, Op.GREATER, 0),),
        (C(Attr.STATUS, Op.CHANGED),),
    )


def test_event_values():
    query = parse_query([[{"attr": "type", "value": "Running"}, {"attr": "source", "value": "LRMS"},
                          {"attr": "level", "op": "less", "value": 5}]], events=True)
    ors = query[0]
    assert ors[0].value == EVENTS_BY_NAME["Running"].code
    assert ors[1].value == Source.LRMS and ors[2].value == 5
    assert parse_query([[{"attr": "source", "value": int(Source.LRMS)}]], events=True)[0][0].value \
        == Source.LRMS


def test_round_trip():
    query = (
        (C(Attr.JOBID, Op.EQUAL, JobId.parse(JOB)),),
        (C(Attr.OWNER, Op.EQUAL, None),),
        (C(Attr.STATUS, Op.WITHIN, JobState.SUBMITTED, JobState.DONE),),
        (C(Attr.TIME, Op.LESS, 100, name="Done"),),
        (C(Attr.USERTAG, Op.UNEQUAL, "v", name="t"),),
        (C(Attr.DESTINATION, Op.CHANGED),),
    )
    assert parse_query(query_to_json(query)) == query
    events = ((C(Attr.EVENT_TYPE, Op.EQUAL, 6), C(Attr.SOURCE, Op.EQUAL, Source.LRMS)),)
    assert parse_query(query_to_json(events), events=True) == events


@pytest.mark.parametrize("doc,words", [
    ({}, "list of disjunctions"),
    ([{}], "disjunction [0]"),
    ([[]], "disjunction [0]"),
    ([[1]], "is an object"),
    ([[{"attr": "colour", "value": 1}]], "unknown attribute"),
    ([[{"attr": "level", "value": 1}]], "not allowed here"),
    ([[{"attr": "status", "op": "like", "value": "Done"}]], "unknown operator"),
    ([[{"attr": "status", "value": "Sleeping"}]], "JobState name"),
    ([[{"attr": "status", "value": 99}]], "JobState code"),
    ([[{"attr": "jobid", "value": "not a job"}]], "not a job id"),
    ([[{"attr": "jobid", "value": 7}]], "not a job id"),
    ([[{"attr": "exitcode", "value": "0"}]], "not an integer"),
    ([[{"attr": "exitcode", "value": True}]], "not an integer"),
    ([[{"attr": "exitcode", "value": 2**70}]], "out of range"),
    ([[{"attr": "exitcode"}]], "no value"),
    ([[{"attr": "exitcode", "value": 1, "value2": 2}]], "only 'within'"),
    ([[{"attr": "exitcode", "op": "within", "value": 1}]], "needs 'value2'"),
    ([[{"attr": "time", "value": 1}]], "name of a state"),
    ([[{"attr": "usertag", "value": "x"}]], "needs a 'name'"),
    ([[{"attr": "status", "value": "Done", "name": "x"}]], "takes no name"),
    ([[{"attr": "owner", "value": 5}]], "subject or null"),
    ([[{"attr": "location", "value": 5}]], "takes text"),
    ([[{"attr": "lastupdatetime", "value": "yesterday"}]], "not a time"),
    ([[{"attr": "status", "value": "Done", "extra": 1}]], "unknown key"),
    ([[{"attr": "chkpt_tag", "value": "x"}]], "not allowed here"),
])
def test_malformed_documents(doc, words):
    with pytest.raises(ConditionDocumentError) as e:
        parse_query(doc)
    assert words in e.value.reason and e.value.malformed


def test_model_refusals_are_not_malformed():
    """Operators an attribute does not take are refused by the model (EINVAL)."""
    with pytest.raises(ConditionDocumentError) as e:
        parse_query([[{"attr": "owner", "op": "less", "value": "/CN=x"}]])
    assert not e.value.malformed and not e.value.too_big


def test_limits():
    """Too many disjunctions or conditions (shared over a document) are too big."""
    cond = {"attr": "exitcode", "value": 0}
    with pytest.raises(ConditionDocumentError) as e:
        parse_query([[cond]] * (MAX_DISJUNCTIONS + 1))
    assert e.value.too_big
    with pytest.raises(ConditionDocumentError) as e:
        parse_query([[cond] * (MAX_CONDITIONS + 1)])
    assert e.value.too_big
    budget = condition_budget(10)
    parse_query([[cond] * 6], counter=budget)
    with pytest.raises(ConditionDocumentError) as e:
        parse_query([[{"attr": "level", "value": 0}] * 5], events=True, counter=budget)
    assert e.value.too_big


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(["attr", "op", "value", "value2", "name",
                                                        "state", "x"]), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_is_a_query_or_a_document_error(doc):
    """Whatever the document, the parser answers with a query or ConditionDocumentError."""
    try:
        parse_query(doc)
    except ConditionDocumentError:
        pass
