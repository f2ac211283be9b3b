"""Registration, collection and service events of the gLite WMS machine:
RegJob, CollectionState, UserTag, Sandbox, payload ownership, ChangeACL and the
events without a status effect (state-machines.md §4.1, §4.3, §4.8, §10.1.2,
§10.1.6). Rules as in :mod:`.glite_transitions`.
"""

from __future__ import annotations

from lbtx import subject
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.machines.common import apply_user_tag
from lbtx.machines.glite_classify import USABLE, Ctx
from lbtx.machines.glite_seq import tag_newer
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.schema import ENUMS, JobState, RegJobJobtype, StatDoneCode, StatJobtype

__all__ = ["SERVICE_RULES", "K_PENDING", "K_UNCONFIRMED"]

_SANDBOX = ENUMS["SandboxSandboxType"]


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
    """The job id in ``text``; unset when it does not parse (as upstream)."""
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


SERVICE_RULES = {
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
