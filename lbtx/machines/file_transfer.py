"""File-transfer machines: FILE_TRANSFER and FILE_TRANSFER_COLLECTION (state-machines.md §9).

No ordering: every event is usable, in arrival order. Post-processing keeps
last_seqcode, lastUpdateTime and stateEnterTime(s); a job without a location
gets ``this is FILE TRANSFER``. One :data:`MACHINE` serves both job types and
picks the rule table by the job's ``jobtype`` (for a first RegJob, by the
jobtype it registers). The collection's own state follows the CollectionState
events the server generates from its children (§5.3, done by acceptance).
"""

from __future__ import annotations

from lbtx.errors import LBFormatError
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.machines.base import SimpleMachine
from lbtx.schema import ENUMS, JobState, StatDoneCode, StatFtSandboxType, StatJobtype
from lbtx.status import HIST_SIZE, JobStatus

__all__ = ["MACHINE", "FileTransferMachine", "DEFAULT_LOCATION"]

DEFAULT_LOCATION = "this is FILE TRANSFER"
_FT = ENUMS["FileTransferResult"]
_SANDBOX = ENUMS["SandboxSandboxType"]
_WONTRESUB = ENUMS["ResubmissionResult"].WONTRESUB
_SANDBOX_TYPES = {_SANDBOX.INPUT: StatFtSandboxType.INPUT, _SANDBOX.OUTPUT: StatFtSandboxType.OUTPUT}


def _parse_jobid(text) -> JobId | None:
    """``text`` as a job id, or ``None`` when it is not one."""
    try:
        return JobId.parse(text)
    except LBFormatError:
        return None


def _done_code(value) -> StatDoneCode | None:
    """``value`` as a StatDoneCode, or ``None`` (unset) when it is not one."""
    try:
        return StatDoneCode(value)
    except ValueError:
        return None


# --- rules shared by both job types ----------------------------------------------

def _sandbox(st: JobStatus, ev: Event, usable: bool) -> None:
    """Sandbox: ft_sandbox_type := INPUT/OUTPUT; ft_compute_job := compute_job when
    present (unset when it is not a job id, as upstream)."""
    sandbox_type = _SANDBOX_TYPES.get(ev.sandbox_type)
    if sandbox_type is not None:
        st.ft_sandbox_type = sandbox_type
    if ev.compute_job is not None:
        st.ft_compute_job = _parse_jobid(ev.compute_job)


# --- FILE_TRANSFER -----------------------------------------------------------------

def _ft_regjob(st: JobStatus, ev: Event, usable: bool) -> None:
    """RegJob: Submitted; parent_job := parent (unset when absent)."""
    st.state = JobState.SUBMITTED
    st.parent_job = ev.parent


def _ft_register(st: JobStatus, ev: Event, usable: bool) -> None:
    """FileTransferRegister: ft_src := src, ft_dest := dest."""
    st.ft_src = ev.src
    st.ft_dest = ev.dest


def _ft_transfer(st: JobStatus, ev: Event, usable: bool) -> None:
    """FileTransfer: START -> Running; OK -> Done/OK; FAIL -> Done/FAILED with
    failure_reasons := reason."""
    if ev.result == _FT.START:
        st.state = JobState.RUNNING
    elif ev.result == _FT.OK:
        st.state = JobState.DONE
        st.done_code = StatDoneCode.OK
    elif ev.result == _FT.FAIL:
        st.state = JobState.DONE
        st.done_code = StatDoneCode.FAILED
        st.failure_reasons = ev.reason


def _ft_abort(st: JobStatus, ev: Event, usable: bool) -> None:
    """Abort: Aborted, remove_from_proxy, reason := reason, location ``none``."""
    st.state = JobState.ABORTED
    st.remove_from_proxy = True
    st.reason = ev.reason
    st.location = "none"


def _ft_resubmission(st: JobStatus, ev: Event, usable: bool) -> None:
    """Resubmission WONTRESUB: reason := reason."""
    if ev.result == _WONTRESUB:
        st.reason = ev.reason


FILE_TRANSFER_RULES = {
    "RegJob": _ft_regjob,
    "FileTransferRegister": _ft_register,
    "FileTransfer": _ft_transfer,
    "Abort": _ft_abort,
    "Sandbox": _sandbox,
    "Resubmission": _ft_resubmission,
}


# --- FILE_TRANSFER_COLLECTION ------------------------------------------------------

def _ftc_regjob(st: JobStatus, ev: Event, usable: bool) -> None:
    """RegJob: Submitted; children_num := nsubjobs, children_hist := {Unknown: n};
    seed := seed (§5.1)."""
    st.state = JobState.SUBMITTED
    n = ev.nsubjobs if isinstance(ev.nsubjobs, int) and ev.nsubjobs > 0 else 0
    st.children_num = n
    hist = [0] * HIST_SIZE
    hist[int(JobState.UNKNOWN)] = n
    st.children_hist = hist
    st.seed = ev.seed


def _ftc_collection_state(st: JobStatus, ev: Event, usable: bool) -> None:
    """CollectionState: state := the state named in ``state``; done_code := done_code
    when that state is Done. An unknown state name has no effect."""
    state = JobState.from_text(ev.state) if isinstance(ev.state, str) else None
    if state is None or state == JobState.UNDEFINED:
        return
    st.state = state
    if state == JobState.DONE:
        st.done_code = _done_code(ev.done_code)


FILE_TRANSFER_COLLECTION_RULES = {
    "RegJob": _ftc_regjob,
    "Sandbox": _sandbox,
    "CollectionState": _ftc_collection_state,
}


class FileTransferMachine(SimpleMachine):
    """§9: both file-transfer job types, dispatching on ``jobtype``."""

    name = "file_transfer"
    job_types = (StatJobtype.FILE_TRANSFER, StatJobtype.FILE_TRANSFER_COLLECTION)
    default_location = DEFAULT_LOCATION
    rules = FILE_TRANSFER_RULES

    def rules_for(self, st: JobStatus) -> dict:
        """The collection's rules for FILE_TRANSFER_COLLECTION jobs, else the transfer's."""
        if st.jobtype == StatJobtype.FILE_TRANSFER_COLLECTION:
            return FILE_TRANSFER_COLLECTION_RULES
        return FILE_TRANSFER_RULES


MACHINE = FileTransferMachine()
