"""The PBS/Torque machine (jobtype PBS, state-machines.md §3.2, §6, D1, D8).

An event is LATE when the job's last_seqcode compares greater than the
event's PBS code (five counters, lexicographic, all equal = equal, D1). A code
that does not parse compares as lower (formats.md §3.5), so with a
last_seqcode set it makes the event late; it is never stored as last_seqcode.
The data part of every rule runs whatever the classification. No terminal
states, no branches; after every event a job without a location gets
``this is PBS``.
"""

from __future__ import annotations

from lbtx.events import Event
from lbtx.machines.base import SimpleMachine, parse_pbs, tag_newer
from lbtx.machines.common import apply_user_tag
from lbtx.schema import ENUMS, JobState, Source, StatDoneCode, StatJobtype
from lbtx.status import JobStatus

__all__ = ["MACHINE", "PBSMachine", "DEFAULT_LOCATION", "PBS_STATE_LETTERS"]

DEFAULT_LOCATION = "this is PBS"
#: Torque job state number -> the qstat letter shown in pbs_state.
PBS_STATE_LETTERS = ("T", "Q", "H", "W", "R", "E", "C")

_MOMS = (Source.PBS_MOM, Source.PBS_SMOM)
_TRANSFER_OK = ENUMS["PBSTransferResult"].OK
_USAGE = ENUMS["PBSResourceUsageUsage"]
#: internal key of the "a MOM rerun is in progress" flag.
RERUN_FLAG = "pbs_reruning"


def _regjob(st: JobStatus, ev: Event, usable: bool) -> None:
    """RegJob: Submitted; data: network_server := ns."""
    if usable:
        st.state = JobState.SUBMITTED
    st.network_server = ev.ns


def _internal_state_change(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSInternalStateChange (usable only): pbs_state := letter of newstate (left
    alone outside 0-6, D8); pbs_substate := newsubstate when present."""
    if not usable:
        return
    new = ev.newstate
    if isinstance(new, int) and 0 <= new < len(PBS_STATE_LETTERS):
        st.pbs_state = PBS_STATE_LETTERS[new]
    sub = ev.newsubstate
    if isinstance(sub, int) and sub >= 0:
        st.pbs_substate = sub


def _transfer(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSTransfer data: result OK to the server -> location := dest_instance; to a
    MOM -> ce_node := dest_instance."""
    if ev.result != _TRANSFER_OK:
        return
    if ev.destination == Source.PBS_SERVER:
        st.location = ev.dest_instance
    elif ev.destination in _MOMS:
        st.ce_node = ev.dest_instance


def _accepted(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSAccepted: by the server -> Submitted, location := src_instance; by a MOM ->
    Scheduled, ce_node := src_instance."""
    if not usable:
        return
    if ev.source == Source.PBS_SERVER:
        st.state = JobState.SUBMITTED
        st.location = ev.src_instance
    elif ev.source in _MOMS:
        st.state = JobState.SCHEDULED
        st.ce_node = ev.src_instance


def _queued(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSQueued: Waiting; data from the server: pbs_queue := queue, pbs_owner and
    pbs_name := owner and name unless already set."""
    if usable:
        st.state = JobState.WAITING
    if ev.source != Source.PBS_SERVER:
        return
    st.pbs_queue = ev.queue
    if st.pbs_owner is None and ev.owner is not None:
        st.pbs_owner = ev.owner
    if st.pbs_name is None and ev.name is not None:
        st.pbs_name = ev.name


def _match(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSMatch: Ready; data: pbs_dest_host := dest_host if present."""
    if usable:
        st.state = JobState.READY
    if ev.dest_host is not None:
        st.pbs_dest_host = ev.dest_host


def _pending(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSPending: Waiting and the rerun flag cleared; data: pbs_reason := reason if
    present."""
    if usable:
        st.state = JobState.WAITING
        st.internal.pop(RERUN_FLAG, None)
    if ev.reason is not None:
        st.pbs_reason = ev.reason


def _run(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSRun: from the server Scheduled, from a MOM Running (other sources: no
    state effect); data: pbs_scheduler, pbs_dest_host if present, pbs_pid := pid."""
    if usable:
        if ev.source == Source.PBS_SERVER:
            st.state = JobState.SCHEDULED
        elif ev.source in _MOMS:
            st.state = JobState.RUNNING
    if ev.scheduler is not None:
        st.pbs_scheduler = ev.scheduler
    if ev.dest_host is not None:
        st.pbs_dest_host = ev.dest_host
    st.pbs_pid = ev.pid if isinstance(ev.pid, int) else 0


def _rerun(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSRerun: from the server Waiting; from a MOM Waiting and the rerun flag set."""
    if not usable:
        return
    if ev.source == Source.PBS_SERVER:
        st.state = JobState.WAITING
    elif ev.source in _MOMS:
        st.state = JobState.WAITING
        st.internal[RERUN_FLAG] = True


def _done(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSDone: from the server Done/OK whatever the exit status (a MOM's Done does
    not finish the job); data: pbs_exit_status := exit_status."""
    if usable and ev.source == Source.PBS_SERVER:
        st.state = JobState.DONE
        st.done_code = StatDoneCode.OK
    st.pbs_exit_status = ev.exit_status


def _resource_usage(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSResourceUsage data: REQUESTED -> pbs_resource_requested, USED ->
    pbs_resource_usage := resources."""
    if ev.usage == _USAGE.REQUESTED:
        st.pbs_resource_requested = ev.resources
    elif ev.usage == _USAGE.USED:
        st.pbs_resource_usage = ev.resources


def _error(st: JobStatus, ev: Event, usable: bool) -> None:
    """PBSError: Done/FAILED, pbs_state C; data: pbs_error_desc gets a line
    ``<TAB><error_desc>`` (newline-separated from the previous text)."""
    if usable:
        st.state = JobState.DONE
        st.done_code = StatDoneCode.FAILED
        st.pbs_state = "C"
    if ev.error_desc is None:
        return
    prev = st.pbs_error_desc
    st.pbs_error_desc = f"{prev}\n\t{ev.error_desc}" if prev is not None else f"\t{ev.error_desc}"


def _user_tag(st: JobStatus, ev: Event, usable: bool) -> None:
    """UserTag data: as gLite §4.8, ordered by the PBS code."""
    apply_user_tag(st, ev, tag_newer)


class PBSMachine(SimpleMachine):
    """§6: PBS ordering, per-event rules, last_seqcode, default location."""

    name = "pbs"
    job_types = (StatJobtype.PBS,)
    default_location = DEFAULT_LOCATION
    rules = {
        "RegJob": _regjob,
        "PBSInternalStateChange": _internal_state_change,
        "PBSTransfer": _transfer,
        "PBSAccepted": _accepted,
        "PBSQueued": _queued,
        "PBSMatch": _match,
        "PBSPending": _pending,
        "PBSRun": _run,
        "PBSRerun": _rerun,
        "PBSDone": _done,
        "PBSResourceUsage": _resource_usage,
        "PBSError": _error,
        "UserTag": _user_tag,
    }

    def is_usable(self, st: JobStatus, ev: Event) -> bool:
        """LATE when last_seqcode is set and greater than the event's code (§6)."""
        last = st.internal.get("last_seqcode")
        if last is None:
            return True
        last_code = parse_pbs(last)
        if last_code is None:
            return True  # cannot happen for codes this machine stored
        code = parse_pbs(ev.seqcode)
        return code is not None and not last_code > code

    def seqcode_to_keep(self, ev: Event) -> str | None:
        """Only a code that parses becomes last_seqcode."""
        return ev.seqcode if parse_pbs(ev.seqcode) is not None else None


MACHINE = PBSMachine()

