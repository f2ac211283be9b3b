"""The CREAM machine: state-machines.md §8 (every table row), §10.1 item 14, D4, P14;
and its data part used for WMS jobs (§4.9)."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from conftest import SCENARIOS
from lbtx.machines.cream import MACHINE, apply_data_part, c_atoi
from lbtx.machines.interfaces import IJobStateMachine
from lbtx.schema import (ENUMS, JobState, RegJobJobtype, Source, StatCreamState, StatDoneCode,
                         StatJobtype, StatJwStatus)
from lbtx.status import JobStatus
from machine_support import BASE_TIME, event, replay, run

EXE, IFACE = Source.CREAM_EXECUTOR, Source.CREAM_INTERFACE
CMD = ENUMS["CREAMStoreCommand"]
STORE = ENUMS["CREAMStoreResult"]
CALL = ENUMS["CREAMCallResult"]
CANCEL = ENUMS["CREAMCancelStatusCode"]
STATUS = ENUMS["CREAMStatusResult"]
GLITE = "UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"
OWNER = "/DC=org/CN=Alice"


def cs(text: str):
    return StatCreamState.from_text(text)


def ev(type_name, source=EXE, t=1, seq=GLITE, **attrs):
    return event(type_name, source=source, seq=seq, t=t, **attrs)


def regjob(**attrs):
    attrs.setdefault("jdl", "[ Executable = \"run.sh\" ]")
    attrs.setdefault("ns", "https://cream.example.org:8443/ce-cream/services")
    return ev("RegJob", t=0, jobtype=RegJobJobtype.CREAM, **attrs)


def status_ev(new_state, result=STATUS.DONE, t=1, **attrs):
    return ev("CREAMStatus", new_state=new_state, result=result, t=t, **attrs)


@pytest.fixture
def reg() -> JobStatus:
    return run(MACHINE, JobStatus(owner=OWNER), regjob())


def later(st, *events):
    return run(MACHINE, st, *events)


def test_machine_provides_the_interface():
    assert verifyObject(IJobStateMachine, MACHINE)
    assert MACHINE.name == "cream" and MACHINE.job_types == (StatJobtype.CREAM,)


# --- RegJob: state and data -----------------------------------------------------

def test_regjob(reg):
    assert (reg.state, reg.cream_state, reg.jobtype) == (JobState.SUBMITTED, cs("registered"),
                                                         StatJobtype.CREAM)
    ns = "https://cream.example.org:8443/ce-cream/services"
    assert (reg.cream_endpoint, reg.destination, reg.network_server) == (ns, ns, ns)
    assert reg.jdl == reg.cream_jdl == "[ Executable = \"run.sh\" ]"
    assert reg.cream_owner == OWNER
    assert reg.location == "this is CREAM"


def test_repeated_regjob_keeps_values_it_does_not_carry(reg):
    st = later(reg, regjob(jdl=None, ns=None))
    assert st.jdl == "[ Executable = \"run.sh\" ]" and st.cream_endpoint.startswith("https://")


def test_regjob_without_owner_leaves_cream_owner_unset():
    st = run(MACHINE, JobStatus(), regjob())
    assert st.cream_owner is None


# --- state part (§8.1) -------------------------------------------------------------

def test_store_cmdstart_ok_is_waiting_pending(reg):
    st = later(reg, ev("CREAMStore", IFACE, command=CMD.CMDSTART, result=STORE.START))
    assert (st.state, st.cream_state) == (JobState.SUBMITTED, cs("registered"))
    st = later(st, ev("CREAMStore", IFACE, command=CMD.CMDSTART, result=STORE.OK))
    assert (st.state, st.cream_state) == (JobState.WAITING, cs("pending"))


def test_store_suspend_and_resume(reg):
    st = later(reg, ev("CREAMStore", IFACE, command=CMD.CMDSUSPEND, result=STORE.START))
    assert st.suspended is False
    st = later(st, ev("CREAMStore", IFACE, command=CMD.CMDSUSPEND, result=STORE.OK))
    assert st.suspended is True
    st = later(st, ev("CREAMStore", IFACE, command=CMD.CMDRESUME, result=STORE.OK))
    assert st.suspended is False


def test_store_reason_when_present_whatever_the_command(reg):
    st = later(reg, ev("CREAMStore", IFACE, command=CMD.CMDPURGE, result=STORE.FAILED,
                       reason="queue full"))
    assert (st.reason, st.cream_reason) == ("queue full", "queue full")
    st = later(st, ev("CREAMStore", IFACE, command=CMD.CMDSTART, result=STORE.OK))
    assert (st.reason, st.cream_reason) == ("queue full", "queue full")


def test_call_start_to_lrms_is_scheduled_and_sets_or_unsets_reason(reg):
    st = later(reg, ev("CREAMStore", IFACE, command=CMD.CMDSTART, result=STORE.OK, reason="r"),
               ev("CREAMCall", callee=Source.LRMS, command=CMD.CMDSTART, result=CALL.OK, reason="sent"))
    assert (st.state, st.cream_state, st.reason, st.cream_reason) == (
        JobState.SCHEDULED, cs("idle"), "sent", "sent")
    st = later(st, ev("CREAMCall", callee=Source.LRMS, command=CMD.CMDSTART, result=CALL.OK))
    assert (st.reason, st.cream_reason) == (None, None)


@pytest.mark.parametrize("source,callee,result", [
    (IFACE, Source.LRMS, CALL.OK), (EXE, Source.CREAM_EXECUTOR, CALL.OK), (EXE, Source.LRMS, CALL.START),
])
def test_call_start_needs_executor_lrms_ok(reg, source, callee, result):
    st = later(reg, ev("CREAMCall", source, callee=callee, command=CMD.CMDSTART, result=result,
                       reason="x"))
    assert (st.state, st.cream_state, st.reason) == (JobState.SUBMITTED, cs("registered"), None)


def test_call_cancel_ok_sets_cancelling(reg):
    st = later(reg, ev("CREAMCall", IFACE, callee=Source.LRMS, command=CMD.CMDCANCEL,
                       result=CALL.START, reason="no"))
    assert (st.cancelling, st.cream_cancelling, st.reason) == (False, False, None)
    st = later(st, ev("CREAMCall", IFACE, callee=Source.LRMS, command=CMD.CMDCANCEL,
                      result=CALL.OK, reason="user"))
    assert (st.cancelling, st.cream_cancelling, st.reason, st.cream_reason) == (True, True, "user", "user")
    st = later(st, ev("CREAMCall", IFACE, callee=Source.LRMS, command=CMD.CMDCANCEL, result=CALL.OK))
    assert st.reason == "user" and st.state == JobState.SUBMITTED


def test_call_purge_ok_clears(reg):
    st = later(reg, ev("CREAMCall", callee=Source.LRMS, command=CMD.CMDPURGE, result=CALL.OK,
                       reason="purged by user"))
    assert (st.state, st.cream_state, st.reason, st.cream_reason) == (
        JobState.CLEARED, cs("purged"), "purged by user", "purged by user")


def test_cancel_done_is_cancelled_with_cream_state_aborted(reg):
    st = later(reg, ev("CREAMCancel", status_code=CANCEL.REQ, reason="asked"))
    assert (st.state, st.reason, st.cream_reason) == (JobState.SUBMITTED, "asked", "asked")
    st = later(st, ev("CREAMCancel", status_code=CANCEL.DONE))
    assert (st.state, st.cream_state) == (JobState.CANCELLED, cs("aborted"))
    assert (st.reason, st.cream_reason) == (None, None)  # unset when absent


def test_abort(reg):
    st = later(reg, ev("CREAMAbort", reason="proxy expired"))
    assert (st.state, st.cream_state, st.reason, st.cream_reason) == (
        JobState.ABORTED, cs("aborted"), "proxy expired", "proxy expired")


@pytest.mark.parametrize("name,state,jw,done", [
    ("pending", JobState.WAITING, StatJwStatus.UNKNOWN, None),
    ("IDLE", JobState.SCHEDULED, StatJwStatus.UNKNOWN, None),
    ("Running", JobState.RUNNING, StatJwStatus.WRAPPER_RUNNING, None),
    ("Really-Running", JobState.RUNNING, StatJwStatus.PAYLOAD_RUNNING, None),
    ("Done-OK", JobState.DONE, StatJwStatus.UNKNOWN, StatDoneCode.OK),
    ("done-failed", JobState.DONE, StatJwStatus.UNKNOWN, StatDoneCode.FAILED),
    ("Aborted", JobState.ABORTED, StatJwStatus.UNKNOWN, None),
    ("Cancelled", JobState.CANCELLED, StatJwStatus.UNKNOWN, None),
    ("Purged", JobState.CLEARED, StatJwStatus.UNKNOWN, None),
])
def test_status_done_maps_cream_states(reg, name, state, jw, done):
    st = later(reg, status_ev(name))
    assert st.cream_state == cs(name)
    assert (st.state, st.jw_status, st.done_code, st.cream_done_code) == (state, jw, done, done)


@pytest.mark.parametrize("name", ["Registered", "HELD"])
def test_status_registered_and_held_set_cream_state_only(reg, name):
    st = later(reg, status_ev("Running"), status_ev(name, t=2))
    assert st.cream_state == cs(name)
    assert st.state == JobState.RUNNING


def test_status_unknown_name_unsets_cream_state(reg):
    st = later(reg, status_ev("Running"), status_ev("Exploded", t=2))
    assert st.cream_state is None and st.state == JobState.RUNNING


def test_status_arrived_changes_nothing_but_times(reg):
    st = later(reg, status_ev("Running", result=STATUS.ARRIVED, t=5, worker_node="wn",
                              exit_code="1", failure_reason="f", lrms_jobid="7"))
    assert (st.state, st.cream_state, st.ce_node, st.cream_exit_code) == (
        JobState.SUBMITTED, cs("registered"), None, None)
    assert (st.failure_reasons, st.local_id) == (None, None)
    assert st.last_update_time.sec == BASE_TIME + 5


@pytest.mark.parametrize("type_name,attrs", [
    ("CREAMStart", {}), ("CREAMPurge", {}), ("CREAMRunning", {"node": "wn"}),
    ("CREAMReallyRunning", {}), ("CREAMDone", {"status_code": ENUMS["CREAMDoneStatusCode"].OK}),
    ("Running", {"node": "wn"}),
])
def test_other_events_have_no_state_effect(reg, type_name, attrs):
    st = later(reg, ev(type_name, t=9, **attrs))
    assert (st.state, st.cream_state, st.ce_node) == (JobState.SUBMITTED, cs("registered"), None)
    assert st.last_update_time.sec == BASE_TIME + 9


# --- no ordering, no terminal states, post-processing ---------------------------------

def test_no_ordering_and_no_terminal_state(reg):
    st = later(reg, status_ev("Cancelled", seq="UI=000009:NS=0000000009:WM=000009:BH=0000000009:"
                                               "JSS=000009:LM=000009:LRMS=000009:APP=000009"),
               status_ev("Running", seq=GLITE, t=2))
    assert st.state == JobState.RUNNING  # a delayed status revives a cancelled job


def test_last_seqcode_is_stored_verbatim(reg):
    st = later(reg, ev("CREAMStart", seq="not a code"))
    assert st.internal["last_seqcode"] == "not a code"


def test_state_entry_times_without_glite_resets(reg):
    st = later(reg, status_ev("Really-running", t=10),
               ev("CREAMStore", IFACE, command=CMD.CMDSUSPEND, result=STORE.OK, t=20),
               status_ev("Pending", t=30))
    assert st.state == JobState.WAITING and st.state_enter_time.sec == BASE_TIME + 30
    assert st.jw_status == StatJwStatus.PAYLOAD_RUNNING  # no jw_status reset on Waiting
    assert st.suspended is True  # no suspend reset when leaving Running
    assert st.state_enter_times[JobState.RUNNING] == BASE_TIME + 10


# --- data part (§8.2) ----------------------------------------------------------------

def test_accepted_sets_cream_id_and_globus_id(reg):
    st = later(reg, ev("CREAMAccepted", local_jobid="CREAM123"))
    assert (st.cream_id, st.globus_id, st.state) == ("CREAM123", "CREAM123", JobState.SUBMITTED)
    st = later(st, ev("CREAMAccepted"))
    assert (st.cream_id, st.globus_id) == (None, None)


def test_status_done_data(reg):
    st = later(reg, status_ev("Done-ok", exit_code="3", worker_node="wn21", lrms_jobid="88.torque"))
    assert (st.exit_code, st.cream_exit_code) == (3, 3)
    assert (st.ce_node, st.cream_node) == ("wn21", "wn21")
    assert (st.local_id, st.cream_lrms_id) == ("88.torque", "88.torque")


def test_status_exit_code_na_or_absent_is_ignored(reg):
    st = later(reg, status_ev("Done-ok", exit_code="0"), status_ev("Done-ok", exit_code="N/A"),
               status_ev("Done-ok"))
    assert (st.exit_code, st.cream_exit_code) == (0, 0)


def test_exit_code_is_read_like_atoi():
    assert [c_atoi(s) for s in ("7", " -2", "+4x", "12abc", "abc", "", "-")] == [7, -2, 4, 12, 0, 0, 0]


def test_failure_reasons_first_then_appended_d4(reg):
    st = later(reg, status_ev("Done-failed", failure_reason="first"))
    assert (st.failure_reasons, st.cream_failure_reason) == ("first", "first")
    st = later(st, status_ev("Done-failed", failure_reason="second"))
    assert (st.failure_reasons, st.cream_failure_reason) == ("first\nsecond", "second")


def test_user_tags_are_stored_with_glite_ordering(reg):
    newer = GLITE.replace("UI=000000", "UI=000001")
    st = later(reg, ev("UserTag", seq=newer, name="Tag", value="1"),
               ev("UserTag", seq=GLITE, name="tag", value="0"))
    assert st.user_tags == {"tag": "1"}


def test_data_part_alone_on_a_wms_job():
    wms = JobStatus(owner=OWNER, jobtype=StatJobtype.SIMPLE, state=JobState.READY,
                    location="WorkloadManager/h/i")
    apply_data_part(wms, status_ev("Running", worker_node="wn3", exit_code="5"))
    assert (wms.state, wms.cream_state, wms.jw_status) == (JobState.READY, None, StatJwStatus.UNKNOWN)
    assert (wms.ce_node, wms.cream_node, wms.exit_code) == ("wn3", "wn3", 5)
    assert wms.location == "WorkloadManager/h/i"
    assert wms.last_update_time.sec == 0 and "last_seqcode" not in wms.internal


def test_data_part_gives_default_location_and_ignores_other_events():
    wms = JobStatus(jobtype=StatJobtype.SIMPLE)
    apply_data_part(wms, ev("CREAMStore", IFACE, command=CMD.CMDSTART, result=STORE.OK, reason="r"))
    assert (wms.state, wms.reason, wms.location) == (JobState.UNDEFINED, None, "this is CREAM")


def test_data_part_of_regjob_on_wms_job():
    wms = JobStatus(owner=OWNER, jobtype=StatJobtype.SIMPLE)
    apply_data_part(wms, regjob())
    assert wms.cream_owner == OWNER and wms.cream_endpoint.startswith("https://")
    assert wms.state == JobState.UNDEFINED


# --- robustness -----------------------------------------------------------------------

def test_odd_events_never_raise(reg):
    st = later(reg, status_ev(None), ev("CREAMCall"), ev("CREAMStore"), ev("UserTag"),
               ev("CREAMStatus", result=STATUS.DONE, exit_code="x"))
    assert st.state == JobState.SUBMITTED and st.cream_state is None
    assert st.exit_code == 0


def test_p14_cream_scenario():
    assert replay(SCENARIOS / "P14-cream-job.json", MACHINE) == []
