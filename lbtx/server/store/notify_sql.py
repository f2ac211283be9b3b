"""Notification registrations and the outbox in SQL, written once for both backends
(the units of :data:`~lbtx.server.store.sql.Work` behind
:class:`~lbtx.server.store.notify_store.NotificationStoreMixin`).

Tables (schema version 3): ``notif_registrations``, ``notif_jobs`` (job lists),
``notif_messages`` (the outbox). :func:`queue_matches` runs inside the
transaction of :func:`lbtx.server.store.batch.accept_batch`: it reads the
candidate registrations of the changed jobs by index, matches them
(:mod:`lbtx.server.notify.matching`), locks the matched registrations' rows in
ascending unique order (``FOR UPDATE`` on PostgreSQL, after the job locks, so
concurrent transactions never wait in a cycle), and queues one message per match
with the registration's next ``seq``: seqs stay gap-free and increasing whatever
the number of server processes, and roll back with the events.
"""

from __future__ import annotations

import json
from typing import Callable

from lbtx import subject
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.server.anonymize import Access
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify import matching
from lbtx.server.notify.model import UNSET, Flags, Message, Registration, notif_unique
from lbtx.server.store import reads, rows
from lbtx.server.store.interfaces import DuplicateRegistration, UnknownRegistration
from lbtx.server.store.sql import Dialect, Sql, Work

__all__ = ["queue_matches", "candidate_queries", "normalised", "REG_COLUMNS", "BOOTSTRAP_LIMIT"]

REG_COLUMNS = ("unique_id", "notif_id", "owner", "owner_key", "destination", "expires",
               "conditions", "flags", "all_jobs", "cond_owner", "last_seq", "acked_seq")
_CAND_COLUMNS = "unique_id, notif_id, owner, expires, conditions, flags, all_jobs, cond_owner"
_READ_COLUMNS = "unique_id, notif_id, owner, destination, expires, conditions, flags, last_seq"

#: decoded conditions by their stored text (registrations rarely change)
_DECODED: dict[str, tuple] = {}
_DECODED_MAX = 20000

#: the most jobs one bootstrap queues
BOOTSTRAP_LIMIT = 10000

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False).encode


def _decoded(text: str) -> tuple:
    q = _DECODED.get(text)
    if q is None:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        q = _DECODED[text] = matching.decode_conditions(text)
    return q


def _normal_job_ids(job_ids) -> tuple[str, ...]:
    out: list[str] = []
    for j in job_ids:
        text = str(JobId.parse(str(j)))
        if rows.clean(text) != text:
            raise ValueError(f"job id with undecodable bytes: {text!a:.200}")
        if text not in out:
            out.append(text)
    return tuple(out)


def normalised(reg: Registration) -> Registration:
    """The registration as the store keeps it; ValueError/QueryError when malformed."""
    notif_unique(reg.notif_id)
    if not isinstance(reg.owner, str) or not reg.owner:
        raise ValueError("a registration needs an owner")
    if reg.destination is not None and not isinstance(reg.destination, str):
        raise ValueError("a destination is a string or None")
    conditions = matching.resolve_owner(matching.check_conditions(reg.conditions), reg.owner)
    return Registration(reg.notif_id, str(reg.owner), reg.destination, int(reg.expires),
                        conditions, _normal_job_ids(reg.job_ids), Flags(int(reg.flags)),
                        int(reg.last_seq))


def _reg_row(reg: Registration, last_seq: int = 0, acked_seq: int = 0) -> tuple:
    return (reg.unique, reg.notif_id, reg.owner, subject.key(reg.owner), reg.destination,
            reg.expires, matching.encode_conditions(reg.conditions), int(reg.flags),
            not reg.job_ids, matching.indexed_owner(reg.conditions), last_seq, acked_seq)


def _job_rows(reg: Registration) -> list[tuple]:
    return [(j, reg.unique, i) for i, j in enumerate(reg.job_ids)]


# --- registrations ------------------------------------------------------------------

def _read(d: Dialect, unique: str, lock: bool = False) -> Work:
    found = yield d.select(f"SELECT {_READ_COLUMNS} FROM notif_registrations WHERE unique_id = ?"
                           + (d.for_update if lock else ""), (unique,))
    if not found:
        return None
    u, notif_id, owner, destination, expires, conditions, flags, last_seq = found[0]
    jobs = yield d.select("SELECT jobid FROM notif_jobs WHERE unique_id = ? ORDER BY pos", (u,))
    return Registration(notif_id, owner, destination, int(expires), _decoded(conditions),
                        tuple(j for (j,) in jobs), Flags(flags), int(last_seq))


def listing(d: Dialect, owner: str | None, limit: int | None) -> Work:
    """The registrations of ``owner`` (compared as subjects; None: everybody's),
    ordered by unique part."""
    text = "SELECT unique_id FROM notif_registrations"
    params: tuple = ()
    if owner is not None:
        text += " WHERE owner_key = ?"
        params = (subject.key(owner),)
    text += " ORDER BY unique_id"
    if limit is not None:
        text += f" LIMIT {max(0, int(limit))}"
    found = yield d.select(text, params)
    out = []
    for (unique,) in found:
        r = yield from _read(d, unique)
        if r is not None:
            out.append(r)
    return out


def register(d: Dialect, reg: Registration) -> Work:
    row = _reg_row(reg)
    marks = ", ".join("?" * len(REG_COLUMNS))
    done = yield d.select(f"INSERT INTO notif_registrations ({', '.join(REG_COLUMNS)}) "
                          f"VALUES ({marks}) ON CONFLICT (unique_id) DO NOTHING "
                          "RETURNING unique_id", row)
    if not done:
        raise DuplicateRegistration(f"notification exists: {reg.notif_id}")
    for stmt in d.insert("notif_jobs", ("jobid", "unique_id", "pos"), _job_rows(reg)):
        yield stmt
    return reg


def registration(d: Dialect, unique: str) -> Work:
    return (yield from _read(d, unique))


def update(d: Dialect, notif_id: str, changes: dict) -> Work:
    unique = notif_unique(notif_id)
    old = yield from _read(d, unique, lock=True)
    if old is None:
        raise UnknownRegistration(notif_id)
    fields = {k: v for k, v in changes.items() if v is not UNSET}
    new = normalised(Registration(
        old.notif_id, old.owner, fields.get("destination", old.destination),
        fields.get("expires", old.expires), fields.get("conditions", old.conditions),
        fields.get("job_ids", old.job_ids), old.flags, old.last_seq))
    _u, _n, _o, _k, dest, expires, cond, _f, all_jobs, cond_owner, _l, _a = _reg_row(new)
    yield d.execute("UPDATE notif_registrations SET destination = ?, expires = ?, "
                    "conditions = ?, all_jobs = ?, cond_owner = ? WHERE unique_id = ?",
                    (dest, expires, cond, all_jobs, cond_owner, unique))
    if new.job_ids != old.job_ids:
        yield d.execute("DELETE FROM notif_jobs WHERE unique_id = ?", (unique,))
        for stmt in d.insert("notif_jobs", ("jobid", "unique_id", "pos"), _job_rows(new)):
            yield stmt
    return new


def _delete(d: Dialect, uniques: list[str]) -> Work:
    param = (d.list_param(uniques),)
    for table in ("notif_messages", "notif_jobs", "notif_registrations"):
        yield d.execute(f"DELETE FROM {table} WHERE " + d.in_list("unique_id"), param)


def drop(d: Dialect, unique: str) -> Work:
    found = yield d.select("SELECT unique_id FROM notif_registrations WHERE unique_id = ?"
                           + d.for_update, (unique,))
    if not found:
        return False
    yield from _delete(d, [unique])
    return True


def purge(d: Dialect, now: int) -> Work:
    found = yield d.select("SELECT unique_id FROM notif_registrations WHERE expires <= ? "
                           "ORDER BY unique_id" + d.for_update, (now,))
    uniques = [u for (u,) in found]
    if uniques:
        yield from _delete(d, uniques)
    return len(uniques)


# --- the outbox -----------------------------------------------------------------------

def messages(d: Dialect, unique: str, notif_id: str, after_seq: int, limit: int) -> Work:
    found = yield d.select("SELECT seq, jobid, created, document FROM notif_messages "
                           "WHERE unique_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                           (unique, after_seq, limit))
    return [Message(notif_id, int(seq), jobid, float(created), json.loads(doc))
            for seq, jobid, created, doc in found]


def acknowledge(d: Dialect, unique: str, notif_id: str, up_to: int) -> Work:
    """Delete the messages up to ``up_to``. The registration's row is read, not
    locked or written: intake locks that row to number its messages, and an
    acknowledgement that waited for it (and intake for the acknowledgement) would
    serialise both behind each other's commits (``acked_seq`` is no longer kept)."""
    found = yield d.select("SELECT last_seq FROM notif_registrations WHERE unique_id = ?",
                           (unique,))
    if not found:
        raise UnknownRegistration(notif_id)
    gone = yield d.select("DELETE FROM notif_messages WHERE unique_id = ? AND seq <= ? "
                          "RETURNING seq", (unique, int(up_to)))
    return len(gone)


#: a destination POSTed to (as lbtx.server.notify.delivery.is_callback_url)
_CALLBACK = "(substr(r.destination, 1, 7) = 'http://' OR substr(r.destination, 1, 8) = 'https://')"


def pending(d: Dialect, now: int, limit: int, after: str | None = None,
            callbacks_only: bool = False) -> Work:
    """Unexpired registrations with queued messages, ordered by unique part, from
    the one after ``after`` (a unique part; None: the first), only those with a
    callback URL when ``callbacks_only``: ``(notif_id, destination, expires,
    first_seq, unique)`` rows. The registrations are found from the outbox by a
    skip scan of its key (one index probe per registration with messages), so the
    scan costs nothing for the registrations without a backlog."""
    where = "r.expires > ?"
    if callbacks_only:
        where += " AND " + _CALLBACK
    found = yield d.select(
        "WITH RECURSIVE u(id) AS ("
        "SELECT (SELECT MIN(unique_id) FROM notif_messages WHERE unique_id > ?) "
        "UNION ALL SELECT (SELECT MIN(m.unique_id) FROM notif_messages m "
        "WHERE m.unique_id > u.id) FROM u WHERE u.id IS NOT NULL) "
        "SELECT r.notif_id, r.destination, r.expires, "
        "(SELECT MIN(m.seq) FROM notif_messages m WHERE m.unique_id = r.unique_id), "
        "r.unique_id FROM u JOIN notif_registrations r ON r.unique_id = u.id "
        f"WHERE {where} ORDER BY r.unique_id LIMIT ?",
        ("" if after is None else after, now, limit))
    return [(n, dest, int(exp), int(first), u) for n, dest, exp, first, u in found
            if first is not None]


def bootstrap(d: Dialect, notif_id: str, access_of: Callable, now, limit: int,
              anonymizer=None) -> Work:
    """Queue the current state of every job (at most ``limit``, by unique id) that
    matches the registration and that ``access_of(owner, record)`` (an
    :class:`~lbtx.server.anonymize.Access` or None) lets its owner read."""
    reg = yield from _read(d, notif_unique(notif_id), lock=True)
    if reg is None:
        raise UnknownRegistration(notif_id)
    if reg.expires <= now.sec:
        return 0
    query = tuple(reg.conditions)
    if reg.job_ids:
        query += (tuple(Condition(Attr.JOBID, Op.EQUAL, JobId.parse(j)) for j in reg.job_ids),)
    found = yield from reads.query_jobs(d, query, None if not limit else limit)
    seq = reg.last_seq
    created = now.sec + now.usec / 1e6
    out = []
    for rec in found:
        how = access_of(reg.owner, rec)
        if how is None:
            continue
        if how is Access.FULL and reg.flags & Flags.ANONYMIZE:
            how = Access.ANONYMIZED
        seq += 1
        history = None
        if reg.flags & Flags.HISTORY:
            history = [s.event for s in (yield from reads.job_events(d, rec.job_id))]
        doc = matching.document(reg.notif_id, seq, rec.job_id, None, rec.status, None, history,
                                how=how, anonymizer=anonymizer, flags=reg.flags)
        out.append((reg.unique, seq, str(rec.job_id), created, _dumps(doc)))
    for stmt in d.insert("notif_messages", ("unique_id", "seq", "jobid", "created", "document"),
                         out):
        yield stmt
    if out:
        yield d.execute("UPDATE notif_registrations SET last_seq = ? WHERE unique_id = ?",
                        (seq, reg.unique))
    return len(out)


# --- matching inside accept_batch -----------------------------------------------------

def candidate_queries(d: Dialect, job_texts: list[str], owner_keys: list[str], uniques=None,
                      now: int = 0) -> tuple[Sql, Sql]:
    """The two indexed reads of matching: the job-list rows of the changed jobs, and
    the unexpired candidates (``uniques`` from the first, all-jobs ones by owner
    key, all-jobs ones without an owner condition)."""
    listed = d.select("SELECT jobid, unique_id FROM notif_jobs WHERE " + d.in_list("jobid"),
                      (d.list_param(job_texts),))
    select = f"SELECT {_CAND_COLUMNS} FROM notif_registrations WHERE expires > ? AND "
    found = d.select(
        select + d.in_list("unique_id")
        + " UNION " + select + "all_jobs = ? AND " + d.in_list("cond_owner")
        + " UNION " + select + "all_jobs = ? AND cond_owner IS NULL",
        (now, d.list_param(sorted(uniques or ())), now, True, d.list_param(owner_keys),
         now, True))
    return listed, found


def _candidates(d: Dialect, job_texts: list[str], owner_keys: list[str], now: int) -> Work:
    """job id -> job-list candidates, owner key -> all-jobs candidates, and the
    all-jobs candidates without an owner condition."""
    listed = yield candidate_queries(d, job_texts, owner_keys)[0]
    found = yield candidate_queries(d, job_texts, owner_keys, {u for _, u in listed}, now)[1]
    by_unique, by_owner, anyone = {}, {}, []
    for unique, notif_id, owner, expires, conditions, flags, all_jobs, cond_owner in found:
        cand = matching.Candidate(unique, notif_id, owner, int(expires), _decoded(conditions),
                                  Flags(flags))
        if not all_jobs:
            by_unique[unique] = cand
        elif cond_owner is None:
            anyone.append(cand)
        else:
            by_owner.setdefault(cond_owner, []).append(cand)
    by_job: dict[str, list] = {}
    for jobid, unique in listed:
        if unique in by_unique:
            by_job.setdefault(jobid, []).append(by_unique[unique])
    return by_job, by_owner, anyone


def _history(d: Dialect, job_id: JobId, trigger, cache: dict) -> Work:
    if job_id not in cache:
        cache[job_id] = [s.event for s in (yield from reads.job_events(d, job_id))]
    events = cache[job_id]
    key = trigger.dedupe_key()
    for i, ev in enumerate(events):
        if ev.dedupe_key() == key:
            return events[:i + 1]
    return list(events)


def queue_matches(d: Dialect, outcomes, table, now, policy: ReadPolicy,
                  anonymizer=None) -> Work:
    """Queue the messages for the status changes of ``outcomes`` (after the batch's
    rows are written); ``table`` gives the jobs' records as the batch leaves them;
    ``anonymizer`` (the server's :class:`~lbtx.server.anonymize.Anonymizer`) hashes
    identities for owners with anonymised access."""
    steps = [(a, job_id, new) for o in outcomes for a in o.applied
             for job_id, new in a.statuses.items()]
    if not steps:
        return 0
    job_texts = sorted({str(j) for _, j, _ in steps})
    owner_keys = sorted({subject.key(new.owner or "") for _, _, new in steps})
    by_job, by_owner, anyone = yield from _candidates(d, job_texts, owner_keys, now.sec)
    if not (by_job or by_owner or anyone):
        return 0
    matched = []
    for a, job_id, new in steps:
        cands = (by_job.get(str(job_id), []) + by_owner.get(subject.key(new.owner or ""), [])
                 + anyone)
        if not cands:
            continue
        old = a.before.get(job_id)
        record = table.get(job_id)
        for cand in cands:
            how = matching.access(cand, old, new, record, policy, now.sec)
            if how is not None:
                matched.append((cand, a, job_id, old, new, how))
    if not matched:
        return 0
    locked = yield d.select(
        "SELECT unique_id, last_seq, expires FROM notif_registrations WHERE "
        + d.in_list("unique_id") + " ORDER BY unique_id" + d.for_update,
        (d.list_param(sorted({m[0].unique for m in matched})),))
    # under the lock: skip registrations dropped or expired meanwhile
    seqs = {u: int(s) for u, s, expires in locked if expires > now.sec}
    created = now.sec + now.usec / 1e6
    histories: dict = {}
    out = []
    for cand, a, job_id, old, new, how in matched:
        if cand.unique not in seqs:
            continue
        seqs[cand.unique] += 1
        seq = seqs[cand.unique]
        history = None
        if cand.flags & Flags.HISTORY:
            history = yield from _history(d, job_id, a.event, histories)
        doc = matching.document(cand.notif_id, seq, job_id, old, new, a.event, history,
                                how=how, anonymizer=anonymizer, flags=cand.flags)
        out.append((cand.unique, seq, str(job_id), created, _dumps(doc)))
    for stmt in d.insert("notif_messages", ("unique_id", "seq", "jobid", "created", "document"),
                         out):
        yield stmt
    counts = sorted((u, s) for u, s in seqs.items())
    if d.name == "postgres":
        yield d.execute("UPDATE notif_registrations AS r SET last_seq = v.s FROM "
                        "unnest(?::text[], ?::bigint[]) AS v(u, s) WHERE r.unique_id = v.u",
                        ([u for u, _ in counts], [s for _, s in counts]))
    else:
        yield Sql("UPDATE notif_registrations SET last_seq = ? WHERE unique_id = ?",
                  [(s, u) for u, s in counts], many=True)
    return len(out)
