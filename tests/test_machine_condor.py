"""The Condor machine: state-machines.md §3.3, §7 (every table row), D2, D3, P13."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from conftest import SCENARIOS
from lbtx.machines.condor import MACHINE, condor_source
from lbtx.machines.interfaces import IJobStateMachine
from lbtx.schema import ENUMS, JobState, RegJobJobtype, Source, StatJobtype
from lbtx.seqcode import CondorSeqCode
from lbtx.status import JobStatus
from machine_support import BASE_TIME, event, replay, run

REJECT = ENUMS["CondorRejectStatusCode"]
EV_CODES = {"RegJob": 17, "CondorMatch": 201, "CondorReject": 202, "CondorShadowStarted": 203,
            "CondorShadowExited": 204, "CondorStarterStarted": 205, "CondorStarterExited": 206,
            "CondorResourceUsage": 207, "CondorError": 208, "UserTag": 14}


def code(minute: int, src: str = "C", pos: int = 0, ev_code: int = 201) -> str:
    return CondorSeqCode(f"201203201400{minute:02d}", f"{pos:010d}", ev_code, src).format()


def ev(type_name, minute, src="C", pos=0, t=None, **attrs):
    """A Condor event logged at Condor time 14:00:<minute> by daemon ``src``."""
    seq = code(minute, src, pos, EV_CODES.get(type_name, 201))
    return event(type_name, source=Source.LRMS, seq=seq, t=minute if t is None else t, **attrs)


def regjob(minute=0, **attrs):
    attrs.setdefault("jdl", "[ Universe = \"vanilla\" ]")
    return ev("RegJob", minute, ns="submit.example.org", jobtype=RegJobJobtype.CONDOR, **attrs)


@pytest.fixture
def reg() -> JobStatus:
    return run(MACHINE, JobStatus(owner="/CN=test"), regjob())


def later(st, *events):
    return run(MACHINE, st, *events)


def test_machine_provides_the_interface():
    assert verifyObject(IJobStateMachine, MACHINE)
    assert MACHINE.name == "condor" and MACHINE.job_types == (StatJobtype.CONDOR,)


def test_source_letter_is_the_one_after_src_d3():
    assert condor_source(code(1, "s")) == "s"
    assert condor_source("TIMESTAMP=x:SRC=H:more") == "H"
    assert condor_source("no letter SRC=") is None
    assert condor_source(None) is None


# --- table rows -------------------------------------------------------------------

def test_regjob(reg):
    assert (reg.state, reg.condor_status, reg.jobtype) == (JobState.SUBMITTED, "Idle", StatJobtype.CONDOR)
    assert reg.jdl == "[ Universe = \"vanilla\" ]"
    assert reg.location == "this is CONDOR"


def test_late_regjob_replaces_jdl_even_with_none(reg):
    st = later(reg, ev("CondorMatch", 5, "N", dest_host="h"), regjob(9, jdl=None))
    assert st.state == JobState.READY  # a RegJob code always sorts first: late
    assert st.jdl is None


def test_match(reg):
    st = later(reg, ev("CondorMatch", 1, "N", owner="alice", dest_host="slot1@wn"))
    assert (st.state, st.condor_status, st.condor_dest_host) == (JobState.READY, "Idle", "slot1@wn")


def test_reject_nomatch_and_other(reg):
    st = later(reg, ev("CondorReject", 1, "N", owner="a", status_code=REJECT.OTHER))
    assert (st.state, st.condor_status, st.condor_reason) == (JobState.ABORTED, "Unexpanded", None)
    st = later(st, ev("CondorReject", 2, "N", owner="a", status_code=REJECT.NOMATCH))
    assert st.condor_reason == "No match found."


def test_rejected_job_can_be_matched_again(reg):
    st = later(reg, ev("CondorReject", 1, "N", owner="a", status_code=REJECT.NOMATCH),
               ev("CondorMatch", 2, "N", owner="a", dest_host="h"))
    assert st.state == JobState.READY  # no terminal states (§10.1 item 14)


@pytest.mark.parametrize("src,pid", [("C", 2201), ("H", 0), ("s", 0)])
def test_shadow_started_pid_only_from_schedd(reg, src, pid):
    st = later(reg, ev("CondorShadowStarted", 1, src, shadow_host="h", shadow_port=9618,
                       shadow_pid=2201))
    assert (st.state, st.condor_status, st.condor_shadow_pid) == (JobState.READY, "Idle", pid)


@pytest.mark.parametrize("src,status", [("H", 100), ("C", 0)])
def test_shadow_exited_status_only_from_shadow(reg, src, status):
    st = later(reg, ev("CondorShadowExited", 1, src, shadow_pid=1, shadow_exit_status=100))
    assert (st.state, st.condor_status, st.condor_shadow_exit_status) == (
        JobState.DONE, "Completed", status)
    assert st.done_code is None


def test_starter_started_from_startd_is_scheduled_without_data(reg):
    st = later(reg, ev("CondorStarterStarted", 1, "S", starter_pid=3300, universe="vanilla"))
    assert (st.state, st.condor_status) == (JobState.SCHEDULED, "Idle")
    assert (st.condor_starter_pid, st.condor_universe) == (0, None)


def test_starter_started_from_starter_is_running_with_data(reg):
    st = later(reg, ev("CondorStarterStarted", 1, "s", starter_pid=3302, universe="vanilla"))
    assert (st.state, st.condor_status) == (JobState.RUNNING, "Running")
    assert (st.condor_starter_pid, st.condor_universe) == (3302, "vanilla")


def test_starter_started_from_other_daemon_does_nothing(reg):
    st = later(reg, ev("CondorStarterStarted", 1, "C", starter_pid=1, universe="u"))
    assert (st.state, st.condor_status, st.condor_starter_pid) == (JobState.SUBMITTED, "Idle", 0)
    assert st.last_update_time.sec == BASE_TIME + 1  # still usable


def test_starter_exited_from_startd(reg):
    st = later(reg, ev("CondorStarterExited", 1, "S", starter_pid=5, starter_exit_status=2,
                       job_pid=6, job_exit_status=3))
    assert (st.state, st.condor_status) == (JobState.DONE, "Completed")
    assert (st.condor_starter_pid, st.condor_starter_exit_status) == (5, 2)
    assert (st.condor_job_pid, st.condor_job_exit_status) == (0, 0)


def test_starter_exited_from_starter(reg):
    st = later(reg, ev("CondorStarterExited", 1, "s", starter_pid=5, starter_exit_status=2,
                       job_pid=6, job_exit_status=3))
    assert (st.condor_starter_pid, st.condor_starter_exit_status) == (5, 0)
    assert (st.condor_job_pid, st.condor_job_exit_status) == (6, 3)
    assert st.done_code is None


@pytest.mark.parametrize("type_name,attrs", [
    ("CondorResourceUsage", {"usage": ENUMS["CondorResourceUsageUsage"].USED, "name": "cpu",
                             "quantity": 1.0, "unit": "s"}),
    ("CondorError", {"error_desc": "boom"}),
    ("UserTag", {"name": "a", "value": "b"}),
    ("Running", {"node": "wn"}),
])
def test_other_events_only_post_process(reg, type_name, attrs):
    st = later(reg, ev(type_name, 3, "C", **attrs))
    assert st.state == JobState.SUBMITTED
    assert st.condor_error_desc is None and st.user_tags is None
    assert st.last_update_time.sec == BASE_TIME + 3
    assert st.internal["last_seqcode"] == code(3, "C", 0, EV_CODES.get(type_name, 201))


# --- ordering (§3.3, D2) -------------------------------------------------------------

def test_older_timestamp_is_late_but_data_applies(reg):
    st = later(reg, ev("CondorStarterStarted", 8, "s", starter_pid=1, universe="v"),
               ev("CondorMatch", 5, "N", dest_host="slot2"))
    assert st.state == JobState.RUNNING and st.condor_dest_host == "slot2"
    assert st.last_update_time.sec == BASE_TIME + 8
    assert st.internal["last_seqcode"] == code(8, "s", 0, 205)


def test_same_timestamp_same_daemon_orders_by_position(reg):
    st = later(reg, ev("CondorMatch", 5, "N", pos=20, dest_host="h"),
               ev("CondorReject", 5, "N", pos=10, owner="a", status_code=REJECT.OTHER))
    assert st.state == JobState.READY
    st = later(st, ev("CondorReject", 5, "N", pos=20, owner="a", status_code=REJECT.OTHER))
    assert st.state == JobState.ABORTED  # equal codes are not late


def test_same_timestamp_match_log_wins_then_starter(reg):
    st = later(reg, ev("CondorMatch", 5, "m", pos=1, dest_host="h"),
               ev("CondorStarterStarted", 5, "s", pos=9, starter_pid=1))
    assert st.state == JobState.READY  # 'm' sorts after 's'
    st = later(reg, ev("CondorStarterStarted", 5, "s", pos=9, starter_pid=1),
               ev("CondorReject", 5, "N", pos=99, owner="a", status_code=REJECT.OTHER))
    assert st.state == JobState.RUNNING  # 's' sorts after others
    st = later(reg, ev("CondorReject", 5, "N", pos=99, owner="a", status_code=REJECT.OTHER),
               ev("CondorStarterStarted", 5, "s", pos=1, starter_pid=1))
    assert st.state == JobState.RUNNING


def test_same_timestamp_other_daemons_are_equal(reg):
    st = later(reg, ev("CondorStarterStarted", 5, "S", pos=9, starter_pid=1),
               ev("CondorShadowStarted", 5, "C", pos=1, shadow_host="h", shadow_port=1, shadow_pid=2))
    assert st.state == JobState.READY


def test_events_after_regjob_are_never_late_against_it():
    st = run(MACHINE, JobStatus(), regjob(30))
    st = later(st, ev("CondorMatch", 1, "N", dest_host="h"))
    assert st.state == JobState.READY


def test_unparsable_code_is_late_once_a_code_is_known(reg):
    bad = event("CondorMatch", source=Source.LRMS, seq="TIMESTAMP=short", dest_host="x")
    st = later(reg, bad)
    assert st.state == JobState.SUBMITTED and st.condor_dest_host == "x"
    assert st.internal["last_seqcode"] == code(0, "C", 0, 17)


def test_p13_condor_scenario():
    assert replay(SCENARIOS / "P13-condor-job.json", MACHINE) == []
