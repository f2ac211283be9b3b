"""A transaction's view of the job store, as the :class:`lbtx.acceptance.JobTable`
that :func:`lbtx.acceptance.accept` runs on.

Acceptance is synchronous and pure; a database is neither. The bridge is a
:class:`Snapshot` of the rows a batch of events will touch, read inside the
transaction (after the write locks are held), and a :class:`TransactionTable`
over it that hands :func:`accept` private working copies and records what it
changed. When :func:`accept` asks for something the snapshot does not hold, the
table either calls a synchronous ``loader`` (SQLite, in the writer thread) or
raises :class:`NeedData`: the asynchronous caller (PostgreSQL) fetches it into the
snapshot and runs the batch again on a fresh table, which is correct because
:func:`accept` is pure and the snapshot is never modified by it.

After the batch, :meth:`TransactionTable.changes` says what to write: new events,
job rows, ACL and user-tag replacements, and new subjob links.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from lbtx import ulm
from lbtx.acceptance import JobRecord
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.server.store import rows
from lbtx.timeval import Timeval

__all__ = ["NeedData", "Snapshot", "TransactionTable", "Changes", "initial_need"]

Key = tuple  # a normalised duplicate key (rows.dedupe_key)


@dataclass
class NeedData(Exception):
    """What :func:`accept` asked for that the snapshot does not hold."""

    records: set = field(default_factory=set)     #: job ids whose record is needed
    exists: set = field(default_factory=set)      #: job ids whose existence is needed
    children: set = field(default_factory=set)    #: parents whose full child list is needed
    links: set = field(default_factory=set)       #: (parent, child) memberships
    keys: dict = field(default_factory=dict)      #: job id -> duplicate keys to look up

    def __bool__(self) -> bool:
        return bool(self.records or self.exists or self.children or self.links or self.keys)

    def __str__(self) -> str:
        return (f"need {len(self.records)} records, {len(self.exists)} existence checks, "
                f"{len(self.children)} child lists, {len(self.links)} links, "
                f"{sum(map(len, self.keys.values()))} keys")


class Snapshot:
    """The rows one transaction has read; only the fetch code adds to it."""

    def __init__(self) -> None:
        self.records: dict[JobId, JobRecord] = {}    #: pristine records (children unloaded)
        self.nchildren: dict[JobId, int] = {}
        self.absent: set[JobId] = set()              #: known not to exist
        self.exists: set[JobId] = set()              #: known to exist (record maybe not read)
        self.children: dict[JobId, list[JobId]] = {}  #: full child lists
        self._child_sets: dict[JobId, set[JobId]] = {}
        self.links: dict[tuple[JobId, JobId], bool] = {}
        self.found_keys: dict[JobId, set[Key]] = {}
        self.checked_keys: dict[JobId, set[Key]] = {}
        self.tags: dict[JobId, dict] = {}            #: user tags as read

    # --- filled in by the fetch code ---
    def add_record(self, rec: JobRecord, nchildren: int) -> None:
        self.records[rec.job_id] = rec
        self.nchildren[rec.job_id] = nchildren
        self.exists.add(rec.job_id)
        self.absent.discard(rec.job_id)
        self.tags[rec.job_id] = dict(rec.status.user_tags or {})

    def mark_absent(self, job_id: JobId) -> None:
        if job_id not in self.exists:
            self.absent.add(job_id)

    def set_children(self, parent: JobId, children: list[JobId]) -> None:
        self.children[parent] = children
        self._child_sets[parent] = set(children)

    def missing(self, need: NeedData) -> NeedData:
        """The part of ``need`` not answered yet."""
        known = self.records.keys() | self.absent
        return NeedData(
            records={j for j in need.records if j not in known},
            exists={j for j in need.exists if j not in self.exists and j not in self.absent},
            children={p for p in need.children if p in self.records and p not in self.children},
            links={pc for pc in need.links if pc[0] in self.records and pc[0] not in self.children
                   and pc not in self.links},
            keys={j: ks - self.checked_keys.get(j, set()) for j, ks in need.keys.items()
                  if ks - self.checked_keys.get(j, set())},
        )

    # --- questions the table asks ---
    def linked(self, parent: JobId, child: JobId) -> bool | None:
        s = self._child_sets.get(parent)
        if s is not None:
            return child in s
        return self.links.get((parent, child))


def initial_need(events: list[Event], parents: dict[JobId, JobId | None] | None = None) -> NeedData:
    """What a batch will certainly ask for: its jobs' records and their parents', the
    duplicate keys of its events and, for registrations, the parent link and the
    existence of the subjobs."""
    need = NeedData()
    for ev in events:
        job = ev.job_id
        need.records.add(job)
        need.keys.setdefault(job, set()).add(rows.dedupe_key(job, ev.dedupe_key()))
        if ev.type_name == "RegJob":
            if ev.parent is not None:
                need.records.add(ev.parent)
                need.links.add((ev.parent, job))
            n = ev.nsubjobs or 0
            if n > 0:
                subjobs = job.subjobs(ev.seed, n)
                need.exists.update(subjobs)
                need.links.update((job, c) for c in subjobs)
    for parent in (parents or {}).values():
        if parent is not None:
            need.records.add(parent)
    return need


class _Children:
    """The children of a stored job inside a transaction: membership is answered
    from the snapshot's links or full list, additions are recorded, and only a full
    iteration needs the whole list."""

    def __init__(self, table: "TransactionTable", parent: JobId):
        self._table = table
        self._parent = parent
        self.added: dict[JobId, None] = {}

    def __contains__(self, child: JobId) -> bool:
        if child in self.added:
            return True
        return self._table._linked(self._parent, child)

    def __setitem__(self, child: JobId, value: None) -> None:
        if child not in self:
            self.added[child] = None

    def setdefault(self, child: JobId, default: None = None) -> None:
        self[child] = None

    def get(self, child: JobId, default=None):
        return None if child in self else default

    def __getitem__(self, child: JobId) -> None:
        if child not in self:
            raise KeyError(child)

    def __iter__(self) -> Iterator[JobId]:
        yield from self._table._children_of(self._parent)
        yield from self.added

    def keys(self):
        return list(self)

    def __len__(self) -> int:
        return self._table._snapshot.nchildren.get(self._parent, 0) + len(self.added)


@dataclass
class Changes:
    """What a batch changed, as rows to write (see :mod:`lbtx.server.store.rows`)."""

    events: list[tuple] = field(default_factory=list)
    jobs: list[tuple] = field(default_factory=list)
    #: jobs whose ACL rows / user-tag rows are replaced (deleted, then ``acl``/``tags`` inserted)
    acl_jobs: list[str] = field(default_factory=list)
    acl: list[tuple] = field(default_factory=list)
    tag_jobs: list[str] = field(default_factory=list)
    tags: list[tuple] = field(default_factory=list)
    subjobs: list[tuple] = field(default_factory=list)
    #: ids of jobs that existed and were changed, and of the jobs created
    updated: set = field(default_factory=set)
    created: dict = field(default_factory=dict)  #: job id -> its parent (or None)


class TransactionTable:
    """A :class:`lbtx.acceptance.JobTable` over a :class:`Snapshot`.

    ``loader(need)`` (optional) fetches what is missing into the snapshot
    synchronously; without it a miss raises :class:`NeedData`. ``lines`` maps
    ``id(event)`` of delivered events to their ULM lines; ``arrived(event)`` gives
    an event's arrival time.
    """

    def __init__(self, snapshot: Snapshot, *, loader: Callable[[NeedData], None] | None = None,
                 lines: dict[int, str] | None = None,
                 arrived: Callable[[Event], Timeval] | None = None):
        self._snapshot = snapshot
        self._loader = loader
        self._lines = lines or {}
        self._arrived = arrived or (lambda ev: ev.arrived)
        self._work: dict[JobId, JobRecord] = {}
        self._put: dict[JobId, None] = {}
        self._events: list[tuple] = []
        self._added_keys: dict[JobId, set[Key]] = {}

    # --- misses ---
    def _need(self, need: NeedData) -> None:
        if self._loader is None:
            raise need
        self._loader(need)
        if self._snapshot.missing(need):
            raise RuntimeError(f"store loader did not fetch what was needed: {need}")

    def _linked(self, parent: JobId, child: JobId) -> bool:
        snap = self._snapshot
        if parent not in snap.records:
            return False  # a record created in this transaction has no stored children
        answer = snap.linked(parent, child)
        if answer is None:
            self._need(NeedData(links={(parent, child)}))
            answer = snap.linked(parent, child)
        return bool(answer)

    def _children_of(self, parent: JobId) -> list[JobId]:
        snap = self._snapshot
        if parent not in snap.records:
            return []
        if parent not in snap.children:
            self._need(NeedData(children={parent}))
        return snap.children[parent]

    # --- JobTable ---
    def get(self, job_id: JobId) -> JobRecord | None:
        rec = self._work.get(job_id)
        if rec is not None:
            return rec
        snap = self._snapshot
        base = snap.records.get(job_id)
        if base is None:
            if job_id in snap.absent:
                return None
            wanted = {job_id}
            if job_id in snap.exists:
                # known to exist from an existence check (subjobs of a registration):
                # the others checked with it are likely wanted too, read them at once
                wanted |= snap.exists - snap.records.keys()
            self._need(NeedData(records=wanted))
            base = snap.records.get(job_id)
            if base is None:
                return None
        rec = JobRecord(job_id=base.job_id, owner=base.owner, status=base.status,
                        acl=[list(e) for e in base.acl], children=_Children(self, job_id),
                        nevents=base.nevents)
        self._work[job_id] = rec
        return rec

    def put(self, record: JobRecord) -> None:
        self._work[record.job_id] = record
        self._put[record.job_id] = None

    def is_duplicate(self, job_id: JobId, key: tuple) -> bool:
        k = rows.dedupe_key(job_id, key)
        if k in self._added_keys.get(job_id, ()):
            return True
        snap = self._snapshot
        if k not in snap.checked_keys.get(job_id, ()):
            if job_id in snap.absent:
                return False
            self._need(NeedData(keys={job_id: {k}}))
        return k in snap.found_keys.get(job_id, ())

    def add_event(self, job_id: JobId, event: Event, seq: int, generated: bool) -> None:
        self._added_keys.setdefault(job_id, set()).add(rows.dedupe_key(job_id, event.dedupe_key()))
        self._events.append((job_id, seq, event, generated))

    # --- the result ---
    def changes(self) -> Changes:
        """The rows to write for everything :func:`accept` did on this table."""
        snap = self._snapshot
        out = Changes()
        for job_id, seq, event, generated in self._events:
            line = self._lines.get(id(event)) if not generated else None
            if line is None:
                line = ulm.format(event, newline=False)
            out.events.append(rows.event_row(job_id, seq, event, line, generated,
                                             self._arrived(event)))
        for job_id in self._put:
            rec = self._work[job_id]
            text = str(job_id)
            base = snap.records.get(job_id)
            children = rec.children
            if isinstance(children, _Children):
                start = snap.nchildren.get(job_id, 0)
                added = list(children.added)
                nchildren = start + len(added)
            else:
                start, added = 0, list(children)
                nchildren = len(added)
            out.subjobs.extend((rows.clean(text), rows.clean(str(c)), start + i)
                               for i, c in enumerate(added))
            out.jobs.append(rows.job_row(rec, nchildren))
            tags = dict(rec.status.user_tags or {})
            if base is None:
                out.created[job_id] = rec.status.parent_job
                if rec.acl:
                    out.acl.extend(rows.acl_rows(job_id, rec.acl))
                if tags:
                    out.tags.extend(rows.tag_rows(job_id, tags))
                continue
            out.updated.add(job_id)
            if rec.acl != base.acl:
                out.acl_jobs.append(rows.clean(text))
                out.acl.extend(rows.acl_rows(job_id, rec.acl))
            if tags != snap.tags.get(job_id, {}):
                out.tag_jobs.append(rows.clean(text))
                out.tags.extend(rows.tag_rows(job_id, tags))
        for job_id, _seq, _event, _generated in self._events:
            if job_id in snap.records:
                out.updated.add(job_id)
        return out
