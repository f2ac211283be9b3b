"""The transition table of the gLite WMS machine (state-machines.md §4.3, §4.6–§4.8).

One rule per event type: ``rule(c) -> bool`` applies the state part when
``c.res`` is USABLE and the data part in every case, and may change ``c.res``
first (ignored results, LRMS protection, Cancel and WM Abort rules). A rule
returns False for an invalid event (unexpected source, missing attributes) or
one without any status effect (ChangeACL): the machine then discards everything
the event did.
"""

from __future__ import annotations

from lbtx import subject
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.machines.common import apply_user_tag, location, set_state_enter_time
from lbtx.machines.glite_branches import K_RESUBMIT, deep_reset, really_running, update_branch_row
from lbtx.machines.glite_classify import (BAD_BRANCH, GOOD_BRANCH, IGNORE, K_CANCEL, K_LAST, LATE,
                                          USABLE, Ctx)
from lbtx.machines.glite_seq import is_before, parse_code, tag_newer
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.schema import (ENUMS, JobState, RegJobJobtype, Source, StatDoneCode, StatJobtype,
                         StatJwStatus, StatSandboxRetrieved)

__all__ = ["RULES"]

S = Source
_TR = ENUMS["TransferResult"]
_EQ = ENUMS["EnQueuedResult"]
_RESUB = ENUMS["ResubmissionResult"]
_DONE = ENUMS["DoneStatusCode"]
_CANCEL = ENUMS["CancelStatusCode"]
_CLEAR = ENUMS["ClearReason"]
_SANDBOX = ENUMS["SandboxSandboxType"]

#: "LRMS states": some events are late once the job runs or has run (§4.3).
_LRMS_STATES = frozenset({JobState.RUNNING, JobState.DONE})
_WM_TEXT = S.WORKLOAD_MANAGER.text
_NONE_LOCATION = "none"


def _here(ev) -> str:
    """``S/h/i``: the location of the component that logged the event."""
    return location(ev.source.text, ev.host, ev.src_instance)


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


# --- termination -------------------------------------------------------------------------

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


# --- registration, collections, service events ---------------------------------------------

_PARENT_JOBTYPES = {
    RegJobJobtype.DAG: StatJobtype.DAG,
    RegJobJobtype.PARTITIONED: StatJobtype.DAG,
    RegJobJobtype.COLLECTION: StatJobtype.COLLECTION,
    RegJobJobtype.FILE_TRANSFER_COLLECTION: StatJobtype.FILE_TRANSFER_COLLECTION,
}


def regjob(c: Ctx) -> bool:
    """RegJob (§4.1, §4.3): the first registration fixes jobtype; usable → Submitted
    (a newer RegJob puts the job back, §10.1.6). Data part, also when late: jdl (if
    given), parent_job, network_server, children_num, seed; a DAG/partitioned/
    collection registration sets jobtype and children_hist := {Unknown: n}."""
    st, ev = c.st, c.ev
    jobtype = ev.jobtype
    if st.jobtype is None:
        mapped = REGJOB_TO_STATUS.get(jobtype)
        if mapped is None:
            return False
        st.jobtype = mapped
    if c.res == USABLE:
        st.state = JobState.SUBMITTED
    if ev.jdl is not None:
        st.jdl = ev.jdl
    st.parent_job = ev.parent
    st.network_server = ev.ns
    n = ev.nsubjobs if isinstance(ev.nsubjobs, int) else 0
    st.children_num = n
    parent_type = _PARENT_JOBTYPES.get(jobtype)
    if parent_type is not None:
        st.jobtype = parent_type
        hist = [0] * len(JobState)
        hist[JobState.UNKNOWN] = n
        st.children_hist = hist
    st.seed = ev.seed
    return True


def collection_state(c: Ctx) -> bool:
    """CollectionState (server-generated, §5.3): the named state (case-insensitive);
    Done also takes the event's done_code. An unknown state name is invalid."""
    state = JobState.from_text(c.ev.state) if isinstance(c.ev.state, str) else None
    if state is None:
        return False
    if c.res == USABLE:
        st = c.st
        st.state = state
        if state == JobState.DONE:
            st.done_code = _done_code(c.ev.done_code)
    return True


_STAT_DONE_CODES = {int(m): m for m in StatDoneCode}


def _done_code(value) -> StatDoneCode | None:
    """A done code in the StatDoneCode numbering (-1 or unknown: unset)."""
    return _STAT_DONE_CODES.get(value) if isinstance(value, int) else None


def user_tag(c: Ctx) -> bool:
    """UserTag (§4.8): always stored, per-tag ordering by sequence code; name and
    value must be present."""
    return apply_user_tag(c.st, c.ev, tag_newer)


def sandbox(c: Ctx) -> bool:
    """Sandbox: INPUT with a transfer job sets isb_transfer, OUTPUT osb_transfer."""
    ev = c.ev
    job = ev.transfer_job
    if job:
        if ev.sandbox_type == _SANDBOX.INPUT:
            c.st.isb_transfer = _jobid_or_none(job)
        elif ev.sandbox_type == _SANDBOX.OUTPUT:
            c.st.osb_transfer = _jobid_or_none(job)
    return True


def _jobid_or_none(text: str) -> JobId | None:
    try:
        return JobId.parse(text)
    except LBFormatError:
        return None


K_PENDING = "payload_owner_pending"
K_UNCONFIRMED = "payload_owner_unconfirmed"


def grant_payload_ownership(c: Ctx) -> bool:
    """GrantPayloadOwnership (§4.8): confirms a pending Take by the same subject,
    otherwise is remembered. Never advances last_seqcode."""
    owner = c.ev.payload_owner
    if not owner:
        return False
    st = c.st
    internal = st.internal
    pending_take = internal.pop(K_PENDING, None)
    if pending_take is not None:
        if subject.same(owner, pending_take):
            st.payload_owner = pending_take
    else:
        internal[K_UNCONFIRMED] = owner
    c.ignore_seq = True
    return True


def take_payload_ownership(c: Ctx) -> bool:
    """TakePayloadOwnership (§4.8): the sender takes a granted ownership, otherwise
    the take is remembered. Never advances last_seqcode."""
    user = c.ev.user
    if not user:
        return False
    st = c.st
    internal = st.internal
    granted = internal.get(K_UNCONFIRMED)
    if granted is not None and subject.same(user, granted):
        st.payload_owner = granted
        del internal[K_UNCONFIRMED]
    else:
        internal[K_PENDING] = user
    c.ignore_seq = True
    return True


def change_acl(c: Ctx) -> bool:
    """ChangeACL: handled by the ACL store only, no status effect at all (§1.1, §4.8);
    the server does not feed it to the machine, and if it is fed, it is discarded
    like an invalid event (its code must not count either, §4.4)."""
    return False


def no_effect(c: Ctx) -> bool:
    """Purge, Listener, CurDescr, Chkpt, ResourceUsage: no status effect beyond the
    post-processing of a usable event."""
    return True


RULES = {
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
    "ReallyRunning": really_running,
    "Suspend": suspend,
    "Resume": resume,
    "Resubmission": resubmission,
    "Done": done,
    "Cancel": cancel,
    "Abort": abort,
    "Clear": clear,
    "Purge": no_effect,
    "RegJob": regjob,
    "CollectionState": collection_state,
    "UserTag": user_tag,
    "Sandbox": sandbox,
    "GrantPayloadOwnership": grant_payload_ownership,
    "TakePayloadOwnership": take_payload_ownership,
    "ChangeACL": change_acl,
    "Listener": no_effect,
    "CurDescr": no_effect,
    "Chkpt": no_effect,
    "ResourceUsage": no_effect,
}
