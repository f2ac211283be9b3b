"""The Condor machine (jobtype CONDOR, state-machines.md §3.3, §7, D2, D3).

An event is LATE when the job's last_seqcode compares greater than the
event's Condor code (the comparison of §3.3, D2). A code that does not parse
compares as lower, so with a last_seqcode set it makes the event late; it is
never stored as last_seqcode. The "Condor source" of an event is the letter
after ``SRC=`` in its code (D3); the common ``source`` header is not used.
No terminal states, done_code is never set, the data part always runs, and a
job without a location gets ``this is CONDOR``.
"""

from __future__ import annotations

from lbtx.events import Event
from lbtx.machines.base import SimpleMachine, parse_condor
from lbtx.schema import ENUMS, JobState, StatJobtype
from lbtx.seqcode import condor_compare
from lbtx.status import JobStatus

__all__ = ["MACHINE", "CondorMachine", "DEFAULT_LOCATION", "condor_source"]

DEFAULT_LOCATION = "this is CONDOR"
_NOMATCH = ENUMS["CondorRejectStatusCode"].NOMATCH
#: Condor daemons named by the SRC letter.
SCHEDD, SHADOW, STARTD, STARTER = "C", "H", "S", "s"


def condor_source(seqcode) -> str | None:
    """The letter after ``SRC=`` in the code (D3), or ``None``."""
    if not isinstance(seqcode, str):
        return None
    i = seqcode.find("SRC=")
    return seqcode[i + 4] if 0 <= i < len(seqcode) - 4 else None


def _set_state(st: JobStatus, state, condor_status: str) -> None:
    st.state = state
    st.condor_status = condor_status


def _regjob(st: JobStatus, ev: Event, usable: bool) -> None:
    """RegJob: Submitted, Idle; data: jdl := jdl."""
    if usable:
        _set_state(st, JobState.SUBMITTED, "Idle")
    st.jdl = ev.jdl


def _match(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorMatch: Ready, Idle; data: condor_dest_host := dest_host if present."""
    if usable:
        _set_state(st, JobState.READY, "Idle")
    if ev.dest_host is not None:
        st.condor_dest_host = ev.dest_host


def _reject(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorReject: Aborted, Unexpanded; data: NOMATCH -> condor_reason."""
    if usable:
        _set_state(st, JobState.ABORTED, "Unexpanded")
    if ev.status_code == _NOMATCH:
        st.condor_reason = "No match found."


def _shadow_started(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorShadowStarted: Ready, Idle; data from the schedd: condor_shadow_pid."""
    if usable:
        _set_state(st, JobState.READY, "Idle")
    if condor_source(ev.seqcode) == SCHEDD:
        st.condor_shadow_pid = ev.shadow_pid


def _shadow_exited(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorShadowExited: Done, Completed; data from the shadow:
    condor_shadow_exit_status."""
    if usable:
        _set_state(st, JobState.DONE, "Completed")
    if condor_source(ev.seqcode) == SHADOW:
        st.condor_shadow_exit_status = ev.shadow_exit_status


def _starter_started(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorStarterStarted: from the startd Scheduled/Idle, from the starter
    Running/Running (others nothing); data from the starter: universe, starter pid."""
    src = condor_source(ev.seqcode)
    if usable:
        if src == STARTD:
            _set_state(st, JobState.SCHEDULED, "Idle")
        elif src == STARTER:
            _set_state(st, JobState.RUNNING, "Running")
    if src == STARTER:
        st.condor_universe = ev.universe
        st.condor_starter_pid = ev.starter_pid


def _starter_exited(st: JobStatus, ev: Event, usable: bool) -> None:
    """CondorStarterExited: Done, Completed; data from the startd: starter pid and
    exit status; from the starter: starter pid, job pid and job exit status."""
    if usable:
        _set_state(st, JobState.DONE, "Completed")
    src = condor_source(ev.seqcode)
    if src == STARTD:
        st.condor_starter_pid = ev.starter_pid
        st.condor_starter_exit_status = ev.starter_exit_status
    elif src == STARTER:
        st.condor_starter_pid = ev.starter_pid
        st.condor_job_pid = ev.job_pid
        st.condor_job_exit_status = ev.job_exit_status


class CondorMachine(SimpleMachine):
    """§7: Condor ordering, per-event rules, last_seqcode, default location."""

    name = "condor"
    job_types = (StatJobtype.CONDOR,)
    default_location = DEFAULT_LOCATION
    rules = {
        "RegJob": _regjob,
        "CondorMatch": _match,
        "CondorReject": _reject,
        "CondorShadowStarted": _shadow_started,
        "CondorShadowExited": _shadow_exited,
        "CondorStarterStarted": _starter_started,
        "CondorStarterExited": _starter_exited,
    }

    def is_usable(self, st: JobStatus, ev: Event) -> bool:
        """LATE when last_seqcode is set and compares greater than the event's code."""
        last = st.internal.get("last_seqcode")
        if last is None:
            return True
        last_code = parse_condor(last)
        if last_code is None:
            return True  # cannot happen for codes this machine stored
        code = parse_condor(ev.seqcode)
        return code is not None and condor_compare(last_code, code) <= 0

    def seqcode_to_keep(self, ev: Event) -> str | None:
        """Only a code that parses becomes last_seqcode."""
        return ev.seqcode if parse_condor(ev.seqcode) is not None else None


MACHINE = CondorMachine()
