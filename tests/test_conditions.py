"""The query condition model: nesting rule, operator limits, evaluation on a status."""

from __future__ import annotations

import pytest

from lbtx.jobid import JobId
from lbtx.query.conditions import (Attr, Condition, Op, QueryError, check_job_query,
                                   condition_matches, job_matches)
from lbtx.schema import JobState, StatDoneCode
from lbtx.status import JobStatus
from lbtx.timeval import Timeval

J = JobId.parse("https://lb.example.org:9000/conditionsTestJob00001")
ALICE = "/DC=org/DC=example/CN=Alice"


def status(**kw):
    times = [0] * 12
    times[JobState.RUNNING] = 1000
    base = dict(job_id=J, owner=ALICE, state=JobState.RUNNING, destination="ce1",
                user_tags={"color": "red"}, state_enter_times=times, exit_code=3,
                done_code=StatDoneCode.FAILED, last_update_time=Timeval(2000, 5),
                state_enter_time=Timeval(1000, 0))
    base.update(kw)
    return JobStatus(**base)


def test_disjunction_of_different_attributes_is_refused():
    """§8.3: all members of one job disjunction use the same attribute."""
    with pytest.raises(QueryError, match="same attribute"):
        check_job_query([[Condition(Attr.STATUS, Op.EQUAL, JobState.RUNNING),
                          Condition(Attr.DESTINATION, Op.EQUAL, "x")]])


def test_usertag_disjunction_needs_same_tag():
    with pytest.raises(QueryError):
        check_job_query([[Condition(Attr.USERTAG, Op.EQUAL, "a", name="x"),
                          Condition(Attr.USERTAG, Op.EQUAL, "a", name="y")]])
    check_job_query([[Condition(Attr.USERTAG, Op.EQUAL, "a", name="X"),
                      Condition(Attr.USERTAG, Op.EQUAL, "b", name="x")]])


def test_empty_query_is_unrestricted_and_refused():
    with pytest.raises(QueryError, match="unrestricted"):
        check_job_query([])


def test_event_attribute_in_job_query_refused():
    with pytest.raises(QueryError):
        check_job_query([[Condition(Attr.HOST, Op.EQUAL, "h")]])


@pytest.mark.parametrize("attr", [Attr.OWNER, Attr.LOCATION, Attr.DESTINATION, Attr.JOBTYPE])
def test_equality_only_attributes(attr):
    with pytest.raises(QueryError):
        Condition(attr, Op.LESS, "x")


def test_within_needs_two_bounds_and_time_needs_state():
    with pytest.raises(QueryError):
        Condition(Attr.EXITCODE, Op.WITHIN, 1)
    with pytest.raises(QueryError):
        Condition(Attr.TIME, Op.GREATER, 5)


@pytest.mark.parametrize("cond,expected", [
    (Condition(Attr.STATUS, Op.EQUAL, JobState.RUNNING), True),
    (Condition(Attr.STATUS, Op.LESS, JobState.RUNNING), False),
    (Condition(Attr.STATUS, Op.GREATER, JobState.SUBMITTED), True),
    (Condition(Attr.OWNER, Op.EQUAL, ALICE.upper() + "/CN=proxy"), True),
    (Condition(Attr.OWNER, Op.UNEQUAL, ALICE), False),
    (Condition(Attr.DESTINATION, Op.UNEQUAL, "ce2"), True),
    (Condition(Attr.USERTAG, Op.EQUAL, "red", name="COLOR"), True),
    (Condition(Attr.USERTAG, Op.EQUAL, "red", name="shape"), False),
    (Condition(Attr.TIME, Op.WITHIN, 999, 1001, name="Running"), True),
    (Condition(Attr.TIME, Op.GREATER, 0, name="Done"), False),
    (Condition(Attr.EXITCODE, Op.WITHIN, 1, 3), True),
    (Condition(Attr.DONECODE, Op.EQUAL, 1), True),
    (Condition(Attr.LASTUPDATETIME, Op.GREATER, 1999), True),
    (Condition(Attr.JOBID, Op.EQUAL, J), True),
    (Condition(Attr.PARENT, Op.EQUAL, J), False),
])
def test_condition_evaluation(cond, expected):
    assert condition_matches(status(), cond) is expected


def test_conjunction_of_disjunctions():
    q = check_job_query([
        [Condition(Attr.STATUS, Op.EQUAL, JobState.DONE), Condition(Attr.STATUS, Op.EQUAL, JobState.RUNNING)],
        [Condition(Attr.DESTINATION, Op.EQUAL, "ce1")],
    ])
    assert job_matches(status(), q)
    assert not job_matches(status(destination="ce9"), q)


def test_unresolved_caller_owner_is_an_error():
    with pytest.raises(QueryError):
        condition_matches(status(), Condition(Attr.OWNER, Op.EQUAL, None))
