"""File-transfer, file-transfer-collection and virtual-machine machines: state-machines.md §9, D6."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from lbtx.jobid import JobId
from lbtx.machines import file_transfer, virtual_machine
from lbtx.machines.interfaces import IJobStateMachine
from lbtx.schema import (ENUMS, JobState, RegJobJobtype, Source, StatDoneCode, StatFtSandboxType,
                         StatJobtype, StatVmState)
from lbtx.status import JobStatus
from machine_support import BASE_TIME, event, run

FT = file_transfer.MACHINE
VM = virtual_machine.MACHINE
FT_RESULT = ENUMS["FileTransferResult"]
SANDBOX = ENUMS["SandboxSandboxType"]
RESUB = ENUMS["ResubmissionResult"]
VMDONE = ENUMS["VMDoneStatusCode"]
PARENT = JobId.parse("https://lb.example.org:9000/parentFTC")
COMPUTE = "https://lb.example.org:9000/computeJob"
CLOUD, VMM, VMSYS = Source.CLOUD_MANAGER, Source.VM_MANAGER, Source.VM_SYSTEM


def glite(ui: int) -> str:
    return f"UI={ui:06d}:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


def ev(type_name, source=Source.APPLICATION, t=1, seq=None, **attrs):
    return event(type_name, source=source, seq=seq or glite(t), t=t, **attrs)


def vm_state(name: str):
    return StatVmState[f"VM_{name.upper()}"]


@pytest.mark.parametrize("machine,name,types", [
    (FT, "file_transfer", (StatJobtype.FILE_TRANSFER, StatJobtype.FILE_TRANSFER_COLLECTION)),
    (VM, "virtual_machine", (StatJobtype.VIRTUAL_MACHINE,)),
])
def test_machines_provide_the_interface(machine, name, types):
    assert verifyObject(IJobStateMachine, machine)
    assert machine.name == name and machine.job_types == types


# --- FILE_TRANSFER ------------------------------------------------------------------

@pytest.fixture
def ft() -> JobStatus:
    return run(FT, JobStatus(owner="/CN=test"),
               ev("RegJob", t=0, ns="ns", parent=PARENT, jobtype=RegJobJobtype.FILE_TRANSFER))


def test_ft_regjob(ft):
    assert (ft.state, ft.jobtype, ft.parent_job) == (JobState.SUBMITTED, StatJobtype.FILE_TRANSFER, PARENT)
    assert ft.location == "this is FILE TRANSFER"
    assert ft.children_hist is None
    assert ft.internal["last_seqcode"] == glite(0)


def test_ft_repeated_regjob_resets_parent(ft):
    st = run(FT, ft, ev("RegJob", t=2, ns="ns", jobtype=RegJobJobtype.FILE_TRANSFER))
    assert st.parent_job is None


def test_ft_register(ft):
    st = run(FT, ft, ev("FileTransferRegister", src="gsiftp://a/f", dest="gsiftp://b/f"))
    assert (st.ft_src, st.ft_dest, st.state) == ("gsiftp://a/f", "gsiftp://b/f", JobState.SUBMITTED)


def test_ft_transfer_start_ok(ft):
    st = run(FT, ft, ev("FileTransfer", t=5, result=FT_RESULT.START))
    assert st.state == JobState.RUNNING and st.state_enter_times[JobState.RUNNING] == BASE_TIME + 5
    st = run(FT, st, ev("FileTransfer", t=6, result=FT_RESULT.OK))
    assert (st.state, st.done_code, st.failure_reasons) == (JobState.DONE, StatDoneCode.OK, None)


def test_ft_transfer_fail(ft):
    st = run(FT, ft, ev("FileTransfer", result=FT_RESULT.FAIL, reason="no space"))
    assert (st.state, st.done_code, st.failure_reasons) == (JobState.DONE, StatDoneCode.FAILED, "no space")
    st = run(FT, st, ev("FileTransfer", t=2, result=FT_RESULT.FAIL, reason="again"))
    assert st.failure_reasons == "again"  # replaced, not appended


def test_ft_abort(ft):
    st = run(FT, ft, ev("Abort", reason="gave up"))
    assert (st.state, st.remove_from_proxy, st.reason, st.location) == (
        JobState.ABORTED, True, "gave up", "none")


@pytest.mark.parametrize("machine_fixture", ["ft", "ftc"])
def test_sandbox_type_and_compute_job(request, machine_fixture):
    st = request.getfixturevalue(machine_fixture)
    st = run(FT, st, ev("Sandbox", sandbox_type=SANDBOX.OUTPUT, compute_job=COMPUTE))
    assert (st.ft_sandbox_type, st.ft_compute_job) == (StatFtSandboxType.OUTPUT, JobId.parse(COMPUTE))
    st = run(FT, st, ev("Sandbox", t=2, sandbox_type=SANDBOX.INPUT))
    assert (st.ft_sandbox_type, st.ft_compute_job) == (StatFtSandboxType.INPUT, JobId.parse(COMPUTE))
    st = run(FT, st, ev("Sandbox", t=3, compute_job="not a job id"))
    assert (st.ft_sandbox_type, st.ft_compute_job) == (StatFtSandboxType.INPUT, None)


def test_ft_resubmission_wontresub_sets_reason(ft):
    st = run(FT, ft, ev("Resubmission", result=RESUB.WILLRESUB, reason="will"))
    assert st.reason is None
    st = run(FT, st, ev("Resubmission", t=2, result=RESUB.WONTRESUB, reason="won't"))
    assert st.reason == "won't" and st.state == JobState.SUBMITTED


def test_ft_has_no_ordering(ft):
    st = run(FT, ft, ev("FileTransfer", t=5, result=FT_RESULT.OK),
             ev("FileTransfer", t=3, seq=glite(0), result=FT_RESULT.START))
    assert st.state == JobState.RUNNING
    assert st.internal["last_seqcode"] == glite(0)
    assert st.last_update_time.sec == BASE_TIME + 3


def test_ft_ignores_collection_events(ft):
    st = run(FT, ft, ev("CollectionState", state="Done", done_code=0, histogram="", child=PARENT,
                        child_event="Done"))
    assert st.state == JobState.SUBMITTED


# --- FILE_TRANSFER_COLLECTION ------------------------------------------------------------

@pytest.fixture
def ftc() -> JobStatus:
    return run(FT, JobStatus(owner="/CN=test"),
               ev("RegJob", t=0, ns="ns", nsubjobs=3, seed="s33d",
                  jobtype=RegJobJobtype.FILE_TRANSFER_COLLECTION))


def collection_state(state, t=1, done_code=0):
    return ev("CollectionState", source=Source.LB_SERVER, t=t, state=state, done_code=done_code,
              histogram="...", child=PARENT, child_event="FileTransfer")


def test_ftc_regjob(ftc):
    assert (ftc.state, ftc.jobtype) == (JobState.SUBMITTED, StatJobtype.FILE_TRANSFER_COLLECTION)
    hist = [0] * 12
    hist[JobState.UNKNOWN] = 3
    assert (ftc.children_num, ftc.children_hist, ftc.seed) == (3, hist, "s33d")
    assert ftc.location == "this is FILE TRANSFER"


def test_ftc_collection_state_running_then_done(ftc):
    st = run(FT, ftc, collection_state("Running", t=4, done_code=1))
    assert (st.state, st.done_code) == (JobState.RUNNING, None)
    assert st.state_enter_times[JobState.RUNNING] == BASE_TIME + 4
    st = run(FT, st, collection_state("Done", t=5, done_code=int(StatDoneCode.OK)))
    assert (st.state, st.done_code) == (JobState.DONE, StatDoneCode.OK)
    assert st.internal["last_seqcode"] == glite(5)


def test_ftc_collection_state_unknown_name_has_no_effect(ftc):
    st = run(FT, ftc, collection_state("Exploded", t=4))
    assert st.state == JobState.SUBMITTED


def test_ftc_ignores_file_transfer_events(ftc):
    st = run(FT, ftc, ev("FileTransfer", result=FT_RESULT.START), ev("Abort", t=2, reason="x"))
    assert (st.state, st.reason, st.location) == (JobState.SUBMITTED, None, "this is FILE TRANSFER")


# --- VIRTUAL_MACHINE ------------------------------------------------------------------

@pytest.fixture
def vm() -> JobStatus:
    return run(VM, JobStatus(owner="/CN=registrar"),
               ev("RegJob", source=CLOUD, t=0, ns="one", jobtype=RegJobJobtype.VIRTUAL_MACHINE))


def test_vm_regjob(vm):
    assert (vm.state, vm.vm_state, vm.jobtype) == (JobState.SUBMITTED, vm_state("pending"),
                                                    StatJobtype.VIRTUAL_MACHINE)
    assert vm.location == "this is VIRTUAL MACHINE"
    assert "last_seqcode" not in vm.internal


def test_vm_create(vm):
    st = run(VM, vm, ev("VMCreate", source=CLOUD, require="4 cpu", id="42", name="web",
                        owner="/CN=vmowner", hostname="web.example.org", manager="one",
                        image="debian.img"))
    assert (st.vm_require, st.vm_id, st.vm_name, st.vm_image) == ("4 cpu", "42", "web", "debian.img")
    assert (st.owner, st.vm_hostname, st.destination) == ("/CN=vmowner", "web.example.org", "web.example.org")
    st = run(VM, st, ev("VMCreate", source=CLOUD, t=2, id="43"))
    assert (st.vm_id, st.vm_image, st.vm_name, st.owner) == ("43", "debian.img", "web", "/CN=vmowner")


def test_vm_host_and_image_d6(vm):
    st = run(VM, vm, ev("VMHost", source=CLOUD, hostname="phy7"), ev("VMImage", source=CLOUD, t=2, image="img2"))
    assert (st.vm_phy_hostname, st.vm_image) == ("phy7", "img2")
    st = run(VM, st, ev("VMHost", source=CLOUD, t=3), ev("VMImage", source=CLOUD, t=4))
    assert (st.vm_phy_hostname, st.vm_image) == ("phy7", "img2")


@pytest.mark.parametrize("source,expected", [(CLOUD, "running"), (VMM, "running"),
                                             (VMSYS, "really-running"), (Source.APPLICATION, "pending")])
def test_vm_running(vm, source, expected):
    st = run(VM, vm, ev("VMRunning", source=source, t=3))
    assert (st.state, st.vm_state) == (JobState.RUNNING, vm_state(expected))


def test_vm_manager_running_does_not_demote_really_running(vm):
    st = run(VM, vm, ev("VMRunning", source=VMSYS), ev("VMRunning", source=CLOUD, t=2))
    assert st.vm_state == vm_state("really-running")


def test_vm_shutdown_from_cloud_manager(vm):
    st = run(VM, vm, ev("VMRunning", source=VMSYS), ev("VMShutdown", source=CLOUD, t=2, usage="cpu=5"))
    assert (st.state, st.vm_state, st.vm_system_halting, st.vm_usage) == (
        JobState.WAITING, vm_state("shutdown"), False, "cpu=5")


def test_vm_shutdown_from_vm_manager_sets_halting_only(vm):
    st = run(VM, vm, ev("VMRunning", source=VMSYS), ev("VMShutdown", source=VMM, t=2))
    assert (st.state, st.vm_state, st.vm_system_halting, st.vm_usage) == (
        JobState.RUNNING, vm_state("really-running"), True, None)


def test_vm_shutdown_from_vm_system_demotes_really_running(vm):
    st = run(VM, vm, ev("VMRunning", source=VMSYS), ev("VMShutdown", source=VMSYS, t=2, usage="u"))
    assert (st.state, st.vm_state, st.vm_system_halting, st.vm_usage) == (
        JobState.RUNNING, vm_state("running"), True, "u")


def test_vm_stop_and_resume(vm):
    st = run(VM, vm, ev("VMRunning", source=CLOUD), ev("VMShutdown", source=VMM, t=2),
             ev("VMStop", source=CLOUD, t=3))
    assert (st.state, st.vm_state, st.vm_system_halting) == (JobState.WAITING, vm_state("stopped"), True)
    st = run(VM, st, ev("VMResume", source=CLOUD, t=4))
    assert (st.state, st.vm_state, st.vm_system_halting) == (JobState.WAITING, vm_state("pending"), False)


@pytest.mark.parametrize("code,vm_name,done", [
    (VMDONE.OK, "done", StatDoneCode.OK), (VMDONE.DELETE, "done", StatDoneCode.CANCELLED),
    (VMDONE.FAILURE, "failure", StatDoneCode.FAILED),
])
def test_vm_done(vm, code, vm_name, done):
    st = run(VM, vm, ev("VMDone", source=CLOUD, t=7, status_code=code, usage="total"))
    assert (st.state, st.vm_state, st.done_code, st.vm_usage) == (JobState.DONE, vm_state(vm_name), done, "total")
    assert st.state_enter_times[JobState.DONE] == BASE_TIME + 7


def test_vm_done_without_status_code_stores_usage_only(vm):
    st = run(VM, vm, ev("VMDone", source=CLOUD, usage="u"))
    assert (st.state, st.vm_state, st.done_code, st.vm_usage) == (
        JobState.SUBMITTED, vm_state("pending"), None, "u")


def test_vm_keeps_no_sequence_code_and_ignores_order(vm):
    st = run(VM, vm, ev("VMRunning", source=CLOUD, t=5, seq=glite(9)),
             ev("VMStop", source=CLOUD, t=6, seq=glite(1)))
    assert st.state == JobState.WAITING and "last_seqcode" not in st.internal
    assert st.last_update_time.sec == BASE_TIME + 6


def test_vm_ignores_other_events(vm):
    st = run(VM, vm, ev("UserTag", name="a", value="b"), ev("Abort", t=2, reason="r"))
    assert (st.state, st.user_tags, st.reason) == (JobState.SUBMITTED, None, None)
    assert st.last_update_time.sec == BASE_TIME + 2


# --- robustness -------------------------------------------------------------------------

@pytest.mark.parametrize("machine,jobtype", [(FT, RegJobJobtype.FILE_TRANSFER),
                                             (FT, RegJobJobtype.FILE_TRANSFER_COLLECTION),
                                             (VM, RegJobJobtype.VIRTUAL_MACHINE)])
def test_odd_events_never_raise(machine, jobtype):
    st = run(machine, JobStatus(), ev("VMRunning"))  # before registration: ignored
    assert st.state == JobState.UNDEFINED and st.location is None
    st = run(machine, st, ev("RegJob", jobtype=jobtype, nsubjobs=-4), ev("CollectionState"),
             ev("Sandbox"), ev("FileTransfer"), ev("VMCreate"), ev("VMShutdown"), ev("VMDone"),
             ev("FileTransferRegister"), ev("Resubmission"))
    assert st.state == JobState.SUBMITTED
