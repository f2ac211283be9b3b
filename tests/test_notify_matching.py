"""Notification matching without a database (lbtx.server.notify.matching, formats.md
§9.5) and the notification id parser of lbtx.server.notify.model."""

from __future__ import annotations

import pytest

from lbtx.acceptance import JobRecord
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op, QueryError
from lbtx.schema import JobState
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify import matching
from lbtx.server.notify.matching import Candidate, matches
from lbtx.server.notify.model import Flags, notif_unique
from lbtx.status import JobStatus, to_json

ALICE = "/DC=org/DC=example/CN=Alice"
BOB = "/DC=org/DC=example/CN=Bob"
JOB = JobId.parse("https://lb.example.org:9000/abcdefghijklmnopqrstuv")
OPEN = ReadPolicy(noauth=True)


def status(state: JobState, **kw) -> JobStatus:
    return JobStatus(job_id=JOB, owner=ALICE, state=state, **kw)


def record(st: JobStatus, acl=()) -> JobRecord:
    return JobRecord(job_id=JOB, owner=ALICE, status=st, acl=[list(e) for e in acl])


def cand(conditions=(), flags=Flags.NONE, owner=ALICE, expires=100) -> Candidate:
    return Candidate("u", "https://lb.example.org:9000/NOTIF:u", owner, expires,
                     tuple(conditions), flags)


def test_terminal_states():
    """With terminal_states only terminal new states match, Purged only after a
    state that was not terminal."""
    c = cand(flags=Flags.TERMINAL_STATES)
    running, aborted, purged = (status(s) for s in (JobState.RUNNING, JobState.ABORTED,
                                                    JobState.PURGED))
    assert not matches(c, status(JobState.SUBMITTED), running, record(running), OPEN, 0)
    assert matches(c, running, aborted, record(aborted), OPEN, 0)
    assert matches(c, running, purged, record(purged), OPEN, 0)
    assert not matches(c, aborted, purged, record(purged), OPEN, 0)
    assert matches(cand(), aborted, purged, record(purged), OPEN, 0)


def test_changed_and_state_conditions():
    """``changed`` compares the previous and the new value (a new job has changed
    everything); other operators look at the new state only."""
    c = cand(((Condition(Attr.DESTINATION, Op.CHANGED),),))
    a, b = status(JobState.READY, destination="ce1"), status(JobState.SCHEDULED, destination="ce1")
    other = status(JobState.SCHEDULED, destination="ce2")
    assert not matches(c, a, b, record(b), OPEN, 0)
    assert matches(c, a, other, record(other), OPEN, 0)
    assert matches(c, None, b, record(b), OPEN, 0)
    done = cand(((Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),
                  Condition(Attr.STATUS, Op.EQUAL, JobState.ABORTED)),))
    assert matches(done, a, status(JobState.ABORTED), record(a), OPEN, 0)
    assert not matches(done, a, b, record(b), OPEN, 0)


def test_expiry_unresolved_owner_and_read_access():
    st = status(JobState.RUNNING)
    assert not matches(cand(expires=10), None, st, record(st), OPEN, 10)
    assert matches(cand(expires=11), None, st, record(st), OPEN, 10)
    unresolved = cand(((Condition(Attr.OWNER, Op.EQUAL, None),),))
    assert not matches(unresolved, None, st, record(st), OPEN, 0)
    strict = ReadPolicy()
    assert matches(cand(), None, st, record(st), strict, 0)
    assert not matches(cand(owner=BOB), None, st, record(st), strict, 0)
    granted = record(st, acl=[(BOB, "DN", "READ", "ALLOW")])
    assert matches(cand(owner=BOB), None, st, granted, strict, 0)
    denied = record(st, acl=[(BOB, "DN", "READ", "ALLOW"), (BOB, "DN", "READ", "DENY")])
    assert not matches(cand(owner=BOB), None, st, denied, strict, 0)


def test_conditions_checked_encoded_and_indexed():
    owner = (Condition(Attr.OWNER, Op.EQUAL, ALICE + "/CN=proxy"),)
    state = (Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),
             Condition(Attr.STATUS, Op.UNEQUAL, JobState.ABORTED))
    query = matching.check_conditions([list(state), owner])
    assert matching.decode_conditions(matching.encode_conditions(query)) == query
    assert matching.indexed_owner(query) == ALICE.casefold()
    assert matching.indexed_owner((state,)) is None
    two = (Condition(Attr.OWNER, Op.EQUAL, ALICE), Condition(Attr.OWNER, Op.EQUAL, BOB))
    assert matching.indexed_owner((two,)) is None
    assert matching.indexed_owner(((Condition(Attr.OWNER, Op.UNEQUAL, ALICE),),)) is None
    assert matching.resolve_owner(((Condition(Attr.OWNER, Op.EQUAL, None),),), BOB) == (
        (Condition(Attr.OWNER, Op.EQUAL, BOB),),)
    for bad in ([[]], [[Condition(Attr.JOBID, Op.EQUAL, JOB)]], [["status"]],
                [[Condition(Attr.STATUS, Op.EQUAL, JobState.DONE), owner[0]]]):
        with pytest.raises(QueryError):
            matching.check_conditions(bad)


def test_changed_fields_and_document():
    a, b = status(JobState.READY), status(JobState.SCHEDULED, destination="ce1")
    old, new = to_json(a), to_json(b)
    assert matching.document("n", 1, JOB, a, b, None)["changed"] == \
        matching.changed_fields(old, new)
    assert matching.changed_fields(old, new) == sorted(
        k for k in set(old) | set(new) if old.get(k) != new.get(k))
    assert {"state", "destination"} <= set(matching.changed_fields(old, new))
    assert matching.changed_fields(None, new) == sorted(new)
    assert matching.changed_fields(new, new) == []


def test_anonymized_and_monitoring_documents():
    """The anonymized flag turns full access into anonymised access; anonymised
    documents carry the anonymizer's hashes, monitoring ones a reduced status."""
    from lbtx.events import make_event
    from lbtx.schema import Source
    from lbtx.server.anonymize import Access, Anonymizer
    from lbtx.timeval import Timeval
    st = status(JobState.RUNNING, payload_owner=BOB, destination="ce1")
    assert matching.access(cand(flags=Flags.ANONYMIZE), None, st, record(st), OPEN, 0) \
        is Access.ANONYMIZED
    assert matching.access(cand(), None, st, record(st), OPEN, 0) is Access.FULL
    ev = make_event("Running", timestamp=Timeval(1, 0), host="wn", source=Source.LRMS,
                    job_id=JOB, user=BOB, node="wn01")
    salted = Anonymizer(b"salt")
    plain = matching.document("n", 1, JOB, None, st, ev)
    anon = matching.document("n", 1, JOB, None, st, ev, how=Access.ANONYMIZED,
                             anonymizer=salted)
    assert plain["status"]["owner"] == ALICE and plain["event"]["user"] == BOB
    assert anon["status"]["owner"] == salted.hash(ALICE)
    assert anon["status"]["payload_owner"] == salted.hash(BOB)
    assert anon["event"]["user"] == salted.hash(BOB)
    assert ALICE not in repr(anon) and BOB not in repr(anon)
    assert anon["changed"] == plain["changed"]
    default = matching.document("n", 1, JOB, None, st, ev, how=Access.ANONYMIZED)
    assert default["status"]["owner"] == matching.DEFAULT_ANONYMIZER.hash(ALICE) != ALICE
    mon = matching.document("n", 1, JOB, status(JobState.READY), st, ev, how=Access.MONITORING)
    assert ALICE not in repr(mon) and BOB not in repr(mon)
    assert mon["status"]["state"] == "Running" and mon["status"]["destination"] == "ce1"
    assert "state" in mon["changed"]
    with_jdl = status(JobState.RUNNING, jdl="[ Executable = \"x\"; ]")
    assert "jdl" in matching.document("n", 1, JOB, None, with_jdl, ev)["status"]
    assert "jdl" in matching.document("n", 1, JOB, None, with_jdl, ev,
                                      flags=Flags.TERMINAL_STATES)["status"]
    assert "jdl" not in matching.document("n", 1, JOB, None, with_jdl, ev,
                                          flags=Flags.NONE)["status"]
    boot = matching.document("n", 1, JOB, None, st, None)
    assert boot["event"] is None and boot["changed"] == sorted(boot["status"])


@pytest.mark.parametrize("text", [
    "", "NOTIF:abc", "https://lb.example.org:9000/abc", "https://lb.example.org:9000/NOTIF:",
    "https://lb.example.org:9000/NOTIF:a/b", "https://lb.example.org:9000/NOTIF:a b",
    "ftp://lb.example.org/NOTIF:abc", "https://lb.example.org:9000", "https:/x/NOTIF:abc",
    "https://lb.example.org:9000/notif:abc", "https://lb.example.org:9000/NOTIF:a\n",
    "https://h/NOTIF:" + "x" * 257, "https://h/NOTIF:caf\u00e9", "https://h/NOTIF:a\x00b",
    None, b"https://lb.example.org:9000/NOTIF:abc", 12])
def test_malformed_notification_ids(text):
    with pytest.raises(ValueError):
        notif_unique(text)


def test_notification_unique():
    assert notif_unique("https://lb.example.org:9000/NOTIF:L6y4Gd4tDzN_90OMZsp0kQ") == \
        "L6y4Gd4tDzN_90OMZsp0kQ"
    assert notif_unique("https://h/NOTIF:" + "x" * 256) == "x" * 256
