"""The gLite WMS machine (state-machines.md §4, §5.4, §10.1, §10.2 D5/D7/D9/D12).

Events are built with :func:`machine_support.event` and fed through
:func:`machine_support.run`, which also checks that ``apply`` never mutates its
input. Sequence codes are written with :func:`code`; :class:`Job` keeps one job's
status and a clock that advances one second per event.
"""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from machine_support import BASE_TIME, event, run, snapshot
from lbtx.events import EVENT_CLASSES, make_event
from lbtx.jobid import JobId
from lbtx.machines.glite import MACHINE
from lbtx.machines.glite_seq import (before_deep, comp, entered_wm_again, is_before, parse_code,
                                     same_branch, tag_newer, WM)
from lbtx.machines.interfaces import IJobStateMachine
from lbtx.schema import (ENUMS, JobState, RegJobJobtype, Source, StatCreamState, StatDoneCode,
                         StatJobtype, StatJwStatus, StatSandboxRetrieved)
from lbtx.seqcode import GliteSeqCode
from lbtx.status import JobStatus
from lbtx.timeval import Timeval

S = Source
J = JobState
TR = ENUMS["TransferResult"]
EQ = ENUMS["EnQueuedResult"]
DONE = ENUMS["DoneStatusCode"]
CANCEL = ENUMS["CancelStatusCode"]
CLEAR = ENUMS["ClearReason"]
RESUB = ENUMS["ResubmissionResult"]
CMD = ENUMS["CREAMStoreCommand"]

JID = JobId.parse("https://lb.example.org:9000/glite-machine-test")
OWNER = "/DC=org/DC=example/CN=Alice"
NS_URL = "https://wms.example.org:7443/wmproxy"
HOST = "host.example.org"
INST = "inst"


def code(ui=0, ns=0, wm=0, bh=0, jss=0, lm=0, lrms=0, app=0, lbs=0) -> str:
    """A gLite sequence code text with the given counters."""
    return GliteSeqCode(ui, ns, wm, bh, jss, lm, lrms, app, lbs).format()


def cyc(wm=5, jss=2, lm=0, lrms=0, app=0, ns=3, ui=0) -> str:
    """A code of the usual first cycle (NS=3, WM=5 after the WM EnQueued)."""
    return code(ui=ui, ns=ns, wm=wm, jss=jss, lm=lm, lrms=lrms, app=app)


class Job:
    """One job: its current status and a clock (one second per event)."""

    def __init__(self, jobtype=RegJobJobtype.SIMPLE, register=True, **reg):
        self.st = JobStatus(job_id=JID, owner=OWNER)
        self.t = 0
        if register:
            reg.setdefault("jdl", "[ Executable = \"/bin/true\" ]")
            reg.setdefault("ns", NS_URL)
            self.feed("RegJob", S.NETWORK_SERVER, code(ns=1), jobtype=jobtype, **reg)

    def feed(self, type_name, source, seq, *, t=None, instance=INST, **attrs) -> JobStatus:
        """Apply one event; ``t`` defaults to one second after the previous event."""
        self.t = self.t + 1 if t is None else t
        ev = event(type_name, source=source, seq=seq, t=self.t, instance=instance, **attrs)
        self.st = run(MACHINE, self.st, ev)
        return self.st

    @property
    def internal(self) -> dict:
        return self.st.internal

    # --- the usual life of a job, one helper per stage --------------------------------------
    def to_waiting(self):
        self.feed("Accepted", S.NETWORK_SERVER, code(ns=2), from_=S.USER_INTERFACE,
                  from_host="ui.example.org")
        return self.feed("EnQueued", S.NETWORK_SERVER, code(ns=3), queue="/wm/jobdir",
                         job="[ full jdl ]", result=EQ.OK)

    def to_ready(self, dest="ce01.example.org:2119/pbs"):
        self.to_waiting()
        self.feed("DeQueued", S.WORKLOAD_MANAGER, cyc(wm=1, jss=0), queue="/wm/jobdir")
        self.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=3, jss=0), dest_id=dest)
        return self.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(jss=0), queue="/jc/queue",
                         job="[ matched jdl ]", result=EQ.OK)

    def to_scheduled(self):
        self.to_ready()
        self.feed("DeQueued", S.JOB_SUBMISSION, cyc(jss=1), queue="/jc/queue")
        self.feed("Transfer", S.JOB_SUBMISSION, cyc(jss=2), destination=S.LOG_MONITOR,
                  dest_host="localhost", dest_instance="condor.log", job="condor submit",
                  result=TR.OK)
        self.feed("Accepted", S.LOG_MONITOR, cyc(lm=1), from_=S.JOB_SUBMISSION,
                  from_host="localhost", local_jobid="4711")
        return self.feed("Transfer", S.LOG_MONITOR, cyc(lm=2), destination=S.LRMS,
                         dest_host="ce01.example.org", dest_instance="globus", job="&(rsl)",
                         result=TR.OK)

    def to_running(self, node="wn01.example.org"):
        self.to_scheduled()
        return self.feed("Running", S.LOG_MONITOR, cyc(lm=3), node=node)

    def to_done(self):
        self.to_running()
        return self.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=0,
                         reason="ok")


def apply_one(status, type_name, source, seq, t=100, **attrs):
    return run(MACHINE, status, event(type_name, source=source, seq=seq, t=t, instance=INST,
                                      **attrs))


def ts(t: int, usec: int = 0) -> Timeval:
    return Timeval(BASE_TIME + t, usec)


# --- the plug-in ------------------------------------------------------------------------------

def test_machine_provides_the_interface():
    """MACHINE is an IJobStateMachine named glite serving SIMPLE, DAG and COLLECTION."""
    assert verifyObject(IJobStateMachine, MACHINE)
    assert MACHINE.name == "glite"
    assert MACHINE.job_types == (StatJobtype.SIMPLE, StatJobtype.DAG, StatJobtype.COLLECTION)


def test_apply_copies_and_returns_no_generated_events():
    job = Job()
    before = snapshot(job.st)
    tr = MACHINE.apply(job.st, event("Match", source=S.WORKLOAD_MANAGER, seq=code(ns=2, wm=1),
                                     t=5, dest_id="ce"))
    assert tr.status is not job.st and tr.generated == ()
    assert snapshot(job.st) == before
    assert tr.status.destination == "ce"


# --- invalid events: no effect at all -----------------------------------------------------------

INVALID = [
    ("PBSQueued", S.PBS_SERVER, dict(queue="q", name="n", owner="o")),
    ("CondorMatch", S.LRMS, dict(owner="o", dest_host="h")),
    ("VMRunning", S.VM_MANAGER, {}),
    ("CREAMDone", S.CREAM_EXECUTOR, dict(status_code=ENUMS["CREAMDoneStatusCode"].OK)),
    ("Transfer", S.WORKLOAD_MANAGER, dict(destination=S.LRMS, dest_host="h", job="j", result=TR.OK)),
    ("Transfer", S.NETWORK_SERVER, dict(destination=S.LRMS, dest_host="h", job="j", result=TR.START)),
    ("Accepted", S.USER_INTERFACE, dict(from_=S.NETWORK_SERVER, from_host="h")),
    ("Refused", S.WORKLOAD_MANAGER, dict(from_=S.NETWORK_SERVER, from_host="h")),
    ("EnQueued", S.JOB_SUBMISSION, dict(queue="q", job="j", result=EQ.OK)),
    ("EnQueued", S.LRMS, dict(queue="q", job="j", result=EQ.START)),
    ("DeQueued", S.NETWORK_SERVER, dict(queue="q")),
    ("UserTag", S.USER_INTERFACE, dict(name="t")),
    ("UserTag", S.USER_INTERFACE, dict(value="v")),
    ("Clear", S.NETWORK_SERVER, {}),                        # D7: unknown clear reason
    ("CollectionState", S.LB_SERVER, dict(state="Sleeping")),
    ("Done", S.LOG_MONITOR, dict(reason="no status code")),
    ("ReallyRunning", S.LOG_MONITOR, dict(wn_seq="not a code")),
    ("ReallyRunning", S.LOG_MONITOR, {}),
    ("GrantPayloadOwnership", S.USER_INTERFACE, {}),
    ("ChangeACL", S.USER_INTERFACE, dict(user_id="/CN=Bob")),  # never a status effect (§4.8)
]


@pytest.mark.parametrize("type_name,source,attrs", INVALID, ids=lambda x: getattr(x, "name", None))
def test_invalid_event_has_no_effect(type_name, source, attrs):
    """§4.2/§4.3: unknown types and unexpected sources or missing attributes leave
    the status exactly as it was, including the internal bookkeeping, even when the
    event came through the NS again (which would otherwise forget the deep mark)."""
    job = Job()
    job.to_running()
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=4), result=RESUB.WILLRESUB)
    before = snapshot(job.st)
    after = apply_one(job.st, type_name, source, code(ns=9, wm=9), **attrs)
    assert snapshot(after) == before


def test_events_before_registration_have_no_effect():
    """§4.1: while jobtype is undefined every non-RegJob event is ignored."""
    st = JobStatus(job_id=JID, owner=OWNER)
    after = apply_one(st, "Match", S.WORKLOAD_MANAGER, code(ns=3, wm=1), dest_id="ce")
    assert snapshot(after) == snapshot(st)


@pytest.mark.parametrize("type_name", sorted(EVENT_CLASSES))
def test_odd_events_never_raise(type_name):
    """Any event type from any source with only the header set (and a garbage or
    missing code) is applied without an exception, on a fresh and a running job."""
    running = Job()
    running.to_running()
    for st in (Job().st, running.st, JobStatus(job_id=JID)):
        for source in S:
            for seq in ("", "garbage", code(ns=9, wm=9)):
                MACHINE.apply(st, make_event(type_name, source=source, seqcode=seq,
                                             timestamp=ts(1000)))


def test_first_regjob_of_another_job_type_goes_to_its_machine():
    """§4.1: a first RegJob naming a non-WMS type is not processed as a WMS job
    (the glite machine hands it to that type's machine)."""
    pytest.importorskip("lbtx.machines.pbs")
    st = apply_one(JobStatus(job_id=JID, owner=OWNER), "RegJob", S.PBS_SERVER,
                   "CLIENT=000000:SERVER=0000000001:SCHED=000000:SMOM=000000:MOM=000000",
                   ns="pbs.example.org", jobtype=RegJobJobtype.PBS)
    assert st.jobtype == StatJobtype.PBS
    assert st.location == "this is PBS"


# --- sequence-code helpers (§3.1) --------------------------------------------------------------

def test_seqcode_helpers():
    a, b = parse_code(code(ns=3, wm=5, lm=2)), parse_code(code(ns=3, wm=5, lrms=9))
    assert comp(a, WM) == 5 and comp(None, WM) == -1
    assert same_branch(a, b) and not same_branch(a, parse_code(code(wm=6)))
    assert before_deep(a, parse_code(code(wm=7))) and not before_deep(a, parse_code(code(wm=5)))
    assert entered_wm_again(parse_code(code(ns=4)), a)
    assert entered_wm_again(parse_code(code(ui=1)), a)
    assert not entered_wm_again(parse_code(code(ns=3, wm=9)), a)
    assert is_before(b, a) and not is_before(a, b) and not is_before(a, a)
    # an unparsable left operand is lower, an unparsable right one higher (§3.1)
    assert is_before(None, a) and not is_before(a, None)
    assert tag_newer(code(app=2), code(app=1)) and not tag_newer(code(app=1), code(app=1))
    assert not tag_newer("junk", code()) and tag_newer(code(), "junk")


def test_eight_counter_code_reads_lbs_as_zero():
    assert parse_code("UI=000000:NS=0000000002:WM=000000:BH=0000000000:JSS=000000:LM=000000"
                      ":LRMS=000000:APP=000000") == parse_code(code(ns=2))


# --- classification (§4.2) ----------------------------------------------------------------------

def test_late_event_keeps_state_but_writes_data():
    """§1.2, §10.1.2: a delayed NS EnQueued does not move the job back, but its jdl
    replaces the current one; a delayed NS Accepted still records ui_host."""
    job = Job()
    job.feed("Match", S.WORKLOAD_MANAGER, code(ns=3, wm=3), dest_id="ce01")
    st = job.feed("Accepted", S.NETWORK_SERVER, code(ns=2), from_=S.USER_INTERFACE,
                  from_host="ui.example.org")
    assert st.location == f"WorkloadManager/{HOST}/{INST}"
    assert st.ui_host == "ui.example.org"
    assert st.last_update_time == ts(2)
    st = job.feed("EnQueued", S.NETWORK_SERVER, code(ns=3), queue="/wm", job="[ later ]",
                  result=EQ.OK)
    assert st.state == J.WAITING and st.jdl == "[ later ]"
    assert st.location == f"WorkloadManager/{HOST}/{INST}" and st.reason is None


def test_equal_codes_are_not_late():
    job = Job()
    job.feed("Pending", S.WORKLOAD_MANAGER, code(ns=3, wm=2), reason="first")
    st = job.feed("Pending", S.WORKLOAD_MANAGER, code(ns=3, wm=2), reason="second")
    assert st.reason == "second" and st.last_update_time == ts(3)


def test_unparsable_event_code_is_late_but_data_applies():
    """D9: an unparsable code on the event makes it late; the data part still runs."""
    job = Job()
    st = job.feed("Match", S.WORKLOAD_MANAGER, "UI=garbage", dest_id="ce01")
    assert st.state == J.SUBMITTED and st.last_update_time == ts(1)
    assert st.destination == "ce01" and st.possible_destinations == ["ce01"]
    assert job.internal["last_seqcode"] == code(ns=1)


def test_unparsable_first_code_is_late_too():
    """D9 also without any bookkeeping yet (upstream would take the event)."""
    st = apply_one(JobStatus(job_id=JID, owner=OWNER), "RegJob", S.NETWORK_SERVER, "",
                   jdl="j", ns=NS_URL, jobtype=RegJobJobtype.SIMPLE)
    assert st.jobtype == StatJobtype.SIMPLE and st.jdl == "j"
    assert st.state == J.UNDEFINED and "last_seqcode" not in st.internal


@pytest.mark.parametrize("terminal", ["cancelled", "cleared", "aborted"])
def test_terminal_states_make_every_event_late(terminal):
    """§4.7 terminal states: no state/location/timestamp change, data parts apply."""
    job = Job()
    job.to_running()
    if terminal == "cancelled":
        job.feed("Cancel", S.LOG_MONITOR, cyc(ns=4, lm=4), status_code=CANCEL.DONE)
    elif terminal == "cleared":
        job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=0)
        job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=CLEAR.USER)
    else:
        job.feed("Abort", S.LOG_MONITOR, cyc(lm=4), reason="gave up")
    before = job.st
    st = job.feed("Running", S.LOG_MONITOR, cyc(lm=9), node="wn99")
    assert st.state == before.state and st.location == before.location
    assert st.last_update_time == before.last_update_time
    assert st.ce_node == "wn99"  # data part


def test_collection_state_is_usable_on_an_aborted_parent():
    """§4.2: Aborted is not terminal for CollectionState (a collection may restart)."""
    job = Job(jobtype=RegJobJobtype.COLLECTION, nsubjobs=2)
    job.feed("Abort", S.LOG_MONITOR, code(ns=2), reason="all failed")
    st = job.feed("CollectionState", S.LB_SERVER, code(ns=2, lbs=1), state="Running",
                  done_code=0)
    assert st.state == J.RUNNING and st.state_enter_time == ts(3)


def test_collection_state_is_late_on_a_cleared_parent():
    job = Job(jobtype=RegJobJobtype.COLLECTION, nsubjobs=2)
    job.feed("Clear", S.NETWORK_SERVER, code(ns=2), reason=CLEAR.USER)
    st = job.feed("CollectionState", S.LB_SERVER, code(ns=2, lbs=1), state="Running")
    assert st.state == J.CLEARED


def test_collection_state_names_state_and_done_code():
    """§4.3 CollectionState: state by name (case-insensitive); Done takes done_code."""
    job = Job(jobtype=RegJobJobtype.COLLECTION, nsubjobs=2)
    st = job.feed("CollectionState", S.LB_SERVER, code(ns=1, lbs=1), state="running")
    assert st.state == J.RUNNING and st.done_code is None
    st = job.feed("CollectionState", S.LB_SERVER, code(ns=1, lbs=2), state="Done", done_code=0)
    assert st.state == J.DONE and st.done_code == StatDoneCode.OK


def test_reentry_through_ns_forgets_the_deep_mark():
    """§4.2 entered_wm_again: a non-Cancel event with a higher NS counter forgets the
    deep-resubmission mark, so its low WM counter is no longer too old."""
    job = Job()
    job.to_running()
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=4), result=RESUB.WILLRESUB)
    st = job.feed("Match", S.WORKLOAD_MANAGER, code(ns=4, wm=1), dest_id="ce-new")
    assert "deep_resubmit_seqcode" not in job.internal
    assert st.state == J.WAITING and st.destination == "ce-new"


def test_cancel_does_not_evaluate_reentry():
    """§4.7: entered_wm_again is not evaluated for Cancel; a cancel request with a
    higher NS but an old WM counter stays too old."""
    job = Job()
    job.to_running()
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=4), result=RESUB.WILLRESUB)
    st = job.feed("Cancel", S.NETWORK_SERVER, code(ns=4), status_code=CANCEL.REQ, reason="stop")
    assert st.cancelling is False and st.cancel_reason == "stop"
    assert job.internal["deep_resubmit_seqcode"] == cyc(wm=7, lm=4)


def test_foreign_code_freezes_the_job():
    """§10.1.5: a tag logged with a fresh UI=1 code becomes the high-water mark; later
    WMS events (UI=0) are late."""
    job = Job()
    job.to_waiting()
    job.feed("UserTag", S.USER_INTERFACE, code(ui=1), name="n", value="v")
    st = job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=3, jss=0), dest_id="ce")
    assert st.location == f"/wm/jobdir/{HOST}/{INST}"
    assert st.last_update_time == ts(4)


# --- LM-zeroing and LRMS protection (§4.4, §10.1.3, §10.1.4) --------------------------------------

def test_lm_zeroing_lets_jobwrapper_events_through():
    """§4.4: after LogMonitor Accepted/Transfer the stored code has LM=0, so a
    JobWrapper Running (LM=0, higher LRMS) still moves the job on."""
    job = Job()
    job.to_scheduled()
    assert job.internal["last_seqcode"] == cyc(lm=0)
    st = job.feed("Running", S.LRMS, cyc(lrms=1), node="wn17")
    assert st.state == J.RUNNING and st.jw_status == StatJwStatus.WRAPPER_RUNNING
    assert st.location == "LRMS/worknode/wn17"


def test_lm_zeroed_code_still_catches_delayed_wm_events():
    job = Job()
    job.to_scheduled()
    st = job.feed("DeQueued", S.WORKLOAD_MANAGER, cyc(wm=1, jss=0), queue="/wm")
    assert st.state == J.SCHEDULED


def test_lm_accepted_after_lm_transfer_moves_scheduled_back_to_ready():
    """§10.1.3: LM Accepted delivered after LM Transfer/OK: Scheduled → Ready."""
    job = Job()
    job.to_ready()
    job.feed("Transfer", S.JOB_SUBMISSION, cyc(jss=2), destination=S.LOG_MONITOR,
             dest_host="localhost", job="sub", result=TR.OK)
    assert job.feed("Transfer", S.LOG_MONITOR, cyc(lm=2), destination=S.LRMS, dest_host="ce",
                    job="rsl", result=TR.OK).state == J.SCHEDULED
    st = job.feed("Accepted", S.LOG_MONITOR, cyc(lm=1), from_=S.JOB_SUBMISSION,
                  from_host="localhost", local_jobid="77")
    assert st.state == J.READY and st.condor_id == "77"


def test_delayed_lm_transfer_on_running_job_only_fills_scheduled_time():
    """§4.3/§10.1.3: LM Transfer/OK on a Running job is late but records
    stateEnterTimes[Scheduled]; rsl is written, nothing else."""
    job = Job()
    job.to_ready()
    job.feed("Accepted", S.LOG_MONITOR, cyc(lm=1), from_=S.JOB_SUBMISSION, from_host="lh")
    job.feed("Running", S.LOG_MONITOR, cyc(lm=3), node="wn1")
    assert job.st.state_enter_times[J.SCHEDULED] == 0
    st = job.feed("Transfer", S.LOG_MONITOR, cyc(lm=2), t=50, destination=S.LRMS,
                  dest_host="ce", job="&(rsl)", result=TR.OK, reason="submitted")
    assert st.state == J.RUNNING and st.location == "LRMS/worknode/wn1"
    assert st.state_enter_times[J.SCHEDULED] == BASE_TIME + 50
    assert st.rsl == "&(rsl)" and st.reason != "submitted"
    assert st.last_update_time == ts(8)


def test_jobcontroller_transfer_moves_running_back_to_ready():
    """§10.1.4: no LRMS protection for JobController Transfer/OK."""
    job = Job()
    job.to_running()
    st = job.feed("Transfer", S.JOB_SUBMISSION, cyc(jss=3, lm=3), destination=S.LOG_MONITOR,
                  dest_host="localhost", job="again", result=TR.OK)
    assert st.state == J.READY and st.jw_status == StatJwStatus.UNKNOWN


@pytest.mark.parametrize("type_name,source,attrs", [
    ("DeQueued", S.JOB_SUBMISSION, dict(queue="q")),
    ("EnQueued", S.WORKLOAD_MANAGER, dict(queue="q", job="j2", result=EQ.OK)),
    ("Accepted", S.LOG_MONITOR, dict(from_=S.JOB_SUBMISSION, from_host="h")),
    ("Transfer", S.JOB_SUBMISSION, dict(destination=S.LOG_MONITOR, dest_host="h", job="j",
                                        result=TR.FAIL)),
    ("Transfer", S.LOG_MONITOR, dict(destination=S.LRMS, dest_host="h", job="j",
                                     result=TR.FAIL)),
])
@pytest.mark.parametrize("lrms_state", ["Running", "Done"])
def test_lrms_protected_events(type_name, source, attrs, lrms_state):
    """§4.3/§10.1.4: these events are late once the job is Running or Done."""
    job = Job()
    job.to_done() if lrms_state == "Done" else job.to_running()
    before = job.st
    st = job.feed(type_name, source, cyc(wm=5, jss=9, lm=9), **attrs)
    assert st.state == before.state and st.location == before.location


# --- START / REFUSED results --------------------------------------------------------------------

def test_transfer_start_is_ignored_for_the_state_but_writes_data():
    job = Job()
    job.to_ready()
    before = job.st
    st = job.feed("Transfer", S.JOB_SUBMISSION, cyc(jss=2), destination=S.LOG_MONITOR,
                  dest_host="lh", job="condor jdl", result=TR.START)
    assert st.location == before.location and st.last_update_time == before.last_update_time
    assert st.condor_jdl == "condor jdl"
    assert job.internal["last_seqcode"] == before.internal["last_seqcode"]


def test_enqueued_refused_from_wm_overwrites_matched_jdl():
    """§10.1.2: every WM EnQueued (any result) overwrites matched_jdl."""
    job = Job()
    job.to_waiting()
    st = job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=4, jss=0), queue="q", job="",
                  result=EQ.REFUSED)
    assert st.state == J.WAITING and st.matched_jdl == ""


# --- transition table rows (§4.3) ----------------------------------------------------------------

ROWS = [
    # type, source, attrs, state, location
    ("Transfer", S.USER_INTERFACE, dict(destination=S.NETWORK_SERVER, dest_host="wms",
                                        dest_instance="7443", job="j", result=TR.OK),
     J.WAITING, "NetworkServer/wms/7443"),
    ("Transfer", S.USER_INTERFACE, dict(destination=S.NETWORK_SERVER, dest_host="wms", job="j",
                                        result=TR.FAIL, reason="down"),
     J.SUBMITTED, f"UserInterface/{HOST}/{INST}"),
    ("Transfer", S.JOB_SUBMISSION, dict(destination=S.LOG_MONITOR, dest_host="lh", job="j",
                                        result=TR.FAIL), J.READY, f"JobController/{HOST}/{INST}"),
    ("Transfer", S.LOG_MONITOR, dict(destination=S.LRMS, dest_host="ce", dest_instance="g",
                                     job="j", result=TR.OK), J.SCHEDULED, "LRMS/ce/g"),
    ("Transfer", S.LOG_MONITOR, dict(destination=S.LRMS, dest_host="ce", job="j",
                                     result=TR.FAIL), J.READY, f"LogMonitor/{HOST}/{INST}"),
    ("Accepted", S.NETWORK_SERVER, dict(from_=S.USER_INTERFACE, from_host="ui"),
     J.WAITING, f"NetworkServer/{HOST}/{INST}"),
    ("Accepted", S.LOG_MONITOR, dict(from_=S.JOB_SUBMISSION, from_host="lh"),
     J.READY, f"LogMonitor/{HOST}/{INST}"),
    ("Accepted", S.LRMS, dict(from_=S.LOG_MONITOR, from_host="lh"),
     J.SCHEDULED, f"LRMS/{HOST}/{INST}"),
    ("Refused", S.NETWORK_SERVER, dict(from_=S.USER_INTERFACE, from_host="ui",
                                       from_instance="cli", reason="no"),
     J.SUBMITTED, "UserInterface/ui/cli"),
    ("Refused", S.LOG_MONITOR, dict(from_=S.JOB_SUBMISSION, from_host="lh", reason="no"),
     J.READY, "JobController/lh/"),
    ("Refused", S.LRMS, dict(from_=S.LOG_MONITOR, from_host="lh", reason="no"),
     J.READY, "LogMonitor/lh/"),
    ("EnQueued", S.NETWORK_SERVER, dict(queue="/wm", job="j", result=EQ.OK),
     J.WAITING, f"/wm/{HOST}/{INST}"),
    ("EnQueued", S.WORKLOAD_MANAGER, dict(queue="/jc", job="j", result=EQ.OK),
     J.READY, f"/jc/{HOST}/{INST}"),
    ("EnQueued", S.LOG_MONITOR, dict(queue="/wm/in", result=EQ.OK),
     J.WAITING, f"/wm/in/{HOST}/{INST}"),
    ("EnQueued", S.NETWORK_SERVER, dict(queue="/wm", job="j", result=EQ.FAIL),
     J.WAITING, f"NetworkServer/{HOST}/{INST}"),
    ("EnQueued", S.WORKLOAD_MANAGER, dict(queue="/jc", job="j", result=EQ.FAIL),
     J.WAITING, f"WorkloadManager/{HOST}/{INST}"),
    ("EnQueued", S.LOG_MONITOR, dict(queue="/wm/in", result=EQ.FAIL),
     J.SUBMITTED, f"LogMonitor/{HOST}/{INST}"),
    ("DeQueued", S.WORKLOAD_MANAGER, dict(queue="q"), J.WAITING, f"WorkloadManager/{HOST}/{INST}"),
    ("DeQueued", S.JOB_SUBMISSION, dict(queue="q"), J.READY, f"JobController/{HOST}/{INST}"),
    ("HelperCall", S.BIG_HELPER, dict(helper_name="planner"), J.WAITING, f"planner/{HOST}/{INST}"),
    ("HelperReturn", S.BIG_HELPER, dict(helper_name="planner"),
     J.WAITING, f"WorkloadManager/{HOST}/{INST}"),
    ("Match", S.BIG_HELPER, dict(dest_id="ce"), J.WAITING, f"WorkloadManager/{HOST}/{INST}"),
    ("Pending", S.WORKLOAD_MANAGER, dict(reason="no match"),
     J.WAITING, f"WorkloadManager/{HOST}/{INST}"),
    ("Running", S.LRMS, dict(node="wn5"), J.RUNNING, "LRMS/worknode/wn5"),
]


@pytest.mark.parametrize("type_name,source,attrs,state,loc", ROWS,
                         ids=[f"{r[0]}-{r[1].name}-{r[2].get('result', '')}" for r in ROWS])
def test_transition_table_row(type_name, source, attrs, state, loc):
    """Each row of §4.3 from a freshly registered job: new state, location, timestamps."""
    job = Job()
    st = job.feed(type_name, source, code(ns=2, wm=1), **attrs)
    assert st.state == state and st.location == loc
    if state != J.SUBMITTED:
        assert st.state_enter_time == ts(2)
        assert st.state_enter_times[state] == BASE_TIME + 2
    if "reason" in attrs:
        assert st.reason == attrs["reason"]


def test_hand_over_data_parts():
    """§4.3 data parts of Accepted (ui_host, condorId, globusId) and Transfer (jdl only
    if unset, condor_jdl, rsl)."""
    job = Job()
    job.feed("Accepted", S.NETWORK_SERVER, code(ns=2), from_=S.USER_INTERFACE, from_host="ui1")
    job.feed("Accepted", S.LOG_MONITOR, code(ns=2, lm=1), from_=S.JOB_SUBMISSION,
             from_host="lh", local_jobid="c1")
    st = job.feed("Accepted", S.LRMS, code(ns=2, lm=1, lrms=1), from_=S.LOG_MONITOR,
                  from_host="lh", local_jobid="g1")
    assert (st.ui_host, st.condor_id, st.globus_id) == ("ui1", "c1", "g1")
    st = job.feed("Transfer", S.USER_INTERFACE, code(ns=2, lrms=2), destination=S.NETWORK_SERVER,
                  dest_host="wms", job="ui jdl", result=TR.OK)
    assert st.jdl == "[ Executable = \"/bin/true\" ]"  # jdl already set
    st = job.feed("Transfer", S.LOG_MONITOR, code(ns=2, lrms=3), destination=S.LRMS,
                  dest_host="ce", job="rsl!", result=TR.FAIL)
    assert st.rsl == "rsl!"


def test_transfer_from_ui_sets_jdl_when_unset():
    job = Job(jdl=None)
    st = job.feed("Transfer", S.USER_INTERFACE, code(ns=2), destination=S.NETWORK_SERVER,
                  dest_host="wms", job="ui jdl", result=TR.START)
    assert st.jdl == "ui jdl"


def test_enqueued_ns_fail_sets_jdl_only_when_unset():
    job = Job()
    st = job.feed("EnQueued", S.NETWORK_SERVER, code(ns=2), queue="q", job="other", result=EQ.FAIL)
    assert st.jdl == "[ Executable = \"/bin/true\" ]"
    st = job.feed("EnQueued", S.NETWORK_SERVER, code(ns=3), queue="q", job="other", result=EQ.OK)
    assert st.jdl == "other"


def test_lm_enqueued_marks_resubmitted_and_fail_keeps_state():
    job = Job()
    job.to_running()
    st = job.feed("EnQueued", S.LOG_MONITOR, cyc(lm=5), queue="/wm/in", result=EQ.OK)
    assert st.state == J.WAITING and st.resubmitted is True
    assert st.jw_status == StatJwStatus.UNKNOWN
    st = job.feed("EnQueued", S.LOG_MONITOR, cyc(lm=6), queue="/wm/in", result=EQ.FAIL,
                  reason="full")
    assert st.state == J.WAITING and st.reason == "full"
    assert st.location == f"LogMonitor/{HOST}/{INST}"


def test_match_and_running_fill_candidate_lists_with_duplicates():
    """§10.1.10: lists keep duplicates, in insertion order."""
    job = Job()
    job.feed("Match", S.WORKLOAD_MANAGER, code(ns=3, wm=1), dest_id="ce1")
    job.feed("Match", S.WORKLOAD_MANAGER, code(ns=3, wm=2), dest_id="ce2")
    st = job.feed("Match", S.WORKLOAD_MANAGER, code(ns=3, wm=3), dest_id="ce1")
    assert st.possible_destinations == ["ce1", "ce2", "ce1"] and st.destination == "ce1"
    job.feed("Running", S.LOG_MONITOR, code(ns=3, wm=3, lm=1), node="wn1")
    st = job.feed("Running", S.LRMS, code(ns=3, wm=3, lrms=1), node="wn1")
    assert st.possible_ce_nodes == ["wn1", "wn1"]


def test_late_jobwrapper_running_overwrites_ce_node():
    """§10.1.2 / P07: a delayed JobWrapper Running overwrites ce_node (not too old)."""
    job = Job()
    job.to_running(node="gt2 ce01")
    st = job.feed("Running", S.LRMS, cyc(lrms=1), node="wn017")
    assert st.ce_node == "wn017" and st.location == "LRMS/worknode/gt2 ce01"
    assert st.possible_ce_nodes == ["gt2 ce01", "wn017"]


def test_suspend_and_resume_only_when_running():
    job = Job()
    job.to_ready()
    st = job.feed("Suspend", S.LRMS, cyc(jss=1), reason="hold")
    assert st.suspended is False
    job.feed("Running", S.LRMS, cyc(jss=1, lrms=1), node="wn")
    st = job.feed("Suspend", S.LRMS, cyc(jss=1, lrms=2), reason="hold")
    assert st.suspended is True and st.suspend_reason == "hold"
    st = job.feed("Resume", S.LRMS, cyc(jss=1, lrms=3), reason="go")
    assert st.suspended is False and st.suspend_reason == "go"
    job.feed("Suspend", S.LRMS, cyc(jss=1, lrms=4), reason="hold again")
    st = job.feed("Done", S.LOG_MONITOR, cyc(jss=1, lm=1), status_code=DONE.OK, exit_code=0)
    assert st.suspended is False and st.suspend_reason is None  # §4.4: left Running


def test_state_reentry_overwrites_entry_time_and_update_time_may_go_back():
    """§10.1.11: timestamps are copied, never compared."""
    job = Job()
    job.feed("Pending", S.WORKLOAD_MANAGER, code(ns=3, wm=1), t=10, reason="a")
    job.feed("EnQueued", S.WORKLOAD_MANAGER, code(ns=3, wm=2), t=20, queue="q", job="j",
             result=EQ.OK)
    st = job.feed("Pending", S.WORKLOAD_MANAGER, code(ns=3, wm=3), t=5, reason="b")
    assert st.state_enter_times[J.WAITING] == BASE_TIME + 5
    assert st.last_update_time == ts(5) and st.state_enter_time == ts(5)


def test_purge_and_service_events_only_post_process():
    """Purge, ResourceUsage...: no status effect beyond lastUpdateTime/last_seqcode."""
    job = Job()
    job.to_running()
    st = job.feed("ResourceUsage", S.LRMS, cyc(lm=5), resource="cpu", quantity=1.0, unit="s")
    assert st.state == J.RUNNING and st.last_update_time == ts(job.t)
    st = job.feed("Purge", S.LB_SERVER, cyc(lm=6))
    assert st.state == J.RUNNING and job.internal["last_seqcode"] == cyc(lm=6)


def test_network_server_default_from_ns_events():
    """§4.4: an NS event names the network server when the job has none."""
    job = Job(ns=None)
    assert job.st.network_server == f"{HOST}:{INST}"
    st = apply_one(Job(ns=None, register=True).st, "Accepted", S.NETWORK_SERVER, code(ns=2),
                   from_=S.USER_INTERFACE, from_host="ui")
    assert st.network_server == f"{HOST}:{INST}"
    st = run(MACHINE, JobStatus(job_id=JID, owner=OWNER),
             event("RegJob", source=S.NETWORK_SERVER, seq=code(ns=1), jobtype=RegJobJobtype.SIMPLE))
    assert st.network_server == f"{HOST} "


# --- registration (§4.3 RegJob, §10.1.2, §10.1.6) ----------------------------------------------------

def test_regjob_data_part():
    parent = JobId.parse("https://lb.example.org:9000/parent")
    job = Job(parent=parent, seed="s1", jdl="[ j ]")
    st = job.st
    assert st.state == J.SUBMITTED and st.jobtype == StatJobtype.SIMPLE
    assert (st.jdl, st.network_server, st.parent_job, st.seed) == ("[ j ]", NS_URL, parent, "s1")
    assert st.state_enter_times[J.SUBMITTED] == BASE_TIME + 1
    assert st.children_hist is None


@pytest.mark.parametrize("jobtype,stat", [
    (RegJobJobtype.DAG, StatJobtype.DAG),
    (RegJobJobtype.PARTITIONED, StatJobtype.DAG),
    (RegJobJobtype.COLLECTION, StatJobtype.COLLECTION),
])
def test_regjob_of_a_parent_sets_histogram(jobtype, stat):
    st = Job(jobtype=jobtype, nsubjobs=3).st
    assert st.jobtype == stat and st.children_num == 3
    assert st.children_hist == [0] * 10 + [3, 0]


def test_regjob_partitionable_is_a_dag_without_histogram():
    st = Job(jobtype=RegJobJobtype.PARTITIONABLE, nsubjobs=3).st
    assert st.jobtype == StatJobtype.DAG and st.children_num == 3 and st.children_hist is None


def test_newer_regjob_puts_job_back_to_submitted():
    """§10.1.6."""
    job = Job()
    job.to_waiting()
    st = job.feed("RegJob", S.NETWORK_SERVER, code(ns=4), jdl="j2", ns=NS_URL,
                  jobtype=RegJobJobtype.SIMPLE)
    assert st.state == J.SUBMITTED and st.jdl == "j2"


def test_late_regjob_overwrites_registration_data():
    """§10.1.2: a repeated (late) RegJob overwrites jdl and network_server and resets
    parent_job when the attribute is absent."""
    parent = JobId.parse("https://lb.example.org:9000/parent")
    job = Job(parent=parent)
    job.to_waiting()
    st = job.feed("RegJob", S.NETWORK_SERVER, code(ns=1), jdl="again", ns="ns2",
                  jobtype=RegJobJobtype.SIMPLE)
    assert st.state == J.WAITING
    assert (st.jdl, st.network_server, st.parent_job) == ("again", "ns2", None)


def test_dag_parent_follows_its_own_events_and_keeps_histogram():
    """§5.4: a DAG's state follows its own events; the histogram (maintained by the
    server from the children) is left alone by the machine."""
    job = Job(jobtype=RegJobJobtype.DAG, nsubjobs=2)
    hist = [0] * 12
    hist[J.RUNNING] = hist[J.UNKNOWN] = 1
    job.st.children_hist = hist
    st = job.to_running()
    assert st.state == J.RUNNING and st.children_hist == hist
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.FAILED, reason="node")
    assert st.state == J.DONE and st.done_code == StatDoneCode.FAILED


# --- Done (§4.6, §10.1.1, §10.1.9, D5) ------------------------------------------------------------------

def test_done_ok():
    st = Job().to_done()
    assert st.state == J.DONE and st.done_code == StatDoneCode.OK and st.exit_code == 0
    assert st.location == "none" and st.jw_status == StatJwStatus.DONE and st.reason == "ok"


def test_done_ok_copies_exit_code():
    job = Job()
    job.to_running()
    assert job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=7).exit_code == 7


def test_done_failed_records_reason_with_destination():
    job = Job()
    job.to_running()
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.FAILED, exit_code=3,
                  reason="boom")
    assert st.state == J.DONE and st.done_code == StatDoneCode.FAILED and st.exit_code == 0
    assert st.failure_reasons == "boom [ce01.example.org:2119/pbs]"
    assert st.location == f"LogMonitor/{HOST}/{INST}"
    job.feed("Running", S.LOG_MONITOR, cyc(lm=5), node="wn")
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=6), status_code=DONE.FAILED, reason="again")
    assert st.failure_reasons == "boom [ce01.example.org:2119/pbs]\nagain [ce01.example.org:2119/pbs]"


def test_done_cancelled_makes_job_cancelled():
    job = Job()
    job.to_running()
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.CANCELLED, exit_code=143)
    assert st.state == J.CANCELLED and st.location == "none"
    assert st.done_code == StatDoneCode.CANCELLED and st.exit_code == 0


def test_done_failed_then_newer_running_goes_back_to_running():
    """§10.1.1: Done is not final; a newer Running revives the job while done_code,
    exit_code and failure_reasons stay; an older Running after Done is ignored."""
    job = Job()
    job.to_running()
    job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.FAILED, reason="cannot read JW output")
    st = job.feed("Running", S.LOG_MONITOR, cyc(lm=5), node="wn01", t=40)
    assert st.state == J.RUNNING and st.jw_status == StatJwStatus.WRAPPER_RUNNING
    assert st.state_enter_times[J.RUNNING] == BASE_TIME + 40
    assert st.done_code == StatDoneCode.FAILED and st.exit_code == 0
    assert st.failure_reasons.startswith("cannot read JW output")
    job.feed("Done", S.LOG_MONITOR, cyc(lm=6), status_code=DONE.OK, exit_code=0)
    st = job.feed("Running", S.LRMS, cyc(lrms=9), node="wn01")
    assert st.state == J.DONE


def test_delayed_done_failed_is_recorded_as_delayed_failure():
    """§10.1.9: Done/FAILED from an older cycle sets done_code FAILED and exit_code 0
    while the job runs, and appends the delayed-event text."""
    job = Job()
    job.to_running()
    job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=5)
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=2), status_code=DONE.FAILED, exit_code=1,
                  reason="old")
    assert st.state == J.DONE and st.location == "none"
    assert st.done_code == StatDoneCode.FAILED and st.exit_code == 0
    assert st.failure_reasons == "old [delayed event, destination unreliable]"


def test_jobwrapper_done_never_changes_state():
    """§4.6: Done from LRMS: usable → jw_status DONE, payload not running; no data part."""
    job = Job()
    job.to_running()
    job.feed("ReallyRunning", S.LRMS, cyc(lrms=1))
    st = job.feed("Done", S.LRMS, cyc(lm=3, lrms=5), status_code=DONE.FAILED, exit_code=9)
    assert st.state == J.RUNNING and st.jw_status == StatJwStatus.DONE
    assert st.payload_running is False
    assert st.done_code is None and st.exit_code == 0 and st.failure_reasons is None


def test_late_jobwrapper_done_has_no_effect():
    job = Job()
    job.to_done()
    before = snapshot(job.st)
    job.feed("Done", S.LRMS, cyc(lrms=2), status_code=DONE.OK, exit_code=0)
    assert snapshot(job.st) == before


def test_done_clears_payload_running_only_on_the_selected_branch():
    """§4.6: payload_running := false only when the Done is on the tagged branch."""
    job = Job()
    job.to_running()
    job.feed("ReallyRunning", S.LRMS, cyc(lm=3, lrms=1))
    assert job.st.payload_running is True
    # the job comes through the NS again: the branch tag is forgotten (§4.2)
    st = job.feed("Done", S.LOG_MONITOR, cyc(ns=4, lm=4), status_code=DONE.OK, exit_code=0)
    assert st.state == J.DONE and st.payload_running is True
    job2 = Job()
    job2.to_running()
    job2.feed("ReallyRunning", S.LRMS, cyc(lm=3, lrms=1))
    st = job2.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=0)
    assert st.payload_running is False


def test_done_killed_reproduces_upstream():
    """D5: usable Done/KILLED applies its state part, then stops: no done_code, no
    timestamps, no sequence bookkeeping."""
    job = Job()
    job.to_running()
    before = job.st
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.KILLED, reason="killed")
    assert st.state == J.DONE and st.jw_status == StatJwStatus.DONE and st.reason == "killed"
    assert st.location == f"LogMonitor/{HOST}/{INST}"
    assert st.done_code is None
    assert st.last_update_time == before.last_update_time
    assert st.state_enter_time == before.state_enter_time
    assert st.state_enter_times == before.state_enter_times
    assert st.internal == before.internal


def test_late_done_killed_has_no_effect():
    job = Job()
    job.to_done()
    before = snapshot(job.st)
    job.feed("Done", S.LOG_MONITOR, cyc(lm=2), status_code=DONE.KILLED, reason="killed")
    assert snapshot(job.st) == before


# --- Cancel, Abort, Clear (§4.7) ----------------------------------------------------------------------

def test_cancel_req_sets_cancelling_without_advancing_last_seqcode():
    job = Job()
    job.to_running()
    st = job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=4, lm=3), status_code=CANCEL.REQ,
                  reason="by user")
    assert st.cancelling is True and st.cancel_reason == "by user" and st.state == J.RUNNING
    assert job.internal["last_seqcode"] == cyc(lm=3)
    assert job.internal["last_cancel_seqcode"] == cyc(ns=4, lm=3)
    assert st.last_update_time == ts(job.t)
    # an ordinary event older than the cancel but newer than last_seqcode is usable
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.OK, exit_code=0)
    assert st.state == J.DONE


def test_cancel_done():
    job = Job()
    job.to_running()
    job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=4, lm=3), status_code=CANCEL.REQ)
    st = job.feed("Cancel", S.LOG_MONITOR, cyc(ns=4, lm=4), status_code=CANCEL.DONE,
                  reason="aborted by user")
    assert st.state == J.CANCELLED and st.cancelling is False and st.remove_from_proxy is True
    assert st.reason == "aborted by user" and st.location == "none"
    assert job.internal["last_seqcode"] == cyc(ns=4, lm=4)
    st = job.feed("Done", S.LOG_MONITOR, cyc(lm=5), status_code=DONE.CANCELLED, exit_code=143)
    assert st.state == J.CANCELLED and st.done_code == StatDoneCode.CANCELLED
    assert st.last_update_time == ts(job.t - 1)


def test_cancel_older_than_last_cancel_is_late():
    job = Job()
    job.to_running()
    job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=5, lm=3), status_code=CANCEL.REQ)
    st = job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=4, lm=3), status_code=CANCEL.ABORT,
                  reason="refused")
    assert st.cancelling is True and st.cancel_reason == "refused"


def test_cancel_abort_and_refuse():
    job = Job()
    job.to_running()
    job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=4, lm=3), status_code=CANCEL.REQ)
    assert job.feed("Cancel", S.WORKLOAD_MANAGER, cyc(ns=4, lm=4),
                    status_code=CANCEL.REFUSE).cancelling is True
    assert job.feed("Cancel", S.WORKLOAD_MANAGER, cyc(ns=4, lm=5),
                    status_code=CANCEL.ABORT).cancelling is False


def test_cancel_on_bad_branch_is_late():
    job = _shallow_job()
    job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=12),
             wn_seq=cyc(wm=11, jss=4, lm=7))
    st = job.feed("Cancel", S.NETWORK_SERVER, cyc(wm=17, jss=6, lm=13), status_code=CANCEL.REQ)
    assert st.cancelling is False
    st = job.feed("Cancel", S.NETWORK_SERVER, cyc(wm=11, jss=6, lm=13), status_code=CANCEL.REQ)
    assert st.cancelling is True


def test_cancel_done_after_done_cancelled_is_late():
    """§10.1.12: Cancel DONE after Done/CANCELLED is late, cancelling stays true."""
    job = Job()
    job.to_running()
    job.feed("Cancel", S.NETWORK_SERVER, cyc(ns=4, lm=3), status_code=CANCEL.REQ)
    job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.CANCELLED)
    st = job.feed("Cancel", S.LOG_MONITOR, cyc(ns=4, lm=5), status_code=CANCEL.DONE)
    assert st.state == J.CANCELLED and st.cancelling is True


@pytest.mark.parametrize("before", ["done", "cleared", "cancelled", "too-old"])
def test_wm_abort_always_applies(before):
    """§10.1.7: a WM Abort applies to Done/Cleared/Cancelled jobs and from older cycles;
    it performs the deep reset with its own code as the mark."""
    job = Job()
    job.to_done()
    if before == "cleared":
        job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=CLEAR.USER)
    elif before == "cancelled":
        job.feed("Cancel", S.LOG_MONITOR, cyc(ns=4, lm=9), status_code=CANCEL.DONE)
    elif before == "too-old":
        job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=9, lm=5), result=RESUB.WILLRESUB)
    st = job.feed("Abort", S.WORKLOAD_MANAGER, cyc(wm=4, jss=0), reason="expired")
    assert st.state == J.ABORTED and st.reason == "expired" and st.location == "none"
    assert st.remove_from_proxy is True and st.state_enter_time == ts(job.t)
    assert st.possible_destinations == [] and st.possible_ce_nodes == []
    assert job.internal["deep_resubmit_seqcode"] == cyc(wm=4, jss=0)


def test_abort_from_other_source_follows_classification():
    job = Job()
    job.to_done()
    job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=CLEAR.USER)
    st = job.feed("Abort", S.LOG_MONITOR, code(ui=9, ns=96671), reason="x")
    assert st.state == J.CLEARED


@pytest.mark.parametrize("reason,text,retrieved", [
    (CLEAR.USER, "user retrieved output sandbox", StatSandboxRetrieved.USER),
    (CLEAR.TIMEOUT, "timed out, resource purge forced", StatSandboxRetrieved.TIMEOUT),
    (CLEAR.NOOUTPUT, "no output was generated", StatSandboxRetrieved.NOOUTPUT),
])
def test_clear(reason, text, retrieved):
    job = Job()
    job.to_done()
    st = job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=reason)
    assert st.state == J.CLEARED and st.reason == text and st.sandbox_retrieved == retrieved
    assert st.location == "none" and st.remove_from_proxy is True


def test_clear_on_aborted_job_only_records_sandbox():
    """§10.1.15."""
    job = Job()
    job.feed("Abort", S.WORKLOAD_MANAGER, code(ns=3, wm=2), reason="no resources")
    st = job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=CLEAR.TIMEOUT)
    assert st.state == J.ABORTED and st.reason == "no resources"
    assert st.sandbox_retrieved == StatSandboxRetrieved.TIMEOUT


# --- resubmission and branches (§4.5, D12) ---------------------------------------------------------------

def _deep_resubmitted_job() -> Job:
    """A job that ran once (WM=5) and was resubmitted deeply by the WM (mark WM=7)."""
    job = Job()
    job.to_running()
    job.feed("Done", S.LOG_MONITOR, cyc(lm=4), status_code=DONE.FAILED, reason="failed")
    job.feed("EnQueued", S.LOG_MONITOR, cyc(lm=5), queue="/wm/in", result=EQ.OK)
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=5), result=RESUB.WILLRESUB)
    return job


def test_deep_resubmission_resets_branches():
    job = _deep_resubmitted_job()
    st = job.st
    assert st.possible_destinations == [] and st.possible_ce_nodes == []
    assert st.payload_running is False and st.destination == "ce01.example.org:2119/pbs"
    assert job.internal["deep_resubmit_seqcode"] == cyc(wm=7, lm=5)
    assert "branch_states" not in job.internal
    assert job.internal["resubmit_type"] == "WILLRESUB"


def test_events_before_the_deep_mark_are_too_old():
    """§4.5: too-old events are never usable; Match/Running don't overwrite destination
    and ce_node but the lists grow; ReallyRunning is ignored; Done/FAILED is recorded."""
    job = _deep_resubmitted_job()
    st = job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=6, lm=9), dest_id="old-ce")
    assert st.state == J.WAITING and st.destination == "ce01.example.org:2119/pbs"
    assert st.possible_destinations == ["old-ce"]
    st = job.feed("Running", S.LRMS, cyc(wm=5, lm=9, lrms=9), node="old-wn")
    assert st.state == J.WAITING and st.ce_node == "wn01.example.org"
    assert st.possible_ce_nodes == ["old-wn"]
    st = job.feed("ReallyRunning", S.LRMS, cyc(wm=5, lm=9, lrms=10))
    assert st.payload_running is False and "branch_tag_seqcode" not in job.internal
    st = job.feed("Done", S.LOG_MONITOR, cyc(wm=5, lm=9), status_code=DONE.FAILED, reason="late")
    assert st.state == J.WAITING
    assert st.failure_reasons.endswith("\nlate [delayed event, destination unreliable]")


def test_new_cycle_after_deep_resubmission():
    job = _deep_resubmitted_job()
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=9, lm=5), dest_id="ce02")
    st = job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=11, lm=5), queue="q", job="jdl2",
                  result=EQ.OK)
    assert st.state == J.READY and st.destination == "ce02" and st.possible_destinations == ["ce02"]
    assert st.done_code == StatDoneCode.FAILED  # persists until the next Done (§4.6)


def test_willresub_from_logmonitor_has_no_special_effect():
    job = Job()
    job.to_running()
    st = job.feed("Resubmission", S.LOG_MONITOR, cyc(lm=4), result=RESUB.WILLRESUB)
    assert st.possible_destinations == ["ce01.example.org:2119/pbs"]
    assert "deep_resubmit_seqcode" not in job.internal


def test_late_willresub_lowers_the_deep_mark():
    """§4.5: a late WILLRESUB from an older cycle lowers the mark again (upstream)."""
    job = _deep_resubmitted_job()
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=13, lm=5), result=RESUB.WILLRESUB)
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=5), result=RESUB.WILLRESUB)
    assert job.internal["deep_resubmit_seqcode"] == cyc(wm=7, lm=5)
    st = job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=9, lm=6), dest_id="ce-9")
    assert st.destination == "ce-9"


def test_wontresub_and_shallow():
    job = Job()
    job.to_running()
    st = job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=6, lm=4), result=RESUB.WONTRESUB,
                  reason="no retries left")
    assert st.reason == "no retries left" and job.internal["resubmit_type"] == "WONTRESUB"
    st = job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=4), result=RESUB.SHALLOW,
                  reason="token")
    assert st.reason == "no retries left" and job.internal["resubmit_type"] == "SHALLOW"
    assert st.possible_destinations == ["ce01.example.org:2119/pbs"]


def test_jobwrapper_reallyrunning_selects_its_branch():
    job = Job()
    job.to_scheduled()
    st = job.feed("ReallyRunning", S.LRMS, cyc(lrms=1))
    assert st.state == J.RUNNING and st.payload_running is True
    assert st.jw_status == StatJwStatus.PAYLOAD_RUNNING
    assert job.internal["branch_tag_seqcode"] == cyc(lrms=1)
    assert job.internal["last_branch_seqcode"] == cyc(lrms=1)


def test_late_reallyrunning_still_marks_payload_running_even_when_done():
    """§10.1.8: a late (not too old) ReallyRunning sets payload_running and
    jw_status even on a Done job; it tags the branch."""
    job = Job()
    job.to_done()
    st = job.feed("ReallyRunning", S.LRMS, cyc(lrms=2))
    assert st.state == J.DONE and st.payload_running is True
    assert st.jw_status == StatJwStatus.PAYLOAD_RUNNING
    assert st.last_update_time == ts(job.t - 1)
    # best effort (§4.5): the last usable event is on that branch, it becomes the position
    assert job.internal["last_branch_seqcode"] == job.internal["last_seqcode"] == cyc(lm=4)


def _shallow_job() -> Job:
    """Three shallow attempts: Match at WM=3/9/15, EnQueued+Running at WM=5/11/17."""
    job = Job()
    job.to_waiting()
    for k, (match_wm, run_wm, ce) in enumerate([(3, 5, "ce01"), (9, 11, "ce02"), (15, 17, "ce03")]):
        job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=match_wm, jss=2 * k, lm=2 * k), dest_id=ce)
        job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=run_wm, jss=2 * k, lm=2 * k), queue="q",
                 job=f"jdl-{ce}", result=EQ.OK)
        job.feed("Running", S.LOG_MONITOR, cyc(wm=run_wm, jss=2 * k + 2, lm=2 * k + 1),
                 node=f"wn-{ce}")
        if k < 2:
            job.feed("Resubmission", S.WORKLOAD_MANAGER,
                     cyc(wm=run_wm + 2, jss=2 * k + 2, lm=2 * k + 2), result=RESUB.SHALLOW)
    return job


def test_logmonitor_reallyrunning_selects_an_older_branch_and_restores_it():
    """§4.5 / P06: wn_seq names the second attempt; destination, ce_node and
    matched_jdl come back from its branch rows."""
    job = _shallow_job()
    st = job.st
    assert (st.destination, st.ce_node, st.matched_jdl) == ("ce03", "wn-ce03", "jdl-ce03")
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=12),
                  wn_seq=cyc(wm=11, jss=4, lm=7))
    assert st.state == J.RUNNING and st.payload_running is True
    assert (st.destination, st.ce_node, st.matched_jdl) == ("ce02", "wn-ce02", "jdl-ce02")
    assert st.possible_destinations == ["ce01", "ce02", "ce03"]
    assert job.internal["branch_tag_seqcode"] == cyc(wm=11, jss=4, lm=7)


def test_after_selection_other_branches_are_bad_and_the_tag_branch_finishes():
    """§4.5 "After selection": events of other WM counters are BAD_BRANCH (late, no
    destination overwrite, delayed failure); the tag branch is compared with the
    branch position only."""
    job = _shallow_job()
    job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=12),
             wn_seq=cyc(wm=11, jss=4, lm=7))
    st = job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=19, jss=6, lm=12), dest_id="ce04")
    assert st.destination == "ce02" and st.state == J.RUNNING
    assert st.possible_destinations[-1] == "ce04"
    st = job.feed("Done", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=13), status_code=DONE.FAILED,
                  reason="other")
    assert st.state == J.RUNNING and st.failure_reasons == "other [delayed event, destination unreliable]"
    st = job.feed("Done", S.LOG_MONITOR, cyc(wm=11, jss=4, lm=9), status_code=DONE.OK, exit_code=0)
    assert st.state == J.DONE and st.done_code == StatDoneCode.OK and st.payload_running is False
    assert job.internal["last_branch_seqcode"] == cyc(wm=11, jss=4, lm=9)


def test_reallyrunning_on_bad_branch_is_ignored():
    job = _shallow_job()
    job.feed("ReallyRunning", S.LRMS, cyc(wm=11, jss=4, lrms=1))
    before = job.st
    st = job.feed("ReallyRunning", S.LRMS, cyc(wm=17, jss=6, lrms=1))
    assert job.internal["branch_tag_seqcode"] == cyc(wm=11, jss=4, lrms=1)
    assert st.destination == before.destination


def test_branch_restore_without_a_tag_row_uses_the_highest_rows():
    """§4.5: when no row has the tag's WM counter, i = number of rows."""
    job = _shallow_job()
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=12),
                  wn_seq=cyc(wm=21, jss=9, lm=0))
    # rows 3,5,9,11,15,17: i = 6 → rows 15 (dest ce03) and 17 (ce, jdl of ce03)
    assert (st.destination, st.ce_node, st.matched_jdl) == ("ce03", "wn-ce03", "jdl-ce03")


def test_branch_restore_takes_rows_below_the_tag():
    """§4.5: rows i-2, i-1, i in this order; older values are overwritten."""
    job = _shallow_job()
    job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, jss=6, lm=12), wn_seq=cyc(wm=9))
    st = job.st  # tag row 9 (index 2): rows 3, 5, 9 → destination ce02 from 9, ce/jdl from 5
    assert (st.destination, st.ce_node, st.matched_jdl) == ("ce02", "wn-ce01", "jdl-ce01")


def test_deep_reset_keeps_branch_position_d12():
    """D12: the deep reset does not clear last_branch_seqcode, so a later LogMonitor
    ReallyRunning neither sets Running nor the branch position."""
    job = Job()
    job.to_scheduled()
    job.feed("ReallyRunning", S.LRMS, cyc(lrms=1))
    job.feed("EnQueued", S.LOG_MONITOR, cyc(lm=3), queue="/wm/in", result=EQ.OK)
    job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=3), result=RESUB.WILLRESUB)
    job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=11, lm=3), queue="q", job="j", result=EQ.OK)
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=11, lm=5), wn_seq=cyc(wm=11, lm=4))
    assert st.state == J.READY
    assert job.internal["last_branch_seqcode"] == cyc(lm=3)  # from before the reset
    assert job.internal["branch_tag_seqcode"] == cyc(wm=11, lm=4)
    assert st.payload_running is True


def test_reallyrunning_lm_unparsable_wn_seq_is_fine_once_positioned():
    """§4.5: wn_seq only has to parse while the tag or the position is missing."""
    job = Job()
    job.to_scheduled()
    job.feed("ReallyRunning", S.LRMS, cyc(lrms=1))
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(lm=5), wn_seq="junk")
    assert st.last_update_time == ts(job.t)


# --- user tags and payload ownership (§4.8) ----------------------------------------------------------

def test_user_tags_case_folding_and_per_tag_ordering():
    job = Job()
    job.to_running()
    st = job.feed("UserTag", S.APPLICATION, cyc(lrms=2, app=1), name="Progress", value="10%")
    assert st.user_tags == {"progress": "10%"}
    assert st.last_update_time == ts(job.t - 1)  # late (LM=0 < LM=3): not post-processed
    job.feed("UserTag", S.APPLICATION, cyc(lrms=2, app=3), name="PROGRESS", value="50%")
    st = job.feed("UserTag", S.APPLICATION, cyc(lrms=2, app=2), name="progress", value="30%")
    assert st.user_tags == {"progress": "50%"}
    st = job.feed("UserTag", S.APPLICATION, cyc(lrms=2, app=3), name="progress", value="55%")
    assert st.user_tags == {"progress": "50%"}  # equal code: not strictly greater


def test_usable_user_tag_advances_bookkeeping_and_tags_survive_terminal_states():
    job = Job()
    job.to_done()
    st = job.feed("UserTag", S.USER_INTERFACE, cyc(lm=5), name="a", value="1")
    assert st.last_update_time == ts(job.t) and job.internal["last_seqcode"] == cyc(lm=5)
    job.feed("Clear", S.NETWORK_SERVER, code(ui=9, ns=96670), reason=CLEAR.USER)
    st = job.feed("UserTag", S.APPLICATION, cyc(lrms=9, app=5), name="b", value="2")
    assert st.state == J.CLEARED and st.user_tags == {"a": "1", "b": "2"}


@pytest.mark.parametrize("order", ["grant-take", "take-grant"])
def test_payload_ownership_handover(order):
    job = Job()
    grant = ("GrantPayloadOwnership", S.USER_INTERFACE, code(ns=2))
    if order == "grant-take":
        job.feed(*grant, payload_owner="/CN=Pilot")
        st = run(MACHINE, job.st, make_event("TakePayloadOwnership", source=S.APPLICATION,
                                             seqcode=code(ns=3), timestamp=ts(9), user="/cn=pilot"))
    else:
        job.st = run(MACHINE, job.st, make_event("TakePayloadOwnership", source=S.APPLICATION,
                                                 seqcode=code(ns=3), timestamp=ts(9),
                                                 user="/CN=Pilot/CN=proxy"))
        st = job.feed(*grant, payload_owner="/CN=Pilot")
    assert st.payload_owner is not None and st.payload_owner.lower().startswith("/cn=pilot")
    assert st.internal["last_seqcode"] == code(ns=1)  # neither advances last_seqcode


def test_payload_ownership_needs_the_same_subject():
    job = Job()
    job.feed("GrantPayloadOwnership", S.USER_INTERFACE, code(ns=2), payload_owner="/CN=Pilot")
    job.feed("GrantPayloadOwnership", S.USER_INTERFACE, code(ns=3), payload_owner="/CN=Other")
    st = run(MACHINE, job.st, make_event("TakePayloadOwnership", source=S.APPLICATION,
                                         seqcode=code(ns=4), timestamp=ts(9), user="/CN=Pilot"))
    assert st.payload_owner is None  # the newer grant replaced the remembered one
    assert st.internal["payload_owner_pending"] == "/CN=Pilot"


def test_sandbox_links_transfer_jobs():
    job = Job()
    sb = ENUMS["SandboxSandboxType"]
    job.feed("Sandbox", S.USER_INTERFACE, code(ns=2), sandbox_type=sb.INPUT,
             transfer_job="https://lb.example.org:9000/isb")
    st = job.feed("Sandbox", S.USER_INTERFACE, code(ns=3), sandbox_type=sb.OUTPUT,
                  transfer_job="https://lb.example.org:9000/osb")
    assert str(st.isb_transfer).endswith("/isb") and str(st.osb_transfer).endswith("/osb")


# --- CREAM events on a WMS job (§4.9) -----------------------------------------------------------------

def _cream_job() -> Job:
    job = Job()
    job.to_ready()
    return job


def test_cream_store_and_call_move_the_job():
    job = _cream_job()
    seq = job.internal["last_seqcode"]  # CREAM components repeat the last code
    st = job.feed("CREAMStore", S.CREAM_INTERFACE, seq, command=CMD.CMDSTART,
                  result=ENUMS["CREAMStoreResult"].OK, reason="stored")
    assert st.state == J.WAITING and st.cream_state == StatCreamState["CREAM_PENDING"]
    assert st.reason == st.cream_reason == "stored"
    st = job.feed("CREAMCall", S.CREAM_EXECUTOR, seq, command=CMD.CMDSTART, callee=S.LRMS,
                  result=ENUMS["CREAMCallResult"].OK)
    assert st.state == J.SCHEDULED and st.cream_state == StatCreamState["CREAM_IDLE"]
    assert st.reason == "stored"
    st = job.feed("CREAMCall", S.CREAM_INTERFACE, seq, command=CMD.CMDCANCEL, callee=S.LRMS,
                  result=ENUMS["CREAMCallResult"].OK, reason="cancel it")
    assert st.cancelling is True and st.cream_cancelling is True and st.reason == "cancel it"


@pytest.mark.parametrize("new_state,state,jw,done_code", [
    ("RUNNING", J.RUNNING, StatJwStatus.WRAPPER_RUNNING, None),
    ("Really-Running", J.RUNNING, StatJwStatus.PAYLOAD_RUNNING, None),
    ("DONE-OK", J.DONE, None, StatDoneCode.OK),
    ("DONE-FAILED", J.DONE, None, StatDoneCode.FAILED),
    ("IDLE", J.SCHEDULED, StatJwStatus.UNKNOWN, None),
    ("ABORTED", J.ABORTED, None, None),
    ("CANCELLED", J.CANCELLED, None, None),
    ("PURGED", J.CLEARED, None, None),
    ("HELD", J.READY, None, None),
])
def test_cream_status_on_a_wms_job(new_state, state, jw, done_code):
    job = _cream_job()
    st = job.feed("CREAMStatus", S.CREAM_EXECUTOR, job.internal["last_seqcode"],
                  new_state=new_state, result=ENUMS["CREAMStatusResult"].DONE)
    assert st.state == state and st.cream_state == StatCreamState.from_text(new_state)
    if jw is not None:
        assert st.jw_status == jw
    assert st.done_code == done_code
    if done_code is not None:
        assert st.cream_done_code == done_code


def test_cream_status_arrived_and_unknown_state():
    job = _cream_job()
    seq = job.internal["last_seqcode"]
    st = job.feed("CREAMStatus", S.CREAM_EXECUTOR, seq, new_state="RUNNING",
                  result=ENUMS["CREAMStatusResult"].ARRIVED)
    assert st.state == J.READY and st.cream_state is None
    st = job.feed("CREAMStatus", S.CREAM_EXECUTOR, seq, new_state="DONE-OK",
                  result=ENUMS["CREAMStatusResult"].DONE)
    st = job.feed("CREAMStatus", S.CREAM_EXECUTOR, seq, new_state="Dreaming",
                  result=ENUMS["CREAMStatusResult"].DONE)
    assert st.state == J.DONE and st.cream_state is None


def test_cream_cancel_and_abort():
    job = _cream_job()
    seq = job.internal["last_seqcode"]
    st = job.feed("CREAMCancel", S.CREAM_EXECUTOR, seq,
                  status_code=ENUMS["CREAMCancelStatusCode"].REQ, reason="asked")
    assert st.state == J.READY and st.reason == st.cream_reason == "asked"
    st = job.feed("CREAMCancel", S.CREAM_EXECUTOR, seq,
                  status_code=ENUMS["CREAMCancelStatusCode"].DONE)
    assert st.state == J.CANCELLED and st.cream_state == StatCreamState["CREAM_ABORTED"]
    assert st.reason is None
    job2 = _cream_job()
    st = job2.feed("CREAMAbort", S.CREAM_INTERFACE, job2.internal["last_seqcode"], reason="lost")
    assert st.state == J.ABORTED and st.cream_state == StatCreamState["CREAM_ABORTED"]


def test_cream_data_part_applies_to_late_cream_events():
    """§4.9: the CREAM data part runs first, whatever the classification."""
    pytest.importorskip("lbtx.machines.cream")
    job = Job()
    job.to_done()
    st = job.feed("CREAMStatus", S.CREAM_EXECUTOR, cyc(lm=1), new_state="RUNNING",
                  result=ENUMS["CREAMStatusResult"].DONE, worker_node="wn-cream",
                  lrms_jobid="123.pbs")
    assert st.state == J.DONE and st.cream_state is None
    assert st.ce_node == "wn-cream" and st.local_id == "123.pbs"


def test_cream_types_from_wms_sources_get_no_cream_data_part():
    job = _cream_job()
    st = job.feed("CREAMStatus", S.LRMS, job.internal["last_seqcode"], new_state="RUNNING",
                  result=ENUMS["CREAMStatusResult"].DONE, worker_node="wn-cream")
    assert st.state == J.RUNNING and st.ce_node != "wn-cream"


def test_cream_suspend_resume_via_store():
    job = Job()
    job.to_running()
    seq = job.internal["last_seqcode"]
    ok = ENUMS["CREAMStoreResult"].OK
    assert job.feed("CREAMStore", S.CREAM_INTERFACE, seq, command=CMD.CMDSUSPEND,
                    result=ok).suspended is True
    assert job.feed("CREAMStore", S.CREAM_INTERFACE, seq, command=CMD.CMDRESUME,
                    result=ok).suspended is False


# --- further rules, each pinned by its own case -------------------------------------------------------

def test_lm_accepted_alone_zeroes_lm():
    """§4.4: the LogMonitor Accepted also zeroes LM, so a JobWrapper (LRMS) Accepted
    with LM=0 still moves the job to Scheduled."""
    job = Job()
    job.to_ready()
    job.feed("Accepted", S.LOG_MONITOR, cyc(lm=1), from_=S.JOB_SUBMISSION, from_host="lh")
    assert job.internal["last_seqcode"] == cyc(lm=0)
    st = job.feed("Accepted", S.LRMS, cyc(lrms=1), from_=S.LOG_MONITOR, from_host="lh")
    assert st.state == J.SCHEDULED


def test_grant_for_another_subject_drops_the_pending_take():
    """§4.8: a Grant that does not match the pending Take forgets the Take."""
    job = Job()
    job.st = run(MACHINE, job.st, make_event("TakePayloadOwnership", source=S.APPLICATION,
                                             seqcode=code(ns=2), timestamp=ts(5), user="/CN=Pilot"))
    job.feed("GrantPayloadOwnership", S.USER_INTERFACE, code(ns=3), payload_owner="/CN=Other")
    assert "payload_owner_pending" not in job.internal
    st = job.feed("GrantPayloadOwnership", S.USER_INTERFACE, code(ns=4), payload_owner="/CN=Pilot")
    assert st.payload_owner is None
    assert job.internal["payload_owner_unconfirmed"] == "/CN=Pilot"


def test_terminal_late_killed_done_does_not_forget_the_deep_mark():
    """D5 with a late KILLED: no effect at all, not even forgetting the deep mark for a
    code that entered the WMS again."""
    job = _deep_resubmitted_job()
    job.feed("Cancel", S.LOG_MONITOR, cyc(ns=4, wm=7, lm=6), status_code=CANCEL.DONE)
    assert job.st.state == J.CANCELLED and "deep_resubmit_seqcode" in job.internal
    before = snapshot(job.st)
    job.feed("Done", S.LOG_MONITOR, cyc(ns=5, wm=7, lm=7), status_code=DONE.KILLED)
    assert snapshot(job.st) == before


def test_branch_restore_uses_the_row_two_below_the_tag():
    """§4.5: row i-2 contributes what rows i-1 and i do not have (here matched_jdl)."""
    job = Job()
    job.to_waiting()
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=3, jss=0), dest_id="A")
    job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=5, jss=0), queue="q", job="jdl-A", result=EQ.OK)
    job.feed("Running", S.LOG_MONITOR, cyc(wm=5, lm=1), node="wn-A")
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=9, lm=1), dest_id="B")
    job.feed("Running", S.LOG_MONITOR, cyc(wm=11, lm=2), node="wn-B")
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=15, lm=2), dest_id="C")
    job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=17, lm=2), queue="q", job="jdl-C", result=EQ.OK)
    job.feed("Running", S.LOG_MONITOR, cyc(wm=17, lm=3), node="wn-C")
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=17, lm=4), wn_seq=cyc(wm=11, lm=2))
    assert (st.destination, st.ce_node, st.matched_jdl) == ("B", "wn-B", "jdl-A")


def test_branch_rows_are_sorted_by_wm_counter_before_restoring():
    """§4.5: rows created out of order (delayed events) are sorted first."""
    job = Job()
    job.to_waiting()
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=15, jss=0), dest_id="C")
    job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=17, jss=0), queue="q", job="jdl-C", result=EQ.OK)
    job.feed("Running", S.LOG_MONITOR, cyc(wm=17, lm=1), node="wn-C")
    job.feed("EnQueued", S.WORKLOAD_MANAGER, cyc(wm=11, jss=0), queue="q", job="jdl-B", result=EQ.OK)
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=9, jss=0), dest_id="B")
    job.feed("Match", S.WORKLOAD_MANAGER, cyc(wm=19, lm=1), dest_id="D")
    st = job.feed("ReallyRunning", S.LOG_MONITOR, cyc(wm=19, lm=2), wn_seq=cyc(wm=11, lm=0))
    # sorted rows 9, 11, 15, 17, 19: rows -1, 9, 11 → destination B (not C), jdl B
    assert (st.destination, st.matched_jdl) == ("B", "jdl-B")
    assert st.ce_node == "wn-C"


def test_deep_reset_stops_a_running_payload():
    job = Job()
    job.to_running()
    job.feed("ReallyRunning", S.LRMS, cyc(lm=3, lrms=1))
    assert job.st.payload_running is True
    st = job.feed("Resubmission", S.WORKLOAD_MANAGER, cyc(wm=7, lm=4), result=RESUB.WILLRESUB)
    assert st.payload_running is False and "branch_tag_seqcode" not in job.internal


def test_cream_start_call_must_come_from_the_executor_to_the_lrms():
    job = _cream_job()
    seq = job.internal["last_seqcode"]
    ok = ENUMS["CREAMCallResult"].OK
    assert job.feed("CREAMCall", S.CREAM_INTERFACE, seq, command=CMD.CMDSTART, callee=S.LRMS,
                    result=ok).state == J.READY
    assert job.feed("CREAMCall", S.CREAM_EXECUTOR, seq, command=CMD.CMDSTART,
                    callee=S.CREAM_INTERFACE, result=ok).state == J.READY
