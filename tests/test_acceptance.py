"""The acceptance rules (lbtx.acceptance): registration, duplicates, ACLs, parents and subjobs."""

from __future__ import annotations

import pytest

from lbtx.acceptance import (Delivery, JobRecord, MemoryJobTable, accept, child_class,
                             derive_collection_state, histogram_text, thorough_histogram)
from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import ENUMS, JobState, LogFlag, RegJobJobtype, Source, StatDoneCode, StatJobtype
from lbtx.status import JobStatus
from lbtx.timeval import Timeval

ALICE = "/DC=org/DC=example/CN=Alice"
BOB = "/DC=org/DC=example/CN=Bob"
JOB = JobId.parse("https://lb.example.org:9000/acceptanceTestJob0000001")
T0 = Timeval(1_330_596_000, 250_000)


def seq(ns=1, wm=0, lm=0, lrms=0, ui=0, jss=0):
    return (f"UI={ui:06d}:NS={ns:010d}:WM={wm:06d}:BH=0000000000:JSS={jss:06d}:LM={lm:06d}:"
            f"LRMS={lrms:06d}:APP=000000:LBS=000000")


def regjob(job=JOB, user=ALICE, jobtype=RegJobJobtype.SIMPLE, nsubjobs=0, seed=None, parent=None,
           priority=0, ts=T0, seqcode=None):
    return make_event("RegJob", job_id=job, user=user, timestamp=ts, host="wms.example.org",
                      source=Source.NETWORK_SERVER, seqcode=seqcode or seq(1), jobtype=jobtype,
                      ns="wms.example.org:7443", nsubjobs=nsubjobs, seed=seed, parent=parent,
                      priority=priority)


def running(job=JOB, node="wn01.example.org", ts=Timeval(T0.sec + 100, 0), s=None,
            source=Source.LRMS, user=ALICE):
    return make_event("Running", job_id=job, user=user, timestamp=ts, host="wn01",
                      source=source, seqcode=s or seq(2, wm=2, lm=1, lrms=1), node=node)


def test_event_for_unknown_job_is_refused_and_not_stored():
    """A non-RegJob event for a job the server does not know is refused (ENOENT)."""
    table = MemoryJobTable()
    out = accept(table, running())
    assert out.delivery is Delivery.REJECTED_UNREGISTERED
    assert not out.delivery.accepted
    assert table.get(JOB) is None
    assert table.events == {}


def test_registration_creates_job_owned_by_sender():
    """RegJob creates the job; its owner is the registering user; state Submitted."""
    table = MemoryJobTable()
    out = accept(table, regjob())
    assert out.delivery is Delivery.STORED
    rec = table.get(JOB)
    assert rec.owner == ALICE and rec.status.owner == ALICE
    assert rec.status.state == JobState.SUBMITTED
    assert rec.status.jobtype == StatJobtype.SIMPLE
    assert out.changed[JOB] is rec.status
    assert rec.nevents == 1


def test_refused_event_is_accepted_after_registration():
    """The sender keeps a refused event; once the job exists the same event is stored."""
    table = MemoryJobTable()
    ev = running()
    assert accept(table, ev).delivery is Delivery.REJECTED_UNREGISTERED
    accept(table, regjob())
    assert accept(table, ev).delivery is Delivery.STORED
    assert table.get(JOB).status.state == JobState.RUNNING


def test_duplicate_is_acknowledged_and_has_no_effect():
    """An event equal in type, source, host, timestamp, level and seqcode is a duplicate,
    even when its sender or body differ (for a source any sender may log)."""
    table = MemoryJobTable()
    accept(table, regjob())
    first = running(node="wn01", source=Source.LOG_MONITOR)
    assert accept(table, first).delivery is Delivery.STORED
    before = table.get(JOB).status
    again = first.copy(user=BOB, node="elsewhere")
    out = accept(table, again)
    assert out.delivery is Delivery.DUPLICATE and out.delivery.accepted
    assert table.get(JOB).status is before
    assert table.get(JOB).status.ce_node == "wn01"
    assert len(table.events[JOB]) == 2


def test_event_differing_in_timestamp_is_not_a_duplicate():
    """Changing the microseconds of the timestamp makes it a new event."""
    table = MemoryJobTable()
    accept(table, regjob())
    ev = running()
    accept(table, ev)
    out = accept(table, ev.copy(timestamp=Timeval(ev.timestamp.sec, 1)))
    assert out.delivery is Delivery.STORED


def test_registration_by_another_user_is_refused():
    """A RegJob for a known job from someone other than the owner is refused (EPERM)."""
    table = MemoryJobTable()
    accept(table, regjob())
    out = accept(table, regjob(user=BOB, seqcode=seq(5)))
    assert out.delivery is Delivery.REJECTED_NOT_OWNER
    assert table.get(JOB).owner == ALICE
    assert len(table.events[JOB]) == 1


def test_reregistration_by_owner_with_proxy_suffix_is_processed():
    """Subjects compare normalised: a proxy of the owner may re-register."""
    table = MemoryJobTable()
    accept(table, regjob())
    out = accept(table, regjob(user=ALICE.upper() + "/CN=proxy", seqcode=seq(5)))
    assert out.delivery is Delivery.STORED


def test_exclusive_registration_of_existing_job_is_refused():
    """DG.PRIORITY with the EXCL bit refuses registering a job that exists (EEXIST)."""
    table = MemoryJobTable()
    accept(table, regjob(priority=int(LogFlag.EXCL)))
    out = accept(table, regjob(priority=int(LogFlag.EXCL), seqcode=seq(5)))
    assert out.delivery is Delivery.REJECTED_EXISTS


def test_change_acl_edits_acl_only():
    """ChangeACL adds and removes ACL entries and never changes the status."""
    table = MemoryJobTable()
    accept(table, regjob())
    status = table.get(JOB).status

    def acl(op, ts):
        return make_event("ChangeACL", job_id=JOB, user=ALICE, timestamp=Timeval(T0.sec + ts, 0),
                          host="ui", source=Source.USER_INTERFACE, seqcode=seq(1, ui=ts),
                          user_id=BOB, user_id_type=ENUMS["ChangeACLUserIdType"].DN,
                          permission=ENUMS["ChangeACLPermission"].READ,
                          permission_type=ENUMS["ChangeACLPermissionType"].ALLOW,
                          operation=ENUMS["ChangeACLOperation"][op])

    out = accept(table, acl("ADD", 1))
    assert out.delivery is Delivery.STORED and out.changed == {}
    assert table.get(JOB).acl == [[BOB, "DN", "READ", "ALLOW"]]
    assert table.get(JOB).status is status
    accept(table, acl("REMOVE", 2))
    assert table.get(JOB).acl == []


def test_dag_registration_creates_embryonic_subjobs():
    """RegJob of a DAG with nsubjobs creates Submitted subjob records with derived ids."""
    table = MemoryJobTable()
    out = accept(table, regjob(jobtype=RegJobJobtype.DAG, nsubjobs=3, seed="seed1"))
    kids = JOB.subjobs("seed1", 3)
    parent = table.get(JOB)
    assert list(parent.children) == kids
    assert parent.status.children_num == 3
    assert parent.status.children_hist[JobState.UNKNOWN] == 3
    for kid in kids:
        rec = table.get(kid)
        assert rec.owner == ALICE
        assert rec.status.parent_job == JOB
        assert rec.status.state == JobState.SUBMITTED
        assert rec.status.jobtype == StatJobtype.SIMPLE
        assert rec.status.state_enter_time == T0
        assert rec.status.state_enter_times[JobState.SUBMITTED] == T0.sec
        assert kid in out.changed
    # the subjob's own registration is processed like any other
    reg = regjob(job=kids[0], parent=JOB, ts=Timeval(T0.sec + 1, 0))
    assert accept(table, reg).delivery is Delivery.STORED


def test_existing_subjob_records_are_left_alone():
    """A repeated parent registration does not reset subjobs that already exist."""
    table = MemoryJobTable()
    accept(table, regjob(jobtype=RegJobJobtype.DAG, nsubjobs=2, seed="s"))
    kid = JOB.subjob("s", 0)
    accept(table, running(job=kid))
    accept(table, regjob(jobtype=RegJobJobtype.DAG, nsubjobs=2, seed="s",
                         ts=Timeval(T0.sec + 500, 0)))
    assert table.get(kid).status.state == JobState.RUNNING


def test_child_state_change_moves_parent_histogram_class():
    """A child entering Running moves one count from Unknown to Running in the parent."""
    table = MemoryJobTable()
    accept(table, regjob(jobtype=RegJobJobtype.DAG, nsubjobs=2, seed="s"))
    kid = JOB.subjob("s", 1)
    out = accept(table, running(job=kid))
    hist = table.get(JOB).status.children_hist
    assert hist[JobState.RUNNING] == 1 and hist[JobState.UNKNOWN] == 1
    assert JOB in out.changed
    # DAG parents get no CollectionState
    assert len(out.applied) == 1


def test_collection_state_generated_and_applied():
    """For a collection, a running child makes the parent Running through a generated
    CollectionState event with the parent's code advanced in LBS."""
    table = MemoryJobTable()
    accept(table, regjob(jobtype=RegJobJobtype.COLLECTION, nsubjobs=2, seed="c"))
    kid = JOB.subjob("c", 0)
    out = accept(table, running(job=kid))
    assert [a.generated for a in out.applied] == [False, True]
    gen = out.applied[1].event
    assert gen.type_name == "CollectionState"
    assert gen.source == Source.LB_SERVER
    assert gen.state == "Running" and gen.child == kid and gen.child_event == "Running"
    assert gen.seqcode.endswith("LBS=000001")
    assert gen.histogram.startswith("Submitted=0, Waiting=0, Ready=0, Scheduled=0, Running=1,")
    assert table.get(JOB).status.state == JobState.RUNNING
    assert table.events[JOB][-1] is gen


def test_child_of_missing_parent_is_processed_without_parent_update():
    """D11: a child whose parent record is missing is still stored and processed."""
    table = MemoryJobTable()
    other = JobId.parse("https://lb.example.org:9000/missingParent00000000")
    accept(table, regjob(parent=other))
    out = accept(table, running())
    assert out.delivery is Delivery.STORED
    assert table.get(JOB).status.state == JobState.RUNNING
    assert other not in out.changed


@pytest.mark.parametrize("state,done_code,cls", [
    (JobState.RUNNING, None, JobState.RUNNING),
    (JobState.DONE, StatDoneCode.OK, JobState.DONE),
    (JobState.DONE, StatDoneCode.FAILED, JobState.UNKNOWN),
    (JobState.DONE, None, JobState.UNKNOWN),
    (JobState.ABORTED, None, JobState.ABORTED),
    (JobState.CANCELLED, None, JobState.CLEARED),
    (JobState.CLEARED, None, JobState.CLEARED),
    (JobState.WAITING, None, JobState.UNKNOWN),
    (JobState.PURGED, None, JobState.UNKNOWN),
])
def test_child_classes(state, done_code, cls):
    """§5.2 class table."""
    assert child_class(state, done_code) == cls


@pytest.mark.parametrize("hist,state", [
    ({JobState.RUNNING: 1, JobState.CLEARED: 2}, JobState.RUNNING),
    ({JobState.CLEARED: 3}, JobState.CLEARED),
    ({JobState.DONE: 2, JobState.CLEARED: 1}, JobState.DONE),
    ({JobState.ABORTED: 1, JobState.DONE: 2}, JobState.ABORTED),
    ({JobState.UNKNOWN: 1, JobState.DONE: 2}, JobState.WAITING),
])
def test_collection_derivation(hist, state):
    """§5.3 derivation rules for a collection of three."""
    arr = [0] * 12
    for k, v in hist.items():
        arr[k] = v
    st = JobStatus(jobtype=StatJobtype.COLLECTION, children_num=3, children_hist=arr)
    assert derive_collection_state(st) == state


def test_histogram_text_lists_eleven_slots():
    arr = [0] * 12
    arr[JobState.UNKNOWN] = 2
    text = histogram_text(arr)
    assert text.count("=") == 11 and "Unknown=2" in text and text.endswith("Purged=0")


def test_thorough_histogram_counts_actual_states():
    """The thorough histogram counts children by their own state, not by class."""
    table = MemoryJobTable()
    accept(table, regjob(jobtype=RegJobJobtype.DAG, nsubjobs=2, seed="s"))
    accept(table, running(job=JOB.subjob("s", 0)))
    hist = thorough_histogram(table, table.get(JOB))
    assert hist[JobState.RUNNING] == 1 and hist[JobState.SUBMITTED] == 1


def test_job_record_defaults():
    rec = JobRecord(job_id=JOB, owner=ALICE, status=JobStatus())
    assert rec.acl == [] and rec.children == {} and rec.nevents == 0


# --- logging rights (formats.md §6.5) -----------------------------------------------------
def usertag(user, name="phase", value="1", source=Source.USER_INTERFACE, s=None):
    return make_event("UserTag", job_id=JOB, user=user, timestamp=Timeval(T0.sec + 50, 0),
                      host="ui", source=source, seqcode=s or seq(1, ui=1), name=name, value=value)


def change_acl(user_id, permission, operation="ADD", permission_type="ALLOW", n=2):
    return make_event("ChangeACL", job_id=JOB, user=ALICE, timestamp=Timeval(T0.sec + 10, n),
                      host="ui", source=Source.USER_INTERFACE, seqcode=seq(1, ui=n),
                      user_id=user_id, user_id_type=ENUMS["ChangeACLUserIdType"]["DN"],
                      permission=ENUMS["ChangeACLPermission"][permission],
                      permission_type=ENUMS["ChangeACLPermissionType"][permission_type],
                      operation=ENUMS["ChangeACLOperation"][operation])


@pytest.mark.parametrize("source", [Source.USER_INTERFACE, Source.LRMS, Source.APPLICATION])
def test_owner_sources_are_for_the_owner_only(source):
    """UserInterface, LRMS and Application events of another sender are refused
    (EPERM), stored nowhere, and change nothing; the owner's are stored."""
    table = MemoryJobTable()
    accept(table, regjob())
    before = table.get(JOB).status
    out = accept(table, running(source=source, user=BOB))
    assert out.delivery is Delivery.REJECTED_NOT_ALLOWED and not out.delivery.accepted
    assert "owner" in out.reason
    assert table.get(JOB).status is before and len(table.events[JOB]) == 1
    assert accept(table, running(source=source)).delivery is Delivery.STORED


def test_other_sources_refuse_only_anonymous():
    table = MemoryJobTable()
    accept(table, regjob())
    out = accept(table, running(source=Source.LOG_MONITOR, user="anonymous"))
    assert out.delivery is Delivery.REJECTED_NOT_ALLOWED and "anonymous" in out.reason
    assert accept(table, running(source=Source.LOG_MONITOR, user=BOB)).delivery is Delivery.STORED


def test_user_tags_need_the_tag_right():
    """A user tag from another user needs TAG in the ACL for its subject; a DENY
    entry wins; READ is not enough."""
    table = MemoryJobTable()
    accept(table, regjob())
    assert accept(table, usertag(BOB)).delivery is Delivery.REJECTED_NOT_ALLOWED
    accept(table, change_acl(BOB, "READ"))
    assert accept(table, usertag(BOB)).delivery is Delivery.REJECTED_NOT_ALLOWED
    accept(table, change_acl(BOB, "TAG", n=3))
    assert accept(table, usertag(BOB)).delivery is Delivery.STORED
    assert table.get(JOB).status.user_tags == {"phase": "1"}
    accept(table, change_acl(BOB, "TAG", permission_type="DENY", n=4))
    out = accept(table, usertag(BOB, value="2", s=seq(1, ui=3)))
    assert out.delivery is Delivery.REJECTED_NOT_ALLOWED
    assert accept(table, usertag("anonymous", s=seq(1, ui=4))).delivery \
        is Delivery.REJECTED_NOT_ALLOWED


def test_take_payload_ownership_from_anyone_but_anonymous():
    table = MemoryJobTable()
    accept(table, regjob())
    take = make_event("TakePayloadOwnership", job_id=JOB, user=BOB,
                      timestamp=Timeval(T0.sec + 5, 0), host="wn", source=Source.APPLICATION,
                      seqcode=seq(1))
    assert accept(table, take.copy(user="anonymous")).delivery is Delivery.REJECTED_NOT_ALLOWED
    assert accept(table, take).delivery is Delivery.STORED


def test_trusted_senders_skip_the_check():
    table = MemoryJobTable()
    accept(table, regjob())
    out = accept(table, running(user=BOB), trusted=lambda user: user == BOB)
    assert out.delivery is Delivery.STORED
    out = accept(table, usertag("anonymous"), trusted=lambda user: True)
    assert out.delivery is Delivery.STORED
