"""Read access (formats.md §11.4 steps 1-4): noauth and super-users, owner, payload
owner, ACL entries for DNs, VOMS groups and FQANs, DENY over ALLOW."""

from __future__ import annotations

import pytest

from lbtx.acceptance import JobRecord
from lbtx.gss.identity import Identity
from lbtx.jobid import JobId
from lbtx.server.authz import Caller, ReadPolicy, acl_allows_read, caller_of, fqan_group
from lbtx.status import JobStatus

ALICE = "/DC=org/DC=example/CN=Alice"
BOB = "/DC=org/DC=example/CN=Bob"
CAROL = "/DC=org/DC=example/CN=Carol"
JOB = JobId.parse("https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg")


def record(owner=ALICE, acl=(), payload_owner=None) -> JobRecord:
    return JobRecord(JOB, owner, JobStatus(job_id=JOB, owner=owner, payload_owner=payload_owner),
                     acl=[list(e) for e in acl])


def test_owner_reads_and_others_do_not():
    """Step 2: the owner, compared as subjects are (case, /CN=proxy, emailAddress)."""
    policy = ReadPolicy()
    assert policy.may_read(ALICE, record())
    assert policy.may_read(ALICE.upper() + "/CN=proxy/CN=proxy", record())
    assert policy.may_read("/DC=org/CN=A/Email=a@x", record(owner="/DC=org/CN=A/emailAddress=a@x"))
    assert not policy.may_read(BOB, record())


def test_anonymous_reads_nothing_unless_checks_are_off():
    """Anonymous callers (None) read only with --noauth."""
    assert not ReadPolicy().may_read(None, record())
    assert ReadPolicy(noauth=True).may_read(None, record())
    assert ReadPolicy(noauth=True).may_read(BOB, record())


def test_superusers_by_dn_and_by_fqan():
    """Step 1: --superuser DN, or FQAN:<fqan> matched against the caller's FQANs."""
    policy = ReadPolicy(superusers=(CAROL, "FQAN:/admins/Role=lbadmin"))
    assert policy.may_read(CAROL, record()) and policy.is_superuser(CAROL.lower())
    assert not policy.may_read(BOB, record())
    admin = Caller(BOB, ["/vo/Role=NULL/Capability=NULL", "/admins/Role=lbadmin/Capability=NULL"])
    assert policy.is_superuser(admin) and policy.may_read(admin, record())
    assert not policy.is_superuser(Caller(BOB, ["/admins/Role=other"]))
    assert not policy.is_superuser(None)


def test_payload_owner_reads():
    """Step 3: the payload owner of a pilot job."""
    policy = ReadPolicy()
    assert policy.may_read(BOB, record(payload_owner=BOB))
    assert not policy.may_read(CAROL, record(payload_owner=BOB))


def test_acl_read_for_a_dn():
    """Step 4: a READ ALLOW entry for the caller's DN; TAG does not give READ."""
    acl = [[BOB, "DN", "READ", "ALLOW"], [CAROL, "DN", "TAG", "ALLOW"]]
    policy = ReadPolicy()
    assert policy.may_read(BOB.lower(), record(acl=acl))
    assert not policy.may_read(CAROL, record(acl=acl))


def test_deny_wins_over_allow():
    """An entry that denies READ to the caller wins whatever the order."""
    for acl in ([[BOB, "DN", "READ", "ALLOW"], ["/vo", "FQAN", "READ", "DENY"]],
                [["/vo", "FQAN", "READ", "DENY"], [BOB, "DN", "READ", "ALLOW"]]):
        assert not acl_allows_read(acl, Caller(BOB, ["/vo/Role=NULL/Capability=NULL"]))
        assert acl_allows_read(acl, Caller(BOB))  # the DENY does not match a caller without FQANs
    assert not acl_allows_read([[BOB, "DN", "READ", "DENY"]], Caller(BOB))


@pytest.mark.parametrize("entry,fqans,allowed", [
    (["/atlas/prod", "FQAN", "READ", "ALLOW"], ["/atlas/prod/Role=NULL/Capability=NULL"], True),
    (["/atlas/prod/Role=NULL", "FQAN", "READ", "ALLOW"], ["/atlas/prod"], True),
    (["/atlas/prod", "FQAN", "READ", "ALLOW"], ["/atlas/Role=prod"], False),
    (["/atlas/prod/Role=x", "FQAN", "READ", "ALLOW"], ["/atlas/prod/Role=x/Capability=NULL"], True),
    (["atlas:/atlas/prod", "GROUP", "READ", "ALLOW"], ["/atlas/prod/Role=pilot"], True),
    (["atlas:prod", "GROUP", "READ", "ALLOW"], ["/atlas/prod/Role=NULL"], True),
    (["atlas:atlas", "GROUP", "READ", "ALLOW"], ["/atlas/Role=NULL"], True),
    (["atlas:prod", "GROUP", "READ", "ALLOW"], ["/atlas/Role=NULL"], False),
    (["cms:prod", "GROUP", "READ", "ALLOW"], ["/atlas/prod"], False),
    (["noseparator", "GROUP", "READ", "ALLOW"], ["/noseparator"], False),
    (["/atlas/prod", "FQAN", "READ", "ALLOW"], [], False),
])
def test_acl_groups_and_fqans(entry, fqans, allowed):
    """GROUP (vo:group) and FQAN entries match the caller's VOMS attributes."""
    assert acl_allows_read([entry], Caller(BOB, fqans)) is allowed


def test_fqan_group():
    assert fqan_group("/atlas/prod/Role=pilot/Capability=NULL") == ("atlas", "/atlas/prod")
    assert fqan_group("/atlas") == ("atlas", "/atlas")


def test_callers_from_strings_and_identities():
    """A str, a Caller, an Identity (with its FQANs) or None."""
    assert caller_of(None) is None
    c = caller_of(ALICE)
    assert isinstance(c, Caller) and c == ALICE and c.fqans == ()
    assert caller_of(c) is c
    x509 = caller_of(Identity.x509(ALICE + "/CN=proxy", ("/vo/Role=NULL",)))
    assert x509 == ALICE and x509.fqans == ("/vo/Role=NULL",)
    assert caller_of(Identity.unix("alice", 1000)) == "unix:alice"
    assert caller_of(Identity.anonymous()) is None
    assert "Caller(" in repr(x509)


# --- steps 5-7: the policy file (§11.4, §11.6) -----------------------------------------------
from lbtx.server.anonymize import Access, Anonymizer  # noqa: E402
from lbtx.server.policy import parse_policy  # noqa: E402

POLICY = parse_policy(f'''resource "LB" {{
    action "ADMIN_ACCESS" {{ rule permit {{ fqan = "/ops/Role=lbadmin" }} }}
    action "READ_ALL" {{ rule permit {{ subject = "{CAROL}" }} }}
    action "READ_ANONYMIZED" {{ rule permit {{ fqan = "/stats" }} }}
    action "STATUS_FOR_MONITORING" {{ rule permit {{ fqan = "/mon" }} rule permit {{ fqan = "/stats" }} }}
}}''')


def test_policy_steps_in_order():
    """ADMIN_ACCESS makes a super-user; READ_ALL reads in full; READ_ANONYMIZED
    before STATUS_FOR_MONITORING; nothing for anybody else."""
    policy = ReadPolicy(policy=POLICY)
    rec = record()
    assert policy.access(Caller("/CN=root", ["/ops/Role=lbadmin"]), rec) is Access.FULL
    assert policy.is_superuser(Caller("/CN=root", ["/ops/Role=lbadmin"]))
    assert policy.access(CAROL, rec) is Access.FULL and policy.unrestricted(CAROL)
    assert not policy.is_superuser(CAROL)
    assert policy.access(Caller("/CN=s", ["/stats"]), rec) is Access.ANONYMIZED
    assert policy.access(Caller("/CN=m", ["/mon"]), rec) is Access.MONITORING
    assert not policy.unrestricted(Caller("/CN=m", ["/mon"]))
    assert policy.access(BOB, rec) is None and not policy.may_read(BOB, rec)
    assert policy.access(ALICE, rec) is Access.FULL
    assert ReadPolicy().access(CAROL, rec) is None          # no policy file: no step 5


def test_anonymized_and_monitoring_views():
    from lbtx.events import make_event
    from lbtx.schema import ENUMS, JobState, Source
    from lbtx.timeval import Timeval
    a = Anonymizer(b"server salt")
    s = JobStatus(job_id=JOB, owner=ALICE, payload_owner=BOB, state=JobState.RUNNING,
                  destination="ce.example.org", reason="private reason",
                  jdl='[ Executable = "/bin/secret"; VirtualOrganisation = "voce"; ]')
    anon = a.status(s, Access.ANONYMIZED)
    assert anon.owner == a.hash(ALICE) != ALICE and anon.payload_owner == a.hash(BOB)
    assert anon.reason == "private reason" and s.owner == ALICE          # original untouched
    assert Anonymizer(b"other salt").hash(ALICE) != anon.owner
    mon = a.status(s, Access.MONITORING)
    assert mon.owner is None and mon.reason is None and mon.payload_owner is None
    assert mon.state == JobState.RUNNING and mon.destination == "ce.example.org"
    assert mon.jdl == '[ VirtualOrganisation = "voce"; ]' and "secret" not in mon.jdl
    assert a.status(s, Access.FULL) is s
    acl = make_event("ChangeACL", job_id=JOB, user=ALICE, timestamp=Timeval(1, 0), host="ui",
                     source=Source.USER_INTERFACE, seqcode="UI=000001:NS=0000000001:WM=000000:"
                     "BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000",
                     user_id=BOB, user_id_type=ENUMS["ChangeACLUserIdType"]["DN"],
                     permission=ENUMS["ChangeACLPermission"]["READ"],
                     permission_type=ENUMS["ChangeACLPermissionType"]["ALLOW"],
                     operation=ENUMS["ChangeACLOperation"]["ADD"])
    hidden = a.event(acl, Access.ANONYMIZED)
    assert hidden.user == a.hash(ALICE) and hidden.user_id == a.hash(BOB)
    gone = a.event(acl, Access.MONITORING)
    assert gone.user is None and gone.user_id is None
