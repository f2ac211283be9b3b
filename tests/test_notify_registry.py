"""The notification operations (formats.md §9.2-9.3) over a real SQLite store:
validity, owner rules, expiry, job-list splitting, destinations (hostile ones too)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.schema import JobState
from lbtx.server.authz import Caller, ReadPolicy
from lbtx.server.notify.model import Flags
from lbtx.server.notify.registry import (DAY, EXPIRED, HOUR, MAX_DESTINATION, Registry, Validity,
                                         check_destination, split_conditions)
from lbtx.server.store import open_store

ALICE = Caller("/DC=org/DC=example/CN=Alice")
BOB = Caller("/DC=org/DC=example/CN=Bob")
ROOT = Caller("/DC=org/DC=example/CN=Admin")
NOW = 1_700_000_000
JOB1 = JobId.parse("https://lb.example.org:9000/job1aaaaaaaaaaaaaaaaaa")
JOB2 = JobId.parse("https://lb.example.org:9000/job2aaaaaaaaaaaaaaaaaa")


def nid(n: int) -> str:
    return f"https://lb.example.org:9000/NOTIF:reg{n:04d}xxxxxxxxxxxxxxx"


@pytest.fixture
def store(tmp_path):
    s = open_store("sqlite:///" + str(tmp_path / "n.sqlite"), reactor)
    pytest_twisted.blockon(s.start())
    yield s
    pytest_twisted.blockon(s.stop())


@pytest.fixture
def clock():
    c = Clock()
    c.advance(NOW)
    return c


@pytest.fixture
def registry(store, clock):
    woken = []
    r = Registry(store, policy=ReadPolicy(superusers=(str(ROOT),)), clock=clock,
                 on_change=woken.append)
    r.woken = woken
    return r


async def _code(d):
    try:
        await d
    except LBError as e:
        return e.code
    return None


def test_validity_default_and_cap():
    """Absent or <= 0 -> now + default; anything capped at now + maximum."""
    v = Validity()
    assert v.grant(None, NOW) == NOW + 2 * HOUR
    assert v.grant(0, NOW) == v.grant(-5, NOW) == NOW + 2 * HOUR
    assert v.grant(NOW + 60, NOW) == NOW + 60
    assert v.grant(NOW + 10 * DAY, NOW) == NOW + DAY
    assert Validity(default=10, maximum=20).grant(None, NOW) == NOW + 10
    with pytest.raises(ValueError):
        Validity(default=30, maximum=20)


@pytest.mark.parametrize("bad", ["", "ftp://h/x", "http://", "http:///path", "http://h:99999/",
                                 "http://h:x/", "a b:1", "host", "host:0", "host:70000",
                                 ":80", "http://h/\x00", "http://h/\n", 42,
                                 "http://h/" + "x" * MAX_DESTINATION])
def test_bad_destinations_are_einval(bad):
    """Malformed, hostile or oversized destinations are EINVAL."""
    with pytest.raises(LBError) as e:
        check_destination(bad)
    assert e.value.code == ErrorCode.EINVAL


def test_good_destinations():
    for good in (None, "http://127.0.0.1:8080/hook", "https://h.example.org/x?y=1",
                 "ui.example.org:40123", "0.0.0.0:40123"):
        assert check_destination(good) == good


def test_jobid_conditions_become_the_job_list():
    """jobid-only disjunctions -> job ids; the rest stays; owner NULL -> the caller."""
    conds = ((Condition(Attr.JOBID, Op.EQUAL, JOB1), Condition(Attr.JOBID, Op.EQUAL, JOB2)),
             (Condition(Attr.OWNER, Op.EQUAL, None),),
             (Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),))
    rest, jobs = split_conditions(conds, ALICE)
    assert jobs == (str(JOB1), str(JOB2))
    assert rest == ((Condition(Attr.OWNER, Op.EQUAL, str(ALICE)),),
                    (Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),))
    assert split_conditions((), ALICE) == ((), ())


@pytest.mark.parametrize("conds", [
    ((Condition(Attr.JOBID, Op.EQUAL, JOB1), Condition(Attr.OWNER, Op.EQUAL, "x")),),
    ((Condition(Attr.JOBID, Op.UNEQUAL, JOB1),),),
    ((Condition(Attr.STATUS, Op.EQUAL, JobState.DONE), Condition(Attr.OWNER, Op.EQUAL, "x")),),
])
def test_conditions_that_cannot_be_split_are_einval(conds):
    with pytest.raises(LBError) as e:
        split_conditions(conds, ALICE)
    assert e.value.code == ErrorCode.EINVAL


@pytest_twisted.inlineCallbacks
def test_new_stores_and_grants_validity(registry, store, clock):
    """New: owner is the caller, default validity, job list split, flags kept; woken."""
    conds = ((Condition(Attr.JOBID, Op.EQUAL, JOB1),),)
    reg = yield registry.new(ALICE, nid(1), destination="http://h/x", conditions=conds,
                             flags=int(Flags.HISTORY | Flags.BOOTSTRAP) | 2)
    assert reg.owner == str(ALICE) and reg.expires == NOW + 2 * HOUR
    assert reg.job_ids == (str(JOB1),) and reg.conditions == ()
    assert reg.flags == Flags.HISTORY | Flags.TERMINAL_STATES | Flags.BOOTSTRAP
    assert (yield store.registration(nid(1))).destination == "http://h/x"
    assert registry.woken == [nid(1)]
    capped = yield registry.new(ALICE, nid(2), destination=None, expires=NOW + 5 * DAY)
    assert capped.expires == NOW + DAY


@pytest_twisted.inlineCallbacks
def test_new_refusals(registry):
    """Anonymous -> EPERM; not a notification id -> EINVAL; a taken id -> EEXIST."""
    assert (yield _code(registry.new(None, nid(1), destination=None))) == ErrorCode.EPERM
    for bad in ("https://lb.example.org:9000/job1", "NOTIF:x", "", None):
        assert (yield _code(registry.new(ALICE, bad, destination=None))) == ErrorCode.EINVAL
    yield registry.new(ALICE, nid(1), destination=None)
    assert (yield _code(registry.new(ALICE, nid(1), destination=None))) == ErrorCode.EEXIST


@pytest_twisted.inlineCallbacks
def test_owner_only_superuser_may_drop(registry, store):
    """Bind/Change/Refresh/Drop by another identity -> EPERM; a super-user may drop."""
    yield registry.new(ALICE, nid(1), destination=None)
    for op in (lambda c: registry.bind(c, nid(1), destination="http://h/"),
               lambda c: registry.change(c, nid(1), conditions=()),
               lambda c: registry.refresh(c, nid(1)),
               lambda c: registry.drop(c, nid(1)),
               lambda c: registry.get(c, nid(1))):
        assert (yield _code(op(BOB))) == ErrorCode.EPERM
    assert (yield registry.get(ROOT, nid(1))).owner == str(ALICE)
    yield registry.drop(ROOT, nid(1))
    assert (yield store.registration(nid(1))) is None
    assert (yield _code(registry.drop(ALICE, nid(1)))) == ErrorCode.ENOENT
    assert (yield _code(registry.bind(ALICE, nid(9), destination=None))) == ErrorCode.ENOENT


@pytest_twisted.inlineCallbacks
def test_expired_registration_is_deleted_and_einval(registry, store, clock):
    """Bind, Change and Refresh of an expired registration: EINVAL "Notification
    expired." and the registration is gone; Drop of an expired one succeeds."""
    for n, op in enumerate((lambda: registry.bind(ALICE, nid(1), destination=None),
                            lambda: registry.change(ALICE, nid(2), conditions=()),
                            lambda: registry.refresh(ALICE, nid(3)))):
        yield registry.new(ALICE, nid(n + 1), destination=None, expires=clock.seconds() + 10)
    clock.advance(11)
    for n, op in enumerate((lambda: registry.bind(ALICE, nid(1), destination=None),
                            lambda: registry.change(ALICE, nid(2), conditions=()),
                            lambda: registry.refresh(ALICE, nid(3)))):
        try:
            yield op()
        except LBError as e:
            assert e.code == ErrorCode.EINVAL and e.desc == EXPIRED
        else:
            raise AssertionError("an expired registration was operated on")
        assert (yield store.registration(nid(n + 1))) is None
    yield registry.new(ALICE, nid(4), destination=None, expires=clock.seconds() + 1)
    clock.advance(2)
    yield registry.drop(ALICE, nid(4))


@pytest_twisted.inlineCallbacks
def test_bind_change_refresh(registry, clock):
    """Bind sets destination and validity; Change REPLACE replaces conditions and the
    job list only when it names jobs (quirk); Change without REPLACE does nothing;
    Refresh extends."""
    yield registry.new(ALICE, nid(1), destination=None,
                       conditions=((Condition(Attr.JOBID, Op.EQUAL, JOB1),),))
    clock.advance(100)
    reg = yield registry.bind(ALICE, nid(1), destination="https://cb.example.org/x",
                              expires=clock.seconds() + 50)
    assert reg.destination == "https://cb.example.org/x" and reg.expires == NOW + 150
    done = ((Condition(Attr.STATUS, Op.EQUAL, JobState.DONE),),)
    reg = yield registry.change(ALICE, nid(1), conditions=done)
    assert reg.conditions == done and reg.job_ids == (str(JOB1),)
    reg = yield registry.change(ALICE, nid(1), conditions=((Condition(Attr.JOBID, Op.EQUAL,
                                                                      JOB2),),))
    assert reg.job_ids == (str(JOB2),) and reg.conditions == ()
    same = yield registry.change(ALICE, nid(1), conditions=done, replace_conditions=False)
    assert same.conditions == () and same.job_ids == (str(JOB2),)
    reg = yield registry.refresh(ALICE, nid(1))
    assert reg.expires == NOW + 100 + 2 * HOUR
    assert (yield _code(registry.bind(ALICE, nid(1), destination="gopher://x"))) \
        == ErrorCode.EINVAL
