"""Matching job status changes against notification registrations (formats.md §9.5),
and the document a match queues. Pure: no database, no clock.

The store finds the candidate registrations of a changed job by index (the job
list, or all-jobs registrations whose indexed owner condition names the job's
owner or who have none) and asks :func:`access` about each; a match becomes a
:class:`~lbtx.server.notify.model.Message` whose ``document`` :func:`document`
builds. Conditions are stored as the JSON API writes them (:func:`encode_conditions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from lbtx import subject
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.event_xml import event_json_object
from lbtx.query.conditions import Attr, Condition, JobQuery, Op, QueryError, condition_matches
from lbtx.query.conditions import _job_value  # the attribute reader the query language uses
from lbtx.query.conditions_json import parse_query, query_to_json
from lbtx.schema import JobState
from lbtx.server.anonymize import Access, Anonymizer
from lbtx.server.notify.model import Flags
from lbtx.status import TERMINAL_STATES, to_json

__all__ = ["Candidate", "access", "matches", "document", "changed_fields", "encode_conditions",
           "decode_conditions", "indexed_owner", "resolve_owner", "check_conditions",
           "status_json", "DEFAULT_ANONYMIZER", "JDL_FIELDS"]

#: hashes identities when the store was given no anonymizer of the server's (its salt)
DEFAULT_ANONYMIZER = Anonymizer(b"lbtx notifications")


@dataclass(frozen=True)
class Candidate:
    """A registration as matching needs it (decoded once per batch)."""

    unique: str
    notif_id: str
    owner: str
    expires: int
    conditions: JobQuery
    flags: Flags


def check_conditions(conditions) -> JobQuery:
    """Registration conditions, normalised: job conditions only, no jobid conditions
    (those are the job list), every disjunction non-empty and of one kind."""
    out = tuple(tuple(ors) for ors in conditions)
    for ors in out:
        if not ors:
            raise QueryError("an empty disjunction in notification conditions")
        for c in ors:
            if not isinstance(c, Condition):
                raise QueryError(f"not a condition: {c!r:.100}")
            if c.attr == Attr.JOBID:
                raise QueryError("jobid conditions belong in the job list of a registration")
            if not c.same_kind(ors[0]):
                raise QueryError("only same attribute types supported in 'or' expressions")
    return out


def resolve_owner(conditions: JobQuery, owner: str) -> JobQuery:
    """Replace ``owner`` NULL ("the caller") by the registration's owner."""
    return tuple(tuple(Condition(c.attr, c.op, owner, c.value2, c.name)
                       if c.attr == Attr.OWNER and c.value is None and c.op != Op.CHANGED
                       else c for c in ors) for ors in conditions)


def indexed_owner(conditions: JobQuery) -> str | None:
    """The subject key of the registration's indexed owner condition: a disjunction
    made of a single ``owner = X``. None when there is no such condition (then the
    registration is a candidate for every job)."""
    for ors in conditions:
        if len(ors) == 1 and ors[0].attr == Attr.OWNER and ors[0].op == Op.EQUAL \
                and isinstance(ors[0].value, str):
            return subject.key(ors[0].value)
    return None


def encode_conditions(conditions: JobQuery) -> str:
    return json.dumps(query_to_json(conditions), separators=(",", ":"), ensure_ascii=True)


def decode_conditions(text: str) -> JobQuery:
    return parse_query(json.loads(text), max_conditions=10**6, max_disjunctions=10**6)


def _condition(c: Condition, old, new) -> bool:
    if c.op == Op.CHANGED:
        if old is None:
            return True
        return _job_value(old, c) != _job_value(new, c)
    return condition_matches(new, c)


def access(cand: Candidate, old, new, record, policy, now: int):
    """How the change of a job from status ``old`` (None: a new job) to ``new`` is
    notified to ``cand``: None (not at all) or the
    :class:`lbtx.server.anonymize.Access` the owner has to the job (``record``, as
    the transaction leaves it: owner, ACL) under ``policy`` (a
    :class:`lbtx.server.authz.ReadPolicy`); ``ANONYMIZED`` also when the registration
    asked for it (Flags.ANONYMIZE)."""
    if cand.expires <= now:
        return None
    if cand.flags & Flags.TERMINAL_STATES:
        if new.state not in TERMINAL_STATES:
            return None
        if new.state == JobState.PURGED and old is not None and old.state in TERMINAL_STATES:
            return None
    try:
        if not all(any(_condition(c, old, new) for c in ors) for ors in cand.conditions):
            return None
    except QueryError:
        return None
    view = SimpleNamespace(owner=record.owner, status=new, acl=record.acl)
    how = policy.access(cand.owner, view) if hasattr(policy, "access") else (
        Access.FULL if policy.may_read(cand.owner, view) else None)
    if how is Access.FULL and cand.flags & Flags.ANONYMIZE:
        return Access.ANONYMIZED
    return how


def matches(cand: Candidate, old, new, record, policy, now: int) -> bool:
    """Whether the change is notified to ``cand`` at all (see :func:`access`)."""
    return access(cand, old, new, record, policy, now) is not None


def changed_fields(old_json: dict | None, new_json: dict) -> list[str]:
    """Names of the status fields that differ (all set fields for a new job)."""
    if old_json is None:
        return sorted(new_json)
    keys = set(old_json) | set(new_json)
    return sorted(k for k in keys if old_json.get(k) != new_json.get(k))


#: the JDL fields a registration with flags 0 does not get (formats.md §9.5 step 7)
JDL_FIELDS = ("jdl", "matched_jdl", "condor_jdl", "cream_jdl", "jdl_classad", "rsl")


def _shown(status, how, shown: Anonymizer, flags) -> dict:
    out = status_json(shown.status(status, how))
    if not flags:
        for name in JDL_FIELDS:
            out.pop(name, None)
    return out


def document(notif_id: str, seq: int, job_id: JobId, old, new, event,
             history: list | None = None, *, how=Access.FULL,
             anonymizer: Anonymizer | None = None, flags=Flags.CLASSADS) -> dict[str, Any]:
    """The JSON document of one message (see :class:`~lbtx.server.notify.model.Message`)
    for a change of the job from status ``old`` (None: new, or a bootstrap) to
    ``new`` by ``event`` (None for a bootstrap message), shown as the owner's access
    ``how`` allows (identities hashed by ``anonymizer``, or a monitoring view). A
    registration with ``flags`` 0 gets no JDL fields (a quirk the original has: any
    flag keeps them)."""
    shown = anonymizer or DEFAULT_ANONYMIZER
    new_json = _shown(new, how, shown, flags)
    old_json = _shown(old, how, shown, flags) if old is not None else None
    doc: dict[str, Any] = {"notification": notif_id, "seq": seq, "jobid": str(job_id),
                           "status": new_json, "changed": changed_fields(old_json, new_json),
                           "event": (event_json_object(shown.event(event, how))
                                     if event is not None else None)}
    if history is not None:
        doc["history"] = [event_json_object(shown.event(e, how)) for e in history]
    return doc


def status_json(status) -> dict:
    """A status as the JSON API renders it."""
    return to_json(status)
