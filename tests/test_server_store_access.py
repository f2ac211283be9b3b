"""Connection-level store rights (formats.md §11.5): with a policy file, the store
peer needs the action of each event; without one, nothing is checked here."""

from __future__ import annotations

import pytest

from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import Source
from lbtx.server.authz import Caller, ReadPolicy
from lbtx.server.policy import Action, parse_policy
from lbtx.server.store_access import required_actions, store_refusal
from lbtx.timeval import Timeval

JOB = JobId.parse("https://lb.example.org:9000/storeAccessJob0000000001")
IL = "/DC=org/DC=example/CN=host/il.example.org"
ALICE = "/DC=org/DC=example/CN=Alice"
SEQ = ("UI=000001:NS=0000000001:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:"
       "APP=000000:LBS=000000")


def event(type_name, user=ALICE, **fields):
    return make_event(type_name, job_id=JOB, user=user, timestamp=Timeval(1, 0), host="h",
                      source=Source.LOG_MONITOR, seqcode=SEQ, **fields)


@pytest.mark.parametrize("name, fields, want", [
    ("RegJob", {"nsubjobs": 0}, (Action.REGISTER_JOBS, Action.REGISTER_FOREIGN)),
    ("GrantPayloadOwnership", {"payload_owner": "/CN=p"}, (Action.GRANT_OWNERSHIP,)),
    ("UserTag", {"name": "a", "value": "b"}, (Action.LOG_GENERAL_EVENTS,)),
    ("CurDescr", {}, (Action.LOG_GENERAL_EVENTS,)),
    ("Running", {"node": "wn"}, (Action.LOG_CE_EVENTS,)),
    ("ReallyRunning", {}, (Action.LOG_CE_EVENTS,)),
    ("Done", {}, (Action.LOG_CE_EVENTS,)),
    ("Transfer", {}, (Action.LOG_WMS_EVENTS,)),
    ("Accepted", {}, (Action.LOG_WMS_EVENTS,)),
])
def test_required_actions(name, fields, want):
    assert required_actions(event(name, **fields), IL) == want


def test_a_direct_registration_needs_no_register_foreign():
    assert required_actions(event("RegJob", user=ALICE, nsubjobs=0), ALICE) == \
        (Action.REGISTER_JOBS,)


POLICY = parse_policy(f'''resource "LB" {{
    action "LOG_WMS_EVENTS" {{ rule permit {{ subject = "{IL}" }} }}
    action "REGISTER_JOBS" {{ rule permit {{ subject = "{IL}" }} rule permit {{ subject = "{ALICE}" }} }}
    action "ADMIN_ACCESS" {{ rule permit {{ fqan = "/ops" }} }}
}}''')


def test_refusals_name_what_is_missing():
    policy = ReadPolicy(policy=POLICY)
    assert store_refusal(policy, IL, event("Accepted")) == ""
    reason = store_refusal(policy, IL, event("Running", node="wn"))
    assert "LOG_CE_EVENTS" in reason and reason.startswith("Not allowed to log events here")
    assert "REGISTER_FOREIGN" in store_refusal(policy, IL, event("RegJob", nsubjobs=0))
    assert store_refusal(policy, ALICE, event("RegJob", nsubjobs=0)) == ""
    assert "anonymous" in store_refusal(policy, None, event("Accepted"))
    assert store_refusal(policy, Caller("/CN=root", ["/ops"]), event("Running", node="w")) == ""


def test_without_a_policy_file_or_with_noauth_nothing_is_refused():
    assert store_refusal(ReadPolicy(), None, event("Running", node="wn")) == ""
    assert store_refusal(ReadPolicy(policy=POLICY, noauth=True), "/CN=x", event("Done")) == ""
