"""The CREAM machine (jobtype CREAM, state-machines.md §8, §10.1 item 14, D4).

No ordering: every event is usable, in arrival order, and there are no
terminal states (a delayed CREAM status revives a cancelled job). For each
event the state part (§8.1) runs, then the post-processing, then the data
part (§8.2). :func:`apply_data_part` is the data part alone; the gLite machine
calls it for CREAM-sourced events of WMS jobs (§4.9).
"""

from __future__ import annotations

from lbtx.events import Event
from lbtx.machines.base import SimpleMachine, tag_newer
from lbtx.machines.common import apply_user_tag
from lbtx.schema import ENUMS, JobState, Source, StatCreamState, StatDoneCode, StatJobtype, StatJwStatus
from lbtx.status import JobStatus

__all__ = ["MACHINE", "CreamMachine", "apply_data_part", "DEFAULT_LOCATION"]

DEFAULT_LOCATION = "this is CREAM"

_CMD = ENUMS["CREAMStoreCommand"]
_STORE_OK = ENUMS["CREAMStoreResult"].OK
_CALL_OK = ENUMS["CREAMCallResult"].OK
_CANCEL_DONE = ENUMS["CREAMCancelStatusCode"].DONE
_STATUS_DONE = ENUMS["CREAMStatusResult"].DONE

_CS = StatCreamState
#: CREAMStatus new_state -> (job state, jw_status, done code) it implies (§8.1);
#: registered and held set only cream_state.
CREAM_TO_LB = {
    _CS["CREAM_PENDING"]: (JobState.WAITING, None, None),
    _CS["CREAM_IDLE"]: (JobState.SCHEDULED, None, None),
    _CS["CREAM_RUNNING"]: (JobState.RUNNING, StatJwStatus.WRAPPER_RUNNING, None),
    _CS["CREAM_REALLY-RUNNING"]: (JobState.RUNNING, StatJwStatus.PAYLOAD_RUNNING, None),
    _CS["CREAM_DONE-OK"]: (JobState.DONE, None, StatDoneCode.OK),
    _CS["CREAM_DONE-FAILED"]: (JobState.DONE, None, StatDoneCode.FAILED),
    _CS["CREAM_ABORTED"]: (JobState.ABORTED, None, None),
    _CS["CREAM_CANCELLED"]: (JobState.CANCELLED, None, None),
    _CS["CREAM_PURGED"]: (JobState.CLEARED, None, None),
}


# --- data part (§8.2) -----------------------------------------------------------

def c_atoi(text: str) -> int:
    """The integer prefix of ``text`` as C ``atoi`` reads it (0 when there is none)."""
    s = text.lstrip(" \t\n\r\f\v")
    end = 1 if s[:1] in ("+", "-") else 0
    while end < len(s) and s[end].isascii() and s[end].isdigit():
        end += 1
    digits = s[:end]
    return int(digits) if digits.lstrip("+-") else 0


def _data_regjob(st: JobStatus, ev: Event) -> None:
    """RegJob: cream_owner := owner; jdl, cream_jdl := jdl; cream_endpoint,
    destination, network_server := ns (each only when present)."""
    if st.owner is not None:
        st.cream_owner = st.owner
    if ev.jdl is not None:
        st.jdl = st.cream_jdl = ev.jdl
    if ev.ns is not None:
        st.cream_endpoint = st.destination = st.network_server = ev.ns


def _data_accepted(st: JobStatus, ev: Event) -> None:
    """CREAMAccepted: cream_id := globusId := local_jobid."""
    st.cream_id = st.globus_id = ev.local_jobid


def _data_status(st: JobStatus, ev: Event) -> None:
    """CREAMStatus with result DONE: exit code, worker node, LRMS id, failure reason.
    A second failure reason is appended after a newline (decision D4)."""
    if ev.result != _STATUS_DONE:
        return
    if ev.exit_code is not None and ev.exit_code != "N/A":
        st.cream_exit_code = st.exit_code = c_atoi(ev.exit_code)
    if ev.worker_node is not None:
        st.cream_node = st.ce_node = ev.worker_node
    if ev.lrms_jobid is not None:
        st.cream_lrms_id = st.local_id = ev.lrms_jobid
    reason = ev.failure_reason
    if reason is not None:
        st.cream_failure_reason = reason
        st.failure_reasons = f"{st.failure_reasons}\n{reason}" if st.failure_reasons else reason


def _data_usertag(st: JobStatus, ev: Event) -> None:
    """UserTag: as gLite §4.8 (per-tag sequence-code ordering)."""
    apply_user_tag(st, ev, tag_newer)


_DATA_RULES = {
    "RegJob": _data_regjob,
    "CREAMAccepted": _data_accepted,
    "CREAMStatus": _data_status,
    "UserTag": _data_usertag,
}


def apply_data_part(st: JobStatus, ev: Event) -> None:
    """The CREAM data part of §8.2, in place; also used for CREAM-sourced events of
    WMS jobs (§4.9). Like upstream it ends by giving a job without a location the
    default ``this is CREAM``. Odd events (other types, missing attributes) do nothing."""
    rule = _DATA_RULES.get(ev.type_name)
    if rule is not None:
        rule(st, ev)
    if st.location is None:
        st.location = DEFAULT_LOCATION


# --- state part (§8.1) -----------------------------------------------------------

def _set_reasons(st: JobStatus, reason: str | None) -> None:
    """reason and cream_reason := ``reason`` (unset when ``None``)."""
    st.reason = st.cream_reason = reason


def _reasons_if_present(st: JobStatus, reason: str | None) -> None:
    """reason and cream_reason := ``reason`` when it is present."""
    if reason is not None:
        st.reason = st.cream_reason = reason


def _state_regjob(st: JobStatus, ev: Event) -> None:
    """RegJob: Submitted, cream_state registered."""
    st.state = JobState.SUBMITTED
    st.cream_state = _CS["CREAM_REGISTERED"]


def _state_store(st: JobStatus, ev: Event) -> None:
    """CREAMStore: CMDSTART/OK -> Waiting, pending; CMDSUSPEND/OK, CMDRESUME/OK ->
    suspended; any -> reasons when present."""
    if ev.result == _STORE_OK:
        if ev.command == _CMD.CMDSTART:
            st.state = JobState.WAITING
            st.cream_state = _CS["CREAM_PENDING"]
        elif ev.command == _CMD.CMDSUSPEND:
            st.suspended = True
        elif ev.command == _CMD.CMDRESUME:
            st.suspended = False
    _reasons_if_present(st, ev.reason)


def _state_call(st: JobStatus, ev: Event) -> None:
    """CREAMCall: executor->LRMS CMDSTART/OK -> Scheduled, idle, reasons (unset if
    absent); CMDCANCEL/OK -> cancelling; CMDPURGE/OK -> Cleared, purged."""
    if ev.result != _CALL_OK:
        return
    if ev.command == _CMD.CMDSTART:
        if ev.source == Source.CREAM_EXECUTOR and ev.callee == Source.LRMS:
            st.state = JobState.SCHEDULED
            st.cream_state = _CS["CREAM_IDLE"]
            _set_reasons(st, ev.reason)
    elif ev.command == _CMD.CMDCANCEL:
        st.cancelling = st.cream_cancelling = True
        _reasons_if_present(st, ev.reason)
    elif ev.command == _CMD.CMDPURGE:
        st.state = JobState.CLEARED
        st.cream_state = _CS["CREAM_PURGED"]
        _reasons_if_present(st, ev.reason)


def _state_cancel(st: JobStatus, ev: Event) -> None:
    """CREAMCancel: DONE -> Cancelled, cream_state aborted; any -> reasons := reason."""
    if ev.status_code == _CANCEL_DONE:
        st.state = JobState.CANCELLED
        st.cream_state = _CS["CREAM_ABORTED"]
    _set_reasons(st, ev.reason)


def _state_abort(st: JobStatus, ev: Event) -> None:
    """CREAMAbort: Aborted, cream_state aborted, reasons := reason."""
    st.state = JobState.ABORTED
    st.cream_state = _CS["CREAM_ABORTED"]
    _set_reasons(st, ev.reason)


def cream_status_state(st: JobStatus, ev: Event) -> None:
    """CREAMStatus with result DONE: cream_state := new_state (case-insensitive; an
    unknown name unsets it) and the job state it maps to (§8.1)."""
    if ev.result != _STATUS_DONE:
        return
    name = ev.new_state
    cream_state = StatCreamState.from_text(name) if isinstance(name, str) else None
    st.cream_state = cream_state
    implied = CREAM_TO_LB.get(cream_state)
    if implied is None:
        return
    state, jw_status, done_code = implied
    st.state = state
    if jw_status is not None:
        st.jw_status = jw_status
    if done_code is not None:
        st.done_code = st.cream_done_code = done_code


_STATE_RULES = {
    "RegJob": _state_regjob,
    "CREAMStore": _state_store,
    "CREAMCall": _state_call,
    "CREAMCancel": _state_cancel,
    "CREAMAbort": _state_abort,
    "CREAMStatus": cream_status_state,
}


def _rule(state_rule):
    def rule(st: JobStatus, ev: Event, usable: bool) -> None:
        state_rule(st, ev)
    rule.__doc__ = state_rule.__doc__
    return rule


class CreamMachine(SimpleMachine):
    """§8: state part, post-processing, then :func:`apply_data_part`; all usable."""

    name = "cream"
    job_types = (StatJobtype.CREAM,)
    rules = {t: _rule(r) for t, r in _STATE_RULES.items()}
    default_location = DEFAULT_LOCATION

    def _apply(self, status: JobStatus, ev: Event) -> JobStatus:
        st = super()._apply(status, ev)
        if st.jobtype is not None:
            apply_data_part(st, ev)
        return st


MACHINE = CreamMachine()
