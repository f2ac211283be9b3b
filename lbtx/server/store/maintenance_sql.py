"""Purge and dump as store work (formats.md §6.8-6.9), written once for both
dialects like :mod:`~lbtx.server.store.batch`.

* :func:`purge_candidates` lists the jobs of this server that qualify by age
  (per-state timeouts against ``lastUpdateTime``; subjobs go with their parent; a
  collection only when every child qualifies too);
* :func:`purge_jobs` removes jobs (with their subjobs, events, ACL, tags and
  links) in one transaction, records each as a zombie, and returns their events
  for the purge file;
* :func:`dump_events` reads the events that arrived in ``(from, to]``;
* :func:`zombie` tells whether a job id was purged;
* :func:`server_state` / :func:`set_server_state` keep small named values (the
  last dump's times).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable, Iterable

from lbtx.schema import JobState
from lbtx.server.store import rows
from lbtx.server.store.sql import Dialect, Work
from lbtx.timeval import Timeval

__all__ = ["purge_candidates", "purge_jobs", "dump_events", "zombie", "server_state",
           "set_server_state", "DEFAULT_TIMEOUTS", "NEVER", "PAGE"]

#: seconds after the last update a job in each state qualifies (formats §6.8)
DEFAULT_TIMEOUTS = {JobState.CLEARED: 3 * 86400, JobState.ABORTED: 7 * 86400,
                    JobState.CANCELLED: 7 * 86400}
OTHER_TIMEOUT = 31 * 86400
#: a timeout value meaning "never purge jobs in this state"
NEVER = -2
#: rows read per page
PAGE = 2000


def effective_timeouts(asked: dict | None) -> dict[JobState, int | None]:
    """Per state: the timeout in seconds, or None for never (negative values but
    -2 mean the server default)."""
    out = {}
    for state in JobState:
        value = (asked or {}).get(state)
        if value is None or (value < 0 and value != NEVER):
            value = DEFAULT_TIMEOUTS.get(state, OTHER_TIMEOUT)
        out[state] = None if value == NEVER else int(value)
    return out


def _qualifies(state: int, last_update, now: int, timeouts) -> bool:
    if not last_update:
        return False  # no update time: never (§6.8)
    try:
        limit = timeouts[JobState(state)]
    except ValueError:
        return False
    return limit is not None and now - int(last_update) > limit


def purge_candidates(d: Dialect, prefix: str, now: int, timeouts: dict) -> Work:
    """Job ids of this server (``prefix`` is ``https://host:port/``) that qualify
    by age: top-level jobs only (their subjobs go with them); a job with subjobs
    only when each of them qualifies too."""
    limits = effective_timeouts(timeouts)
    parents, ok, last = {}, {}, ""
    while True:
        page = yield d.select(
            "SELECT jobid, parent_job, state, last_update_time, nchildren FROM jobs "
            "WHERE jobid > ? ORDER BY jobid LIMIT " + str(PAGE), (last,))
        if not page:
            break
        for jobid, parent, state, last_update, _ in page:
            if not jobid.startswith(prefix):
                continue
            parents[jobid] = parent
            ok[jobid] = _qualifies(state, last_update, now, limits)
        last = page[-1][0]
    blocked = set()
    for jobid, parent in parents.items():
        if parent is not None and parent in parents and not ok[jobid]:
            blocked.add(parent)  # a child that does not qualify keeps its parent
    return sorted(j for j, parent in parents.items()
                  if ok[j] and j not in blocked and (parent is None or parent not in parents))


def _with_subjobs(d: Dialect, job_ids: Iterable[str]) -> Work:
    todo, seen = list(job_ids), []
    known = set()
    while todo:
        chunk, todo = todo[:PAGE], todo[PAGE:]
        chunk = [j for j in chunk if j not in known]
        known.update(chunk)
        seen += chunk
        if not chunk:
            continue
        found = yield d.select(f"SELECT child FROM subjobs WHERE {d.in_list('parent')}",
                               (d.list_param(chunk),))
        todo += [r[0] for r in found if r[0] not in known]
    return seen


def _notify_purged(d: Dialect, present: list[str], now: int, policy, anonymizer) -> Work:
    """Queue the notifications of the jobs' move to ``Purged`` (formats §9.5)."""
    from lbtx.server.store import notify_sql, reads
    from lbtx.jobid import JobId
    found = []
    for i in range(0, len(present), PAGE):
        found += yield d.select(reads._RECORD_SELECT + " WHERE " + d.in_list("j.jobid"),
                                (d.list_param(present[i:i + PAGE]),))
    recs = yield from reads.records(d, found)
    by_id = {r.job_id: r for r in recs}
    outcomes = []
    for rec in recs:
        new = rec.status.copy()
        new.state = JobState.PURGED
        new.last_update_time = Timeval(now, 0)
        step = SimpleNamespace(event=None, statuses={rec.job_id: new},
                               before={rec.job_id: rec.status})
        outcomes.append(SimpleNamespace(applied=[step]))
    table = SimpleNamespace(get=lambda job_id: by_id.get(
        job_id if isinstance(job_id, JobId) else JobId.parse(str(job_id))))
    if outcomes:
        yield from notify_sql.queue_matches(d, outcomes, table, Timeval(now, 0), policy,
                                            anonymizer)


def purge_jobs(d: Dialect, job_ids: list[str], now: int, *, really: bool, dump: bool,
               lock: Callable[[list[str]], Work] | None = None, notify=None,
               anonymizer=None) -> Work:
    """Purge ``job_ids`` and their subjobs; returns ``(purged ids, dump lines)``
    where a dump line is ``(arrived_sec, arrived_usec, line)``. Without ``really``
    nothing is changed (the ids and lines are what a purge would take). With
    ``notify`` (the server's read policy) the registrations matching a job's move
    to ``Purged`` get their messages in the same transaction."""
    every = yield from _with_subjobs(d, job_ids)
    if lock is not None and really:
        yield from lock(every)
    present = []
    for i in range(0, len(every), PAGE):
        chunk = every[i:i + PAGE]
        found = yield d.select(f"SELECT jobid FROM jobs WHERE {d.in_list('jobid')}",
                               (d.list_param(chunk),))
        have = {r[0] for r in found}
        present += [j for j in chunk if j in have]
    lines = []
    if dump:
        for i in range(0, len(present), PAGE):
            chunk = present[i:i + PAGE]
            found = yield d.select(
                "SELECT arrived_sec, arrived_usec, line, line_raw, jobid, seq FROM events "
                f"WHERE {d.in_list('jobid')} AND generated = ? "
                "ORDER BY arrived_sec, arrived_usec, jobid, seq", (d.list_param(chunk), False))
            lines += [(sec, usec, rows.line_text(text, raw)) for sec, usec, text, raw, _, _
                      in found]
        lines.sort(key=lambda x: (x[0], x[1]))
    if really and present and notify is not None:
        yield from _notify_purged(d, present, now, notify, anonymizer)
    if really and present:
        for i in range(0, len(present), PAGE):
            chunk = d.list_param(present[i:i + PAGE])
            for table, column in (("events", "jobid"), ("acl", "jobid"),
                                  ("user_tags", "jobid"), ("subjobs", "parent"),
                                  ("subjobs", "child"), ("jobs", "jobid")):
                yield d.execute(f"DELETE FROM {table} WHERE {d.in_list(column)}", (chunk,))
        for i in range(0, len(present), PAGE):
            chunk = present[i:i + PAGE]
            yield d.execute(f"DELETE FROM zombies WHERE {d.in_list('jobid')}",
                            (d.list_param(chunk),))
            yield from d.insert("zombies", ("jobid", "purged_sec"), [(j, now) for j in chunk])
    return present, lines


def dump_events(d: Dialect, prefix: str, after_sec: int, upto_sec: int) -> Work:
    """``(arrived_sec, arrived_usec, line)`` of the events of this server's jobs
    that arrived in ``(after_sec, upto_sec]``, by arrival time then event number
    (the server's own generated events are left out: loading re-derives them)."""
    out = []
    key = (after_sec, 10 ** 7, "", -1)   # after every event of second after_sec
    while True:
        found = yield d.select(
            "SELECT arrived_sec, arrived_usec, jobid, seq, line, line_raw FROM events "
            "WHERE (arrived_sec, arrived_usec, jobid, seq) > (?, ?, ?, ?) "
            "AND arrived_sec <= ? AND generated = ? "
            "ORDER BY arrived_sec, arrived_usec, jobid, seq LIMIT " + str(PAGE),
            (*key, upto_sec, False))
        for sec, usec, jobid, seq, text, raw in found:
            if jobid.startswith(prefix):
                out.append((sec, usec, rows.line_text(text, raw)))
        if len(found) < PAGE:
            return out
        key = tuple(found[-1][:4])


def zombie(d: Dialect, job_id: str) -> Work:
    found = yield d.select("SELECT purged_sec FROM zombies WHERE jobid = ?", (job_id,))
    return bool(found)


def server_state(d: Dialect, name: str) -> Work:
    found = yield d.select("SELECT value FROM server_state WHERE name = ?", (name,))
    return found[0][0] if found else None


def set_server_state(d: Dialect, name: str, value: str) -> Work:
    yield d.execute("DELETE FROM server_state WHERE name = ?", (name,))
    yield from d.insert("server_state", ("name", "value"), [(name, value)])
