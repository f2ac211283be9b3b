"""Accepting a batch of events inside one transaction, written once for both backends.

:func:`accept_batch` is a unit of :data:`~lbtx.server.store.sql.Work`: the
backend has opened a transaction (and, for PostgreSQL, passes ``lock`` to take
the per-job advisory locks); the work reads what the batch will touch into a
:class:`~lbtx.server.store.txtable.Snapshot`, runs :func:`lbtx.acceptance.accept`
on every event over a :class:`~lbtx.server.store.txtable.TransactionTable`,
re-running on a fresh table whenever :func:`accept` asked for rows the snapshot
lacked, writes the changes and, given a read policy, queues the notifications of
the status changes (:func:`lbtx.server.store.notify_sql.queue_matches`). The
backend commits.
"""

from __future__ import annotations

from typing import Callable

from lbtx.acceptance import Outcome, accept
from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.server.store import notify_sql, rows
from lbtx.server.store.sql import Dialect, Work
from lbtx.server.store.txtable import NeedData, Snapshot, TransactionTable, initial_need
from lbtx.timeval import NULL_TIME, Timeval

__all__ = ["accept_batch", "check_events", "fetch", "read_parents", "Relock", "MAX_RERUNS"]

#: how often a batch is re-run for rows its prefetch missed before giving up
MAX_RERUNS = 50

#: a locking step: given job ids, yield the statements that lock them
Locker = Callable[[set], Work]


class Relock(Exception):
    """The batch must write jobs whose locks the transaction does not hold: roll
    back and start again with these job ids locked as well."""

    def __init__(self, job_ids: set):
        self.job_ids = job_ids
        super().__init__(f"{len(job_ids)} more jobs to lock")


def check_events(events: list[Event]) -> None:
    """Refuse (ValueError) events the store cannot key: a job id or parent id with
    undecodable bytes. Intake refuses such events as invalid before they get here."""
    for ev in events:
        for job_id in (ev.job_id, getattr(ev, "parent", None)):
            if job_id is not None and rows.clean(str(job_id)) != str(job_id):
                raise ValueError(f"job id with undecodable bytes: {str(job_id)!a:.200}")


def _ids(values) -> list[str]:
    return sorted(str(v) for v in values)


def fetch(d: Dialect, snap: Snapshot, need: NeedData) -> Work:
    """Read what ``need`` asks for (and the parents of the records read) into ``snap``."""
    asked = need
    wanted = snap.missing(asked).records
    while wanted:
        found = yield d.select(
            "SELECT jobid, owner, nevents, nchildren, status FROM jobs WHERE "
            + d.in_list("jobid"), (d.list_param(_ids(wanted)),))
        acl = {}
        if found:
            acl_rows = yield d.select(
                "SELECT jobid, user_id, user_id_type, permission, permission_type FROM acl "
                "WHERE " + d.in_list("jobid") + " ORDER BY jobid, pos",
                (d.list_param(r[0] for r in found),))
            for jobid, *entry in acl_rows:
                acl.setdefault(jobid, []).append(entry)
        parents = set()
        for row in found:
            rec = rows.record_from_row(row, acl.get(row[0], ()))
            snap.add_record(rec, row[3])
            if rec.status.parent_job is not None:
                parents.add(rec.status.parent_job)
        for job_id in wanted:
            snap.mark_absent(job_id)
        wanted = {p for p in parents if p not in snap.records and p not in snap.absent}
    # what else is missing can only be known once the records are read (links and
    # child lists are asked of stored parents only)
    need = snap.missing(asked)
    if need.exists:
        found = yield d.select("SELECT jobid FROM jobs WHERE " + d.in_list("jobid"),
                               (d.list_param(_ids(need.exists)),))
        for (jobid,) in found:
            snap.exists.add(JobId.parse(jobid))
        for job_id in need.exists:
            snap.mark_absent(job_id)
    if need.children:
        found = yield d.select("SELECT parent, child FROM subjobs WHERE " + d.in_list("parent")
                               + " ORDER BY parent, pos", (d.list_param(_ids(need.children)),))
        lists: dict[str, list[JobId]] = {str(p): [] for p in need.children}
        for parent, child in found:
            lists[parent].append(JobId.parse(child))
        for parent in need.children:
            snap.set_children(parent, lists[str(parent)])
    links = {pc for pc in need.links if pc[0] in snap.records and pc[0] not in snap.children}
    if links:
        found = yield d.select(
            "SELECT parent, child FROM subjobs WHERE " + d.in_list("parent") + " AND "
            + d.in_list("child"), (d.list_param(_ids({p for p, _ in links})),
                                   d.list_param(_ids({c for _, c in links}))))
        present = {(p, c) for p, c in found}
        for parent, child in links:
            snap.links[(parent, child)] = (str(parent), str(child)) in present
    keys = {j: ks for j, ks in need.keys.items() if j in snap.records}
    for job_id, ks in need.keys.items():
        snap.checked_keys.setdefault(job_id, set()).update(ks)
    if keys:
        seconds = sorted({k[3] for ks in keys.values() for k in ks})
        found = yield d.select(
            "SELECT jobid, " + ", ".join(rows.KEY_COLUMNS) + " FROM events WHERE "
            + d.in_list("jobid") + " AND " + d.in_list("ts_sec"),
            (d.list_param(_ids(keys)), d.list_param(seconds)))
        by_text = {str(j): j for j in keys}
        for jobid, *key in found:
            job_id = by_text[jobid]
            k = rows.key_from_row(tuple(key))
            if k in keys[job_id]:
                snap.found_keys.setdefault(job_id, set()).add(k)


def read_parents(d: Dialect, job_ids: set) -> Work:
    """The stored parents of ``job_ids`` (job id -> parent id or None), unlocked."""
    found = yield d.select("SELECT jobid, parent_job FROM jobs WHERE " + d.in_list("jobid"),
                           (d.list_param(_ids(job_ids)),))
    return {JobId.parse(j): (JobId.parse(p) if p else None) for j, p in found}


def _write(d: Dialect, changes) -> Work:
    if changes.acl_jobs:
        yield d.execute("DELETE FROM acl WHERE " + d.in_list("jobid"),
                        (d.list_param(changes.acl_jobs),))
    if changes.tag_jobs:
        yield d.execute("DELETE FROM user_tags WHERE " + d.in_list("jobid"),
                        (d.list_param(changes.tag_jobs),))
    for stmt in d.insert("events", rows.EVENT_COLUMNS, changes.events):
        yield stmt
    update = ", ".join(f"{c} = excluded.{c}" for c in rows.JOB_COLUMNS[2:])
    for stmt in d.insert("jobs", rows.JOB_COLUMNS, changes.jobs,
                         f"ON CONFLICT (jobid) DO UPDATE SET {update}"):
        yield stmt
    for stmt in d.insert("acl", rows.ACL_COLUMNS, changes.acl):
        yield stmt
    for stmt in d.insert("user_tags", rows.TAG_COLUMNS, changes.tags):
        yield stmt
    for stmt in d.insert("subjobs", rows.SUBJOB_COLUMNS, changes.subjobs):
        yield stmt


def _trusted_senders(policy):
    """Who skips the logging-rights check (formats §6.5): everybody with
    ``--noauth``, else the super-users of the read policy."""
    if policy is None:
        return None
    if policy.noauth:
        return lambda user: True
    return policy.is_superuser


def accept_batch(d: Dialect, events: list[Event], lines: list[str] | None, now: Timeval, *,
                 lock: Locker | None = None, locked: set | None = None,
                 slot: Callable[[JobId], int] | None = None,
                 generated_at_clock: bool = False, notify=None, anonymizer=None) -> Work:
    """Apply ``events`` (with their ULM ``lines``) inside the caller's transaction;
    return their outcomes.

    With ``lock``, the jobs of the batch, their parents and ``locked`` (ids from
    an earlier attempt) are locked first, in one step; when the batch turns out to
    write a job whose lock ``slot`` is not held, :class:`Relock` is raised.
    Generated events take the causing event's timestamp, or ``now`` with
    ``generated_at_clock``. With ``notify`` (a :class:`lbtx.server.authz.ReadPolicy`)
    the status changes are matched against the notification registrations and their
    messages queued in the same transaction (identities hashed with ``anonymizer``,
    an :class:`lbtx.server.anonymize.Anonymizer`, where the access is anonymised).
    """
    line_of = {}
    if lines is not None:
        line_of = {id(ev): rows.strip_line(line) for ev, line in zip(events, lines, strict=True)}

    def arrived(ev: Event) -> Timeval:
        return ev.arrived if ev.arrived is not None and ev.arrived != NULL_TIME else now

    job_ids = {ev.job_id for ev in events}
    parents: dict = {}
    held: set = set()
    if lock is not None:
        parents = yield from read_parents(d, job_ids)
        wanted = set(job_ids) | set(locked or ())
        wanted.update(p for p in parents.values() if p is not None)
        wanted.update(ev.parent for ev in events
                      if ev.type_name == "RegJob" and ev.parent is not None)
        yield from lock(wanted)
        held = {slot(j) for j in wanted}
    gen_now = now if generated_at_clock else None
    trusted = _trusted_senders(notify)
    snap = Snapshot()
    need = initial_need(events, parents)
    for _ in range(MAX_RERUNS):
        yield from fetch(d, snap, need)
        table = TransactionTable(snap, lines=line_of, arrived=arrived)
        try:
            outcomes: list[Outcome] = [accept(table, ev, now=gen_now, trusted=trusted)
                                       for ev in events]
        except NeedData as more:
            need = more
            continue
        break
    else:
        raise RuntimeError(f"batch still misses rows after {MAX_RERUNS} runs: {need}")
    changes = table.changes()
    if lock is not None:
        # every job written must be locked: changed jobs themselves, new jobs
        # through their own lock or (subjobs) their parent's
        missing = {j for j in changes.updated if slot(j) not in held}
        missing.update(j for j, parent in changes.created.items()
                       if slot(j) not in held and (parent is None or slot(parent) not in held))
        if missing:
            raise Relock(missing | set(locked or ()))
    yield from _write(d, changes)
    if notify is not None:
        yield from notify_sql.queue_matches(d, outcomes, table, now, notify, anonymizer)
    return outcomes
