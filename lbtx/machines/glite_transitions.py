"""Hand-over, matchmaking and execution events of the gLite WMS machine
(state-machines.md §4.3, §10.1.2–§10.1.4, §10.1.10).

One rule per event type: ``rule(c) -> bool`` applies the state part when
``c.res`` is USABLE and the data part in every case, and may change ``c.res``
first (ignored START/REFUSED results, LRMS protection). A rule returns False for
an invalid event (unexpected source, missing attributes): the machine then
discards everything the event did.
"""

from __future__ import annotations

from lbtx.machines.common import location, set_state_enter_time
from lbtx.machines.glite_branches import update_branch_row
from lbtx.machines.glite_classify import IGNORE, LATE, USABLE, Ctx
from lbtx.schema import ENUMS, JobState, Source, StatJwStatus

__all__ = ["HANDOVER_RULES", "event_location", "LRMS_STATES"]

S = Source
_TR = ENUMS["TransferResult"]
_EQ = ENUMS["EnQueuedResult"]

#: "LRMS states": some events are late once the job runs or has run (§4.3).
LRMS_STATES = frozenset({JobState.RUNNING, JobState.DONE})
_LRMS_STATES = LRMS_STATES
_WM_TEXT = S.WORKLOAD_MANAGER.text


def event_location(ev) -> str:
    """``S/h/i``: the location of the component that logged the event."""
    return location(ev.source.text, ev.host, ev.src_instance)


_here = event_location


def _queue(ev) -> str:
    """``Q/h/i``: the queue the event names, at the logging component."""
    return location(ev.queue or "", ev.host, ev.src_instance)


def _lrms_protect(c: Ctx) -> None:
    """§4.3 "LATE if old ∈ {Running, Done}"."""
    if c.old in _LRMS_STATES:
        c.res = LATE

# --- hand-over events (Transfer, Accepted, Refused, EnQueued, DeQueued) --------------

_TRANSFER_OK = {S.USER_INTERFACE: JobState.WAITING, S.JOB_SUBMISSION: JobState.READY,
                S.LOG_MONITOR: JobState.SCHEDULED}
_TRANSFER_FAIL = {S.USER_INTERFACE: JobState.SUBMITTED, S.JOB_SUBMISSION: JobState.READY,
                  S.LOG_MONITOR: JobState.READY}


def transfer(c: Ctx) -> bool:
    """Transfer: OK/FAIL move the job by the logging component; START and REFUSED are
    ignored for the state. LogMonitor Transfer/OK zeroes LM in the stored code, and on
    a Running/Done job is late but still records stateEnterTimes[Scheduled] (§10.1.3).
    Data: jdl (UI, only if unset), condor_jdl (JobController), rsl (LogMonitor)."""
    st, ev = c.st, c.ev
    src = ev.source
    if src not in _TRANSFER_OK:
        return False
    result = ev.result
    if result == _TR.OK:
        new = _TRANSFER_OK[src]
        if src == S.LOG_MONITOR:
            if c.old in _LRMS_STATES:
                set_state_enter_time(st, JobState.SCHEDULED, ev)
                c.res = LATE
            c.lm_favour = True
    elif result == _TR.FAIL:
        new = _TRANSFER_FAIL[src]
        if src != S.USER_INTERFACE:
            _lrms_protect(c)
    else:
        c.res = IGNORE
    if c.res == USABLE:
        st.state = new
        st.reason = ev.reason
        if result == _TR.OK:
            st.location = location(ev.destination.text, ev.dest_host, ev.dest_instance)
        else:
            st.location = _here(ev)
    if src == S.USER_INTERFACE:
        if st.jdl is None:
            st.jdl = ev.job
    elif src == S.JOB_SUBMISSION:
        st.condor_jdl = ev.job
    else:
        st.rsl = ev.job
    return True


_ACCEPTED = {S.NETWORK_SERVER: JobState.WAITING, S.LOG_MONITOR: JobState.READY,
             S.LRMS: JobState.SCHEDULED}


def accepted(c: Ctx) -> bool:
    """Accepted by NS (Waiting), LogMonitor (Ready; LRMS-protected; LM-zeroing) or
    LRMS (Scheduled). Data: ui_host, condorId or globusId."""
    st, ev = c.st, c.ev
    src = ev.source
    new = _ACCEPTED.get(src)
    if new is None:
        return False
    if src == S.LOG_MONITOR:
        _lrms_protect(c)
        c.lm_favour = True
    if c.res == USABLE:
        st.state = new
        st.location = _here(ev)
    if src == S.NETWORK_SERVER:
        st.ui_host = ev.from_host
    elif src == S.LOG_MONITOR:
        st.condor_id = ev.local_jobid
    else:
        st.globus_id = ev.local_jobid
    return True


_REFUSED = {S.NETWORK_SERVER: JobState.SUBMITTED, S.LOG_MONITOR: JobState.READY,
            S.LRMS: JobState.READY}


def refused(c: Ctx) -> bool:
    """Refused by NS (Submitted), LogMonitor or LRMS (Ready); location is the
    refused sender's. No data part."""
    st, ev = c.st, c.ev
    new = _REFUSED.get(ev.source)
    if new is None:
        return False
    if c.res == USABLE:
        st.state = new
        st.reason = ev.reason
        st.location = location(ev.from_.text, ev.from_host, ev.from_instance)
    return True


_ENQUEUED_SOURCES = frozenset({S.NETWORK_SERVER, S.WORKLOAD_MANAGER, S.LOG_MONITOR})


def enqueued(c: Ctx) -> bool:
    """EnQueued: OK from NS (Waiting), WM (Ready; LRMS-protected; branch row jdl) or
    LogMonitor (Waiting, resubmitted); FAIL: Waiting (LM: state unchanged); START and
    REFUSED ignored. Data: NS jdl (OK always, else only if unset); WM matched_jdl."""
    st, ev = c.st, c.ev
    src = ev.source
    if src not in _ENQUEUED_SOURCES:
        return False
    result = ev.result
    if result == _EQ.OK:
        if src == S.WORKLOAD_MANAGER:
            _lrms_protect(c)
            update_branch_row(st, ev.seqcode, jdl=ev.job)
            new = JobState.READY
        else:
            new = JobState.WAITING
    elif result == _EQ.FAIL:
        new = c.old if src == S.LOG_MONITOR else JobState.WAITING
    else:
        c.res = IGNORE
    if c.res == USABLE:
        st.state = new
        st.reason = ev.reason
        if result == _EQ.OK:
            st.location = _queue(ev)
            if src == S.LOG_MONITOR:
                st.resubmitted = True
        else:
            st.location = _here(ev)
    if src == S.NETWORK_SERVER:
        if st.jdl is None or result == _EQ.OK:
            st.jdl = ev.job
    elif src == S.WORKLOAD_MANAGER:
        st.matched_jdl = ev.job
    return True


def dequeued(c: Ctx) -> bool:
    """DeQueued by the WM (Waiting) or the JobController (Ready; LRMS-protected)."""
    st, ev = c.st, c.ev
    src = ev.source
    if src == S.WORKLOAD_MANAGER:
        new = JobState.WAITING
    elif src == S.JOB_SUBMISSION:
        _lrms_protect(c)
        new = JobState.READY
    else:
        return False
    if c.res == USABLE:
        st.state = new
        st.location = _here(ev)
    return True


# --- matchmaking and execution ---------------------------------------------------------

def helper_call(c: Ctx) -> bool:
    """HelperCall: Waiting at ``<helper_name>/<host>/<instance>``."""
    if c.res == USABLE:
        ev = c.ev
        c.st.state = JobState.WAITING
        c.st.location = location(ev.helper_name or "", ev.host, ev.src_instance)
    return True


def helper_return(c: Ctx) -> bool:
    """HelperReturn: Waiting at ``WorkloadManager/<host>/<instance>``."""
    if c.res == USABLE:
        c.st.state = JobState.WAITING
        c.st.location = location(_WM_TEXT, c.ev.host, c.ev.src_instance)
    return True


def match(c: Ctx) -> bool:
    """Match: Waiting at the WM. Data: destination unless too old / bad branch; a
    present dest_id goes to its branch row and possible_destinations (§10.1.10)."""
    st, ev = c.st, c.ev
    if c.res == USABLE:
        st.state = JobState.WAITING
        st.location = location(_WM_TEXT, ev.host, ev.src_instance)
    if not c.too_old_or_bad:
        st.destination = ev.dest_id
    if ev.dest_id is not None:
        update_branch_row(st, ev.seqcode, destination=ev.dest_id)
        _append(st, "possible_destinations", ev.dest_id)
    return True


def _append(st, field: str, value: str) -> None:
    """Append to a candidate list (duplicates kept, §10.1.10); the working status
    owns its lists (JobStatus.copy copies them)."""
    values = getattr(st, field)
    if values is None:
        setattr(st, field, [value])
    else:
        values.append(value)


def pending(c: Ctx) -> bool:
    """Pending: Waiting at the WM with the reason why no CE matched yet."""
    if c.res == USABLE:
        ev = c.ev
        c.st.state = JobState.WAITING
        c.st.reason = ev.reason
        c.st.location = location(_WM_TEXT, ev.host, ev.src_instance)
    return True


def running(c: Ctx) -> bool:
    """Running (any source): Running, wrapper running, at ``LRMS/worknode/<node>``.
    Data: ce_node unless too old / bad branch (a late JobWrapper Running still
    overwrites it, §10.1.2); a present node goes to its branch row and
    possible_ce_nodes."""
    st, ev = c.st, c.ev
    if c.res == USABLE:
        st.state = JobState.RUNNING
        st.jw_status = StatJwStatus.WRAPPER_RUNNING
        st.location = location(S.LRMS.text, "worknode", ev.node)
    if not c.too_old_or_bad:
        st.ce_node = ev.node
    if ev.node is not None:
        update_branch_row(st, ev.seqcode, ce_node=ev.node)
        _append(st, "possible_ce_nodes", ev.node)
    return True


def suspend(c: Ctx) -> bool:
    """Suspend: a running job becomes suspended (§4.3)."""
    if c.res == USABLE and c.st.state == JobState.RUNNING:
        c.st.suspended = True
        c.st.suspend_reason = c.ev.reason
    return True


def resume(c: Ctx) -> bool:
    """Resume: a running job is no longer suspended (§4.3)."""
    if c.res == USABLE and c.st.state == JobState.RUNNING:
        c.st.suspended = False
        c.st.suspend_reason = c.ev.reason
    return True


HANDOVER_RULES = {
    "Transfer": transfer,
    "Accepted": accepted,
    "Refused": refused,
    "EnQueued": enqueued,
    "DeQueued": dequeued,
    "HelperCall": helper_call,
    "HelperReturn": helper_return,
    "Match": match,
    "Pending": pending,
    "Running": running,
    "Suspend": suspend,
    "Resume": resume,
}
