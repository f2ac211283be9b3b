"""The acceptance rules: what happens when one event reaches the bookkeeping server.

This is the one place that decides (state-machines.md §1.1, formats.md §6.3-6.6):

1. registration: an event for an unknown job is refused unless it is a RegJob;
   a RegJob for a known job is refused if its sender is not the owner, or if it
   is flagged exclusive;
   the sender must be allowed to log the event for the job (§6.5): for the
   sources UserInterface, LRMS and Application the owner, a sender holding TAG
   for a UserTag (an ACL entry for its subject, or being the payload owner), or
   anyone not anonymous for TakePayloadOwnership; for other sources anyone not
   anonymous; senders the caller trusts (super-users; everybody with
   ``--noauth``) skip this check;
2. duplicates: an event equal in type, source, host, timestamp, level and
   sequence code to a stored one is acknowledged and has no effect;
3. storage, then ChangeACL to the ACL, every other event to the job's state
   machine (incrementally, in arrival order);
4. the parent's children histogram when a child's state class changes, and for
   collections the derived parent state, logged as a generated CollectionState
   event;
5. embryonic subjob records on the registration of a DAG or collection.

It is pure: the caller passes a :class:`JobTable` (a transaction's view of the
store) and the clock reading. The server and ``lbtx replay`` both call
:func:`accept`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from lbtx import subject
from lbtx.events import Event, make_event
from lbtx.jobid import JobId
from lbtx.machines import machine_for
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.schema import ENUMS, JobState, LogFlag, Source, StatDoneCode, StatJobtype
from lbtx.seqcode import GliteSeqCode
from lbtx.status import HIST_SIZE, JobStatus
from lbtx.timeval import Timeval

__all__ = ["Delivery", "JobRecord", "JobTable", "MemoryJobTable", "Applied", "Outcome", "accept",
           "child_class", "thorough_histogram", "logging_refusal", "SERVER_IDENTITY"]

#: The identity the server logs its own events under, unless told otherwise.
SERVER_IDENTITY = "LBServer"

_PARENT_TYPES = frozenset({StatJobtype.DAG, StatJobtype.COLLECTION,
                           StatJobtype.FILE_TRANSFER_COLLECTION})
_DERIVED_TYPES = frozenset({StatJobtype.COLLECTION, StatJobtype.FILE_TRANSFER_COLLECTION})
_EXCL = int(LogFlag.EXCL)
_ACL_OP = ENUMS["ChangeACLOperation"]


class Delivery(str, enum.Enum):
    """The outcome of delivering one event, as the sender sees it."""

    STORED = "stored"                                #: accepted and processed
    DUPLICATE = "duplicate"                          #: already stored; acknowledged, no effect
    REJECTED_UNREGISTERED = "rejected_unregistered"  #: job unknown (ENOENT); sender retries
    REJECTED_NOT_OWNER = "rejected_not_owner"        #: RegJob by someone else (EPERM)
    REJECTED_EXISTS = "rejected_exists"              #: exclusive RegJob of a known job (EEXIST)
    REJECTED_NOT_ALLOWED = "rejected_not_allowed"    #: sender may not log it for this job (EPERM)

    @property
    def accepted(self) -> bool:
        """Whether the sender may forget the event (it is stored, now or before)."""
        return self in (Delivery.STORED, Delivery.DUPLICATE)


@dataclass
class JobRecord:
    """What the server keeps about one job besides its events."""

    job_id: JobId
    owner: str
    status: JobStatus
    #: ACL entries ``[user_id, user_id_type, permission, permission_type]`` (names)
    acl: list[list[str]] = field(default_factory=list)
    #: subjobs and other children, in creation order (a dict used as an ordered set)
    children: dict[JobId, None] = field(default_factory=dict)
    #: number of events stored for the job (the next one gets this number)
    nevents: int = 0


class JobTable(Protocol):
    """A consistent view of the job store for the duration of one :func:`accept`."""

    def get(self, job_id: JobId) -> JobRecord | None:
        """The job's record, or None if the job is unknown."""

    def put(self, record: JobRecord) -> None:
        """Create or replace the job's record."""

    def is_duplicate(self, job_id: JobId, key: tuple) -> bool:
        """Whether an event with this dedupe key is stored for the job."""

    def add_event(self, job_id: JobId, event: Event, seq: int, generated: bool) -> None:
        """Store ``event`` as the job's event number ``seq``."""


class MemoryJobTable:
    """A :class:`JobTable` in memory, for replays and tests.

    ``keep_events=False`` remembers only the duplicate keys of stored events, not
    the events themselves (a replay needs no more).
    """

    def __init__(self, *, keep_events: bool = True) -> None:
        self.jobs: dict[JobId, JobRecord] = {}
        self.keys: dict[JobId, set[tuple]] = {}
        self.events: dict[JobId, list[Event]] = {}
        self.keep_events = keep_events

    def get(self, job_id: JobId) -> JobRecord | None:
        return self.jobs.get(job_id)

    def put(self, record: JobRecord) -> None:
        self.jobs[record.job_id] = record

    def is_duplicate(self, job_id: JobId, key: tuple) -> bool:
        return key in self.keys.get(job_id, ())

    def add_event(self, job_id: JobId, event: Event, seq: int, generated: bool) -> None:
        self.keys.setdefault(job_id, set()).add(event.dedupe_key())
        if self.keep_events:
            self.events.setdefault(job_id, []).append(event)


@dataclass(slots=True)
class Applied:
    """One event that was processed, with every status it changed (job id -> status)."""

    event: Event
    generated: bool
    statuses: dict[JobId, JobStatus]
    #: the status of each of those jobs before the event (None for a new record)
    before: dict[JobId, JobStatus | None] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What :func:`accept` did with one delivered event."""

    delivery: Delivery
    reason: str = ""
    #: the delivered event first, then any events the server generated
    applied: list[Applied] = field(default_factory=list)

    @property
    def changed(self) -> dict[JobId, JobStatus]:
        out: dict[JobId, JobStatus] = {}
        for a in self.applied:
            out.update(a.statuses)
        return out


def accept(table: JobTable, event: Event, *, now: Timeval | None = None,
           server_identity: str = SERVER_IDENTITY, server_host: str = "",
           trusted: Callable[[str], bool] | None = None) -> Outcome:
    """Deliver ``event`` to the server whose store ``table`` is.

    ``now`` is the server clock, used for generated events (default: the event's
    own timestamp, which keeps replays deterministic). The event must have been
    validated; its ``job_id`` and ``user`` must be set. ``trusted(user)`` tells
    the senders that skip the logging-rights check (None: nobody).
    """
    job_id = event.job_id
    rec = table.get(job_id)
    is_reg = event.type_name == "RegJob"
    if rec is None:
        if not is_reg:
            return Outcome(Delivery.REJECTED_UNREGISTERED, "job not registered")
        rec = _new_job(event)
    else:
        if is_reg and event.priority > 0 and event.priority & _EXCL:
            return Outcome(Delivery.REJECTED_EXISTS, "job already registered")
        if is_reg and not subject.same(event.user, rec.owner):
            return Outcome(Delivery.REJECTED_NOT_OWNER,
                           "job registered by another user")
        if not (trusted is not None and trusted(event.user)):
            refusal = logging_refusal(rec, event)
            if refusal:
                return Outcome(Delivery.REJECTED_NOT_ALLOWED, refusal)
    if table.is_duplicate(job_id, event.dedupe_key()):
        return Outcome(Delivery.DUPLICATE, "duplicate event")

    outcome = Outcome(Delivery.STORED)
    _store(table, rec, event, generated=False)
    step = Applied(event, False, {})
    outcome.applied.append(step)
    if event.type_name == "ChangeACL":
        _change_acl(rec, event)
        table.put(rec)
        return outcome

    old = rec.status
    new = _machine(old, event).apply(old, event).status
    rec.status = new
    table.put(rec)
    step.statuses[job_id] = new
    step.before[job_id] = old if old.state is not JobState.UNDEFINED else None

    generated = _update_parent(table, rec, old, event, step, now or event.timestamp,
                               server_identity, server_host)
    if is_reg:
        _register_children(table, rec, event, step)
    for gen_event, parent in generated:
        _apply_generated(table, parent, gen_event, outcome)
    return outcome


# --- logging rights (formats.md §6.5) -----------------------------------------------------

_OWNER_SOURCES = frozenset({Source.USER_INTERFACE, Source.LRMS, Source.APPLICATION})
_ANONYMOUS = frozenset({"", "anonymous"})


def _holds_tag(rec: JobRecord, user: str) -> bool:
    """Whether ``user`` may log user tags: the payload owner, or an ACL entry for
    its subject allowing TAG that no matching entry denies."""
    payload_owner = getattr(rec.status, "payload_owner", None)
    if payload_owner and subject.same(payload_owner, user):
        return True
    allowed = False
    for entry in rec.acl or ():
        if len(entry) < 4 or entry[1] != "DN" or entry[2] != "TAG":
            continue
        if not subject.same(entry[0], user):
            continue
        if entry[3] == "DENY":
            return False
        allowed = allowed or entry[3] == "ALLOW"
    return allowed


def logging_refusal(rec: JobRecord, event: Event) -> str:
    """Why the sender of ``event`` may not log it for the existing job ``rec``
    ("" when it may)."""
    user = event.user or ""
    anonymous = user in _ANONYMOUS
    if event.source in _OWNER_SOURCES:
        if not anonymous and subject.same(user, rec.owner):
            return ""
        name = event.type_name
        if name == "UserTag" and not anonymous and _holds_tag(rec, user):
            return ""
        if name == "TakePayloadOwnership" and not anonymous:
            return ""
        return (f"{event.source.text} events of this job may be logged only by its owner"
                + (" or holders of TAG" if name == "UserTag" else ""))
    if anonymous:
        return "anonymous senders may not log events"
    return ""


# --- steps ----------------------------------------------------------------------------

def _new_job(event: Event) -> JobRecord:
    st = JobStatus(job_id=event.job_id, owner=event.user)
    return JobRecord(job_id=event.job_id, owner=event.user or "", status=st)


def _store(table: JobTable, rec: JobRecord, event: Event, generated: bool) -> None:
    table.add_event(rec.job_id, event, rec.nevents, generated)
    rec.nevents += 1


def _machine(status: JobStatus, event: Event):
    jobtype = status.jobtype
    if jobtype is None and event.type_name == "RegJob":
        jobtype = REGJOB_TO_STATUS.get(event.jobtype)
    return machine_for(jobtype)


def _change_acl(rec: JobRecord, event: Event) -> None:
    """ChangeACL edits the ACL only (§4.8); it never reaches the state machine."""
    entry = [event.user_id, event.user_id_type.name, event.permission.name,
             event.permission_type.name]
    if event.operation == _ACL_OP.ADD:
        if entry not in rec.acl:
            rec.acl.append(entry)
    elif event.operation == _ACL_OP.REMOVE:
        if entry in rec.acl:
            rec.acl.remove(entry)


def child_class(state: JobState, done_code) -> JobState:
    """The histogram class of a child state (§5.2), as its representative slot."""
    if state == JobState.RUNNING:
        return JobState.RUNNING
    if state == JobState.DONE and done_code == StatDoneCode.OK:
        return JobState.DONE
    if state == JobState.ABORTED:
        return JobState.ABORTED
    if state in (JobState.CLEARED, JobState.CANCELLED):
        return JobState.CLEARED
    return JobState.UNKNOWN


def _update_parent(table, rec, old: JobStatus, event: Event, step: Applied, now: Timeval,
                   server_identity: str, server_host: str) -> list[tuple[Event, JobRecord]]:
    """§1.1 step 6 and §5.2/5.3: move the child between histogram classes and, for
    collections, derive the parent's state; return the events to generate."""
    new = rec.status
    parent_id = new.parent_job
    if parent_id is None or new.state == old.state:
        return []
    before = child_class(old.state, old.done_code)
    after = child_class(new.state, new.done_code)
    if before == after:
        return []
    parent = table.get(parent_id)
    if parent is None:
        return []  # D11: the child is processed, the missing parent is skipped
    step.before.setdefault(parent_id, parent.status)
    pst = parent.status.copy()
    hist = list(pst.children_hist) if pst.children_hist is not None else [0] * HIST_SIZE
    hist[int(before)] -= 1
    hist[int(after)] += 1
    pst.children_hist = hist
    parent.status = pst
    table.put(parent)
    step.statuses[parent_id] = pst
    if pst.jobtype not in _DERIVED_TYPES:
        return []
    derived = derive_collection_state(pst)
    if derived == pst.state:
        return []
    gen = _collection_state_event(parent, derived, rec.job_id, event, now, server_identity,
                                  server_host)
    return [(gen, parent)]


def derive_collection_state(pst: JobStatus) -> JobState:
    """The state a collection parent has by its class histogram (§5.3)."""
    h = pst.children_hist or [0] * HIST_SIZE
    n = pst.children_num
    r, d = h[JobState.RUNNING], h[JobState.DONE]
    a, c = h[JobState.ABORTED], h[JobState.CLEARED]
    if pst.jobtype == StatJobtype.FILE_TRANSFER_COLLECTION:
        if r > 0:
            return JobState.RUNNING
        if d == n:
            return JobState.DONE
        if d + a == n:
            return JobState.ABORTED
        return JobState.WAITING
    if r > 0:
        return JobState.RUNNING
    if c == n:
        return JobState.CLEARED
    if d + c == n:
        return JobState.DONE
    if a + d + c == n:
        return JobState.ABORTED
    return JobState.WAITING


def histogram_text(hist: list[int] | None) -> str:
    """``Submitted=<h>, Waiting=<h>, ..., Purged=<h>`` over the eleven state slots."""
    h = hist or [0] * HIST_SIZE
    return ", ".join(f"{JobState(i).text}={h[i]}" for i in range(1, HIST_SIZE))


def _next_server_code(pst: JobStatus) -> str:
    """The parent's last sequence code with the LBS counter advanced by one."""
    last = pst.internal.get("last_seqcode")
    try:
        code = GliteSeqCode.parse(last) if last else GliteSeqCode()
    except ValueError:
        code = GliteSeqCode()
    return code.increment("LBS").format()


def _collection_state_event(parent: JobRecord, state: JobState, child: JobId, cause: Event,
                            now: Timeval, server_identity: str, server_host: str) -> Event:
    return make_event(
        "CollectionState",
        timestamp=now,
        host=server_host,
        priority=int(LogFlag.INTERNAL),
        source=Source.LB_SERVER,
        job_id=parent.job_id,
        seqcode=_next_server_code(parent.status),
        user=server_identity,
        state=state.text,
        done_code=int(StatDoneCode.OK),
        histogram=histogram_text(parent.status.children_hist),
        child=child,
        child_event=cause.type_name,
    )


def _apply_generated(table, parent: JobRecord, event: Event, outcome: Outcome) -> None:
    """Store and process a server-generated event of ``parent`` (no further parent update)."""
    _store(table, parent, event, generated=True)
    old = parent.status
    parent.status = _machine(old, event).apply(old, event).status
    table.put(parent)
    outcome.applied.append(Applied(event, True, {parent.job_id: parent.status},
                                   {parent.job_id: old}))


def _register_children(table, rec: JobRecord, event: Event, step: Applied) -> None:
    """§5.1: a parent's registration creates embryonic subjob records; a child's
    registration links it to its parent."""
    st = rec.status
    if event.parent is not None:
        parent = table.get(event.parent)
        if parent is not None and rec.job_id not in parent.children:
            parent.children[rec.job_id] = None
            table.put(parent)
    n = event.nsubjobs or 0
    if st.jobtype not in _PARENT_TYPES or n <= 0:
        return
    child_type = (StatJobtype.FILE_TRANSFER if st.jobtype == StatJobtype.FILE_TRANSFER_COLLECTION
                  else StatJobtype.SIMPLE)
    ts = event.timestamp
    for child_id in rec.job_id.subjobs(event.seed, n):
        rec.children.setdefault(child_id, None)
        if table.get(child_id) is not None:
            continue
        times = [0] * HIST_SIZE
        times[JobState.SUBMITTED] = ts.sec
        cst = JobStatus(job_id=child_id, owner=rec.owner, parent_job=rec.job_id,
                        state=JobState.SUBMITTED, jobtype=child_type, state_enter_time=ts,
                        last_update_time=ts, state_enter_times=times)
        table.put(JobRecord(job_id=child_id, owner=rec.owner, status=cst))
        step.statuses[child_id] = cst
        step.before[child_id] = None
    table.put(rec)


def thorough_histogram(table: JobTable, parent: JobRecord) -> list[int]:
    """Count the children's actual states (the "thorough" histogram of §5.2)."""
    hist = [0] * HIST_SIZE
    for child_id in parent.children:
        child = table.get(child_id)
        if child is not None:
            hist[int(child.status.state)] += 1
    return hist


def accept_all(table: JobTable, events: Iterable[Event], **kw) -> list[Outcome]:
    """Deliver events in order; return their outcomes."""
    return [accept(table, ev, **kw) for ev in events]
