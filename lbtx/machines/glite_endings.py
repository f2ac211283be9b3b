"""Resubmission and the end of a WMS job: Resubmission, Done, Cancel, Abort,
Clear (state-machines.md §4.5–§4.7, §10.1.1, §10.1.7, §10.1.9, §10.1.12,
§10.1.15, D5, D7). Rules as in :mod:`.glite_transitions`.
"""

from __future__ import annotations

from lbtx.machines.glite_branches import K_RESUBMIT, deep_reset
from lbtx.machines.glite_classify import BAD_BRANCH, GOOD_BRANCH, K_CANCEL, K_LAST, LATE, USABLE, Ctx
from lbtx.machines.glite_seq import is_before, parse_code
from lbtx.machines.glite_transitions import event_location as _here
from lbtx.schema import ENUMS, JobState, Source, StatDoneCode, StatJwStatus, StatSandboxRetrieved

__all__ = ["ENDING_RULES"]

S = Source
_RESUB = ENUMS["ResubmissionResult"]
_DONE = ENUMS["DoneStatusCode"]
_CANCEL = ENUMS["CancelStatusCode"]
_CLEAR = ENUMS["ClearReason"]
_NONE_LOCATION = "none"


def resubmission(c: Ctx) -> bool:
    """Resubmission (§4.5): WONTRESUB sets the reason (usable) and the kind; WILLRESUB
    from the WM performs the deep reset, even when late; SHALLOW records the kind."""
    st, ev = c.st, c.ev
    result = ev.result
    if result == _RESUB.WONTRESUB:
        if c.res == USABLE:
            st.reason = ev.reason
        st.internal[K_RESUBMIT] = result.name
    elif result == _RESUB.WILLRESUB and ev.source == S.WORKLOAD_MANAGER:
        deep_reset(st, ev.seqcode)
    elif result == _RESUB.SHALLOW:
        st.internal[K_RESUBMIT] = result.name
    return True


def _glue(previous: str | None, text: str) -> str:
    """failure_reasons: append ``text`` after a newline when there is a previous value."""
    return text if previous is None else f"{previous}\n{text}"


def _c_str(value) -> str:
    """A possibly unset string as C's printf renders it."""
    return "(null)" if value is None else value


def done(c: Ctx) -> bool:
    """Done (§4.6). From the JobWrapper (LRMS) only jw_status/payload_running, if
    usable. Otherwise, usable: Done (Cancelled for CANCELLED), reason, location, a
    FAILED reason with the destination; data part also when late: exit_code and
    done_code, and a delayed FAILED appends ``[delayed event, destination
    unreliable]`` (§10.1.9). KILLED: the state part only, then processing stops (D5,
    as upstream); a late KILLED has no effect."""
    st, ev = c.st, c.ev
    if ev.source == S.LRMS:
        if c.res == USABLE:
            st.jw_status = StatJwStatus.DONE
            st.payload_running = False
        return True
    code = ev.status_code
    if code not in _DONE_CODES:
        return False
    usable = c.res == USABLE
    if usable:
        st.state = JobState.DONE
        st.jw_status = StatJwStatus.DONE
        st.reason = ev.reason
        if c.fine == GOOD_BRANCH:
            st.payload_running = False
        if code == _DONE.OK:
            st.location = _NONE_LOCATION
        elif code == _DONE.CANCELLED:
            st.state = JobState.CANCELLED
            st.location = _NONE_LOCATION
        else:
            if code == _DONE.FAILED:
                st.failure_reasons = _glue(st.failure_reasons,
                                           f"{_c_str(ev.reason)} [{_c_str(st.destination)}]")
            st.location = _here(ev)
    if code == _DONE.KILLED:
        c.abort = True
        return usable
    if code == _DONE.OK:
        st.exit_code = ev.exit_code
        st.done_code = StatDoneCode.OK
    elif code == _DONE.CANCELLED:
        st.exit_code = 0
        st.done_code = StatDoneCode.CANCELLED
    else:
        if not usable:
            st.failure_reasons = _glue(
                st.failure_reasons,
                f"{_c_str(ev.reason)} [delayed event, destination unreliable]")
        st.exit_code = 0
        st.done_code = StatDoneCode.FAILED
    return True


_DONE_CODES = frozenset({_DONE.OK, _DONE.FAILED, _DONE.CANCELLED, _DONE.KILLED})


def cancel(c: Ctx) -> bool:
    """Cancel (§4.7): also late on a bad branch or when older than the last usable
    Cancel. Usable REQ raises ``cancelling``; DONE makes the job Cancelled and
    advances last_seqcode; ABORT clears ``cancelling``. Data: cancelReason."""
    st, ev = c.st, c.ev
    if c.fine == BAD_BRANCH:
        c.res = LATE
    else:
        last_cancel = st.internal.get(K_CANCEL)
        if last_cancel is not None and is_before(c.seq, parse_code(last_cancel)):
            c.res = LATE
    if c.res == USABLE:
        code = ev.status_code
        if code == _CANCEL.REQ:
            st.cancelling = True
        elif code == _CANCEL.DONE:
            st.state = JobState.CANCELLED
            st.remove_from_proxy = True
            st.reason = ev.reason
            st.internal[K_LAST] = ev.seqcode
            st.location = _NONE_LOCATION
            st.cancelling = False
        elif code == _CANCEL.ABORT:
            st.cancelling = False
    st.cancel_reason = ev.reason
    return True


def abort(c: Ctx) -> bool:
    """Abort (§4.7): from the WorkloadManager always usable (§10.1.7). Usable:
    Aborted, remove_from_proxy, reason, location ``none`` and the deep reset."""
    st, ev = c.st, c.ev
    if ev.source == S.WORKLOAD_MANAGER:
        c.res = USABLE
    if c.res == USABLE:
        st.state = JobState.ABORTED
        st.remove_from_proxy = True
        st.reason = ev.reason
        st.location = _NONE_LOCATION
        deep_reset(st, ev.seqcode)
    return True


_CLEAR_REASONS = {
    _CLEAR.USER: ("user retrieved output sandbox", StatSandboxRetrieved.USER),
    _CLEAR.TIMEOUT: ("timed out, resource purge forced", StatSandboxRetrieved.TIMEOUT),
    _CLEAR.NOOUTPUT: ("no output was generated", StatSandboxRetrieved.NOOUTPUT),
}


def clear(c: Ctx) -> bool:
    """Clear (§4.7): usable → Cleared with the reason text of the clear reason; the
    data part (sandbox_retrieved) also when late, e.g. on an Aborted job (§10.1.15).
    An unknown reason makes the event invalid (D7)."""
    known = _CLEAR_REASONS.get(c.ev.reason)
    if known is None:
        return False
    st = c.st
    if c.res == USABLE:
        st.state = JobState.CLEARED
        st.remove_from_proxy = True
        st.location = _NONE_LOCATION
        st.reason = known[0]
    st.sandbox_retrieved = known[1]
    return True


ENDING_RULES = {
    "Resubmission": resubmission,
    "Done": done,
    "Cancel": cancel,
    "Abort": abort,
    "Clear": clear,
}
