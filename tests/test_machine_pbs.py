"""The PBS/Torque machine: state-machines.md §3.2, §6 (every table row), D1, D8, P12."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from conftest import SCENARIOS
from lbtx.events import make_event
from lbtx.machines.interfaces import IJobStateMachine
from lbtx.machines.pbs import MACHINE
from lbtx.schema import ENUMS, JobState, RegJobJobtype, Source, StatDoneCode, StatJobtype
from lbtx.seqcode import PBSSeqCode
from lbtx.status import JobStatus
from machine_support import BASE_TIME, event, replay, run

SERVER, MOM, SMOM, SCHED, CLIENT = (Source.PBS_SERVER, Source.PBS_MOM, Source.PBS_SMOM,
                                    Source.PBS_SCHEDULER, Source.PBS_CLIENT)
USAGE = ENUMS["PBSResourceUsageUsage"]
TRANSFER = ENUMS["PBSTransferResult"]


def code(server=0, mom=0, *, client=0, sched=0, smom=0) -> str:
    return PBSSeqCode(client, server, sched, smom, mom).format()


def ev(type_name, source=SERVER, server=1, mom=0, t=None, **kw):
    """A PBS event whose code has the given SERVER/MOM counters (t defaults to them)."""
    seq = kw.pop("seq", None) or code(server, mom, sched=kw.pop("sched", 0))
    return event(type_name, source=source, seq=seq, t=server * 10 + mom if t is None else t, **kw)


def regjob(**kw):
    kw.setdefault("ns", "torque.example.org:15001")
    return ev("RegJob", SERVER, 1, jobtype=RegJobJobtype.PBS, **kw)


@pytest.fixture
def reg() -> JobStatus:
    return run(MACHINE, JobStatus(owner="/CN=test"), regjob())


def later(st, *events):
    return run(MACHINE, st, *events)


# --- machine and registration ----------------------------------------------------

def test_machine_provides_the_interface():
    assert verifyObject(IJobStateMachine, MACHINE)
    assert MACHINE.name == "pbs" and MACHINE.job_types == (StatJobtype.PBS,)


def test_regjob_registers_a_pbs_job(reg):
    assert reg.state == JobState.SUBMITTED
    assert reg.jobtype == StatJobtype.PBS
    assert reg.network_server == "torque.example.org:15001"
    assert reg.location == "this is PBS"
    assert reg.state_enter_times[JobState.SUBMITTED] == BASE_TIME + 10
    assert reg.internal["last_seqcode"] == code(1)


def test_late_regjob_still_replaces_network_server(reg):
    st = later(reg, ev("PBSQueued", server=5, queue="q", name="n", owner="o"),
               regjob(ns="other:1"))
    assert st.state == JobState.WAITING
    assert st.network_server == "other:1"


def test_events_before_registration_are_ignored():
    st = run(MACHINE, JobStatus(), ev("PBSQueued", queue="q", name="n", owner="o"))
    assert st.state == JobState.UNDEFINED and st.pbs_queue is None and st.location is None


def test_regjob_without_known_jobtype_is_invalid():
    st = run(MACHINE, JobStatus(), ev("RegJob", ns="x"))
    assert st.jobtype is None and st.state == JobState.UNDEFINED


# --- classification (§6, D1) -----------------------------------------------------

def test_older_code_is_late_but_data_part_applies(reg):
    st = later(reg, ev("PBSRun", MOM, 3, pid=10))
    st = later(st, ev("PBSMatch", SCHED, 2, dest_host="wn1"))
    assert st.state == JobState.RUNNING
    assert st.pbs_dest_host == "wn1"
    assert st.internal["last_seqcode"] == code(3)
    assert st.last_update_time.sec == BASE_TIME + 30


def test_equal_codes_are_not_late_d1(reg):
    st = later(reg, ev("PBSRun", SERVER, 2), ev("PBSQueued", SERVER, 2, queue="q", name="n", owner="o"))
    assert st.state == JobState.WAITING


def test_comparison_is_lexicographic_over_the_five_counters(reg):
    st = later(reg, ev("PBSRun", MOM, seq=code(1, 9)))
    st = later(st, ev("PBSQueued", seq=code(2, 0), queue="q", name="n", owner="o"))
    assert st.state == JobState.WAITING  # SERVER 2 > SERVER 1 whatever MOM says
    st = later(st, ev("PBSMatch", seq=code(1, 9, client=1), dest_host="h"))
    assert st.state == JobState.READY  # CLIENT is the most significant counter


def test_unparsable_code_is_late_when_a_code_is_known(reg):
    st = later(reg, ev("PBSQueued", seq="garbage", queue="q", name="n", owner="o"))
    assert st.state == JobState.SUBMITTED
    assert st.pbs_queue == "q"  # data part
    assert st.internal["last_seqcode"] == code(1)


def test_unparsable_code_is_usable_first_but_never_stored():
    st = run(MACHINE, JobStatus(), regjob(seq="UI=000000:garbage"))
    assert st.state == JobState.SUBMITTED
    assert "last_seqcode" not in st.internal


# --- transition table ------------------------------------------------------------

@pytest.mark.parametrize("number,letter", list(enumerate("TQHWREC")))
def test_internal_state_change_letters(reg, number, letter):
    st = later(reg, ev("PBSInternalStateChange", server=2, oldstate=0, oldsubstate=0,
                       newstate=number, newsubstate=42))
    assert (st.pbs_state, st.pbs_substate, st.state) == (letter, 42, JobState.SUBMITTED)


@pytest.mark.parametrize("bad", [7, 99, -1])
def test_internal_state_change_out_of_range_keeps_pbs_state_d8(reg, bad):
    st = later(reg, ev("PBSInternalStateChange", server=2, newstate=1, newsubstate=10),
               ev("PBSInternalStateChange", server=3, newstate=bad, newsubstate=11))
    assert st.pbs_state == "Q"
    assert st.pbs_substate == 11


def test_internal_state_change_is_state_part_only(reg):
    st = later(reg, ev("PBSInternalStateChange", server=5, newstate=4, newsubstate=42),
               ev("PBSInternalStateChange", server=3, newstate=6, newsubstate=59))
    assert (st.pbs_state, st.pbs_substate) == ("R", 42)


def test_transfer_ok_to_server_sets_location_even_when_late(reg):
    st = later(reg, ev("PBSQueued", server=5, queue="q", name="n", owner="o"),
               ev("PBSTransfer", server=2, destination=SERVER, dest_instance="srv2",
                  result=TRANSFER.OK))
    assert st.location == "srv2" and st.state == JobState.WAITING


@pytest.mark.parametrize("mom", [MOM, SMOM])
def test_transfer_ok_to_a_mom_sets_ce_node(reg, mom):
    st = later(reg, ev("PBSTransfer", server=2, destination=mom, dest_instance="wn7",
                       result=TRANSFER.OK))
    assert st.ce_node == "wn7" and st.location == "this is PBS"


def test_transfer_not_ok_or_elsewhere_has_no_effect(reg):
    st = later(reg, ev("PBSTransfer", server=2, destination=SERVER, dest_instance="x",
                       result=TRANSFER.FAIL),
               ev("PBSTransfer", server=3, destination=SCHED, dest_instance="y",
                  result=TRANSFER.OK))
    assert st.location == "this is PBS" and st.ce_node is None
    assert st.state == JobState.SUBMITTED


def test_transfer_to_server_without_instance_falls_back_to_default_location(reg):
    st = later(reg, ev("PBSTransfer", server=2, destination=SERVER, dest_instance="srv",
                       result=TRANSFER.OK))
    st = later(st, ev("PBSTransfer", server=3, destination=SERVER, result=TRANSFER.OK))
    assert st.location == "this is PBS"


def test_accepted_by_server(reg):
    st = later(reg, ev("PBSQueued", server=2, queue="q", name="n", owner="o"),
               ev("PBSAccepted", SERVER, 3, instance="pbs_server2", **{"from_": CLIENT}))
    assert st.state == JobState.SUBMITTED and st.location == "pbs_server2"


@pytest.mark.parametrize("mom", [MOM, SMOM])
def test_accepted_by_mom(reg, mom):
    st = later(reg, ev("PBSAccepted", mom, 1, 1, instance="wn05", **{"from_": SERVER}))
    assert st.state == JobState.SCHEDULED and st.ce_node == "wn05"
    assert st.location == "this is PBS"


def test_accepted_from_other_source_or_late_changes_nothing(reg):
    st = later(reg, ev("PBSAccepted", SCHED, 2, instance="x", **{"from_": SERVER}))
    assert st.state == JobState.SUBMITTED and st.ce_node is None
    st = later(st, ev("PBSRun", MOM, 3), ev("PBSAccepted", MOM, 2, instance="wn", **{"from_": SERVER}))
    assert st.state == JobState.RUNNING and st.ce_node is None


def test_queued_from_server_sets_queue_and_first_owner_and_name(reg):
    st = later(reg, ev("PBSQueued", server=2, queue="batch", name="STDIN", owner="alice"))
    assert (st.state, st.pbs_queue, st.pbs_name, st.pbs_owner) == (
        JobState.WAITING, "batch", "STDIN", "alice")
    st = later(st, ev("PBSQueued", server=3, queue="long", name="other", owner="bob"))
    assert (st.pbs_queue, st.pbs_name, st.pbs_owner) == ("long", "STDIN", "alice")


def test_queued_from_other_source_sets_state_only(reg):
    st = later(reg, ev("PBSQueued", SCHED, 2, queue="batch", name="n", owner="o"))
    assert st.state == JobState.WAITING
    assert (st.pbs_queue, st.pbs_name, st.pbs_owner) == (None, None, None)


def test_match_sets_ready_and_dest_host_if_present(reg):
    st = later(reg, ev("PBSMatch", SCHED, 2, dest_host="wn05"))
    assert st.state == JobState.READY and st.pbs_dest_host == "wn05"
    st = later(st, ev("PBSMatch", SCHED, 3))
    assert st.pbs_dest_host == "wn05"


def test_pending_sets_waiting_reason_and_clears_rerun_flag(reg):
    st = later(reg, ev("PBSRerun", MOM, 2))
    assert st.internal.get("pbs_reruning") is True
    st = later(st, ev("PBSPending", SCHED, 3, reason="no nodes"))
    assert st.state == JobState.WAITING and st.pbs_reason == "no nodes"
    assert not st.internal.get("pbs_reruning")
    st = later(st, ev("PBSPending", SCHED, 4))
    assert st.pbs_reason == "no nodes"
    st = later(st, ev("PBSPending", SCHED, 5, reason="still none"))
    assert st.pbs_reason == "still none"


def test_late_pending_replaces_reason_but_keeps_rerun_flag(reg):
    st = later(reg, ev("PBSRerun", MOM, 5), ev("PBSPending", SCHED, 3, reason="late"))
    assert st.pbs_reason == "late" and st.internal["pbs_reruning"] is True


def test_run_from_server_is_scheduled(reg):
    st = later(reg, ev("PBSRun", SERVER, 2, scheduler="pbs_sched", dest_host="wn05/0"))
    assert st.state == JobState.SCHEDULED
    assert (st.pbs_scheduler, st.pbs_dest_host, st.pbs_pid) == ("pbs_sched", "wn05/0", 0)


@pytest.mark.parametrize("mom", [MOM, SMOM])
def test_run_from_mom_is_running_and_keeps_absent_values(reg, mom):
    st = later(reg, ev("PBSRun", SERVER, 2, scheduler="s", dest_host="d", pid=5),
               ev("PBSRun", mom, 2, 1, pid=31337))
    assert st.state == JobState.RUNNING
    assert (st.pbs_scheduler, st.pbs_dest_host, st.pbs_pid) == ("s", "d", 31337)


def test_run_from_a_strange_source_has_no_state_effect(reg):
    st = later(reg, ev("PBSRun", CLIENT, 2, pid=7))
    assert st.state == JobState.SUBMITTED
    assert st.pbs_pid == 7


def test_run_pid_resets_to_zero_when_absent_even_late(reg):
    st = later(reg, ev("PBSRun", MOM, 3, pid=9), ev("PBSRun", SERVER, 2))
    assert st.state == JobState.RUNNING and st.pbs_pid == 0


def test_rerun_from_server_waits_without_flag(reg):
    st = later(reg, ev("PBSRun", MOM, 2), ev("PBSRerun", SERVER, 3))
    assert st.state == JobState.WAITING and "pbs_reruning" not in st.internal


@pytest.mark.parametrize("mom", [MOM, SMOM])
def test_rerun_from_mom_waits_and_sets_flag(reg, mom):
    st = later(reg, ev("PBSRun", MOM, 2), ev("PBSRerun", mom, 2, 1))
    assert st.state == JobState.WAITING and st.internal["pbs_reruning"] is True


def test_rerun_from_strange_source_or_late_has_no_effect(reg):
    st = later(reg, ev("PBSRun", MOM, 3), ev("PBSRerun", CLIENT, 4), ev("PBSRerun", MOM, 2))
    assert st.state == JobState.RUNNING and "pbs_reruning" not in st.internal


def test_done_from_server_is_done_ok_whatever_the_exit_status(reg):
    st = later(reg, ev("PBSDone", SERVER, 2, exit_status=3))
    assert (st.state, st.done_code, st.pbs_exit_status) == (JobState.DONE, StatDoneCode.OK, 3)


@pytest.mark.parametrize("mom", [MOM, SMOM])
def test_done_from_mom_records_exit_status_only(reg, mom):
    st = later(reg, ev("PBSRun", MOM, 2), ev("PBSDone", mom, 2, 1, exit_status=1))
    assert (st.state, st.done_code, st.pbs_exit_status) == (JobState.RUNNING, None, 1)


def test_late_done_records_exit_status(reg):
    st = later(reg, ev("PBSRun", MOM, 3), ev("PBSDone", SERVER, 2, exit_status=4))
    assert (st.state, st.done_code, st.pbs_exit_status) == (JobState.RUNNING, None, 4)


def test_resource_usage_requested_and_used(reg):
    req = (("walltime", "01:00:00"), ("mem", "1gb"))
    used = (("cput", "00:10:00"),)
    st = later(reg, ev("PBSResourceUsage", SERVER, 2, usage=USAGE.REQUESTED, resources=req),
               ev("PBSResourceUsage", SERVER, 3, usage=USAGE.USED, resources=used))
    assert st.pbs_resource_requested == req and st.pbs_resource_usage == used
    assert st.state == JobState.SUBMITTED


def test_error_fails_the_job_and_accumulates_descriptions(reg):
    st = later(reg, ev("PBSError", SERVER, 2, error_desc="first"))
    assert (st.state, st.done_code, st.pbs_state) == (JobState.DONE, StatDoneCode.FAILED, "C")
    assert st.pbs_error_desc == "\tfirst"
    st = later(st, ev("PBSRun", MOM, 5), ev("PBSError", SERVER, 3, error_desc="second"))
    assert st.state == JobState.RUNNING  # late: data part only
    assert st.pbs_error_desc == "\tfirst\n\tsecond"


def test_user_tags_follow_pbs_code_order(reg):
    st = later(reg, ev("UserTag", CLIENT, 3, name="Color", value="red"))
    assert st.user_tags == {"color": "red"}
    st = later(st, ev("UserTag", CLIENT, 2, name="COLOR", value="blue"))
    assert st.user_tags == {"color": "red"}  # older code does not replace
    st = later(st, ev("UserTag", CLIENT, 4, name="color", value="green"),
               ev("PBSRun", MOM, 9), ev("UserTag", CLIENT, 5, name="size", value="xl"))
    assert st.user_tags == {"color": "green", "size": "xl"}  # late tags are stored


@pytest.mark.parametrize("type_name", ["PBSRefused", "PBSDequeued", "PBSWaiting", "PBSAbort"])
def test_other_pbs_events_only_post_process(reg, type_name):
    kwargs = {"from_": SERVER} if type_name == "PBSRefused" else {}
    st = later(reg, ev(type_name, SERVER, 2, **kwargs))
    assert st.state == JobState.SUBMITTED
    assert st.internal["last_seqcode"] == code(2)
    assert st.last_update_time.sec == BASE_TIME + 20


# --- post-processing --------------------------------------------------------------

def test_state_entry_times_only_on_change_and_overwritten_on_reentry(reg):
    st = later(reg, ev("PBSQueued", server=2, queue="q", name="n", owner="o", t=100),
               ev("PBSPending", server=3, reason="r", t=200))
    assert st.state_enter_time.sec == BASE_TIME + 100
    assert st.last_update_time.sec == BASE_TIME + 200
    st = later(st, ev("PBSMatch", server=4, dest_host="h", t=300),
               ev("PBSRerun", server=5, t=400))
    assert st.state_enter_times[JobState.WAITING] == BASE_TIME + 400
    assert st.state_enter_times[JobState.READY] == BASE_TIME + 300


def test_late_event_does_not_touch_times(reg):
    st = later(reg, ev("PBSQueued", server=5, queue="q", name="n", owner="o", t=50),
               ev("PBSMatch", server=2, dest_host="h", t=999))
    assert st.last_update_time.sec == BASE_TIME + 50
    assert st.state_enter_times[JobState.READY] == 0


# --- robustness -------------------------------------------------------------------

def test_odd_events_never_raise(reg):
    st = later(reg,
               make_event("PBSRun"),  # no header at all: late, pid reset by the data part
               make_event("Running", source=Source.LRMS, seqcode=code(2), node="wn"),
               ev("PBSInternalStateChange", server=3),  # no states given
               ev("UserTag", server=4),  # no name/value
               ev("PBSResourceUsage", server=5))  # no usage
    assert st.state == JobState.SUBMITTED
    assert (st.pbs_state, st.pbs_substate, st.user_tags) == (None, 0, None)
    assert st.internal["last_seqcode"] == code(5)


def test_error_without_description_fails_but_adds_no_text(reg):
    st = later(reg, ev("PBSError", server=2))
    assert st.state == JobState.DONE and st.pbs_error_desc is None


def test_p12_pbs_scenario():
    assert replay(SCENARIOS / "P12-pbs-job.json", MACHINE) == []
