"""Rights when storing and reading, with real ``twistd lb-server`` processes
(formats.md §6.5, §11.4-11.6): another user's LRMS event and an anonymous one are
refused and change nothing; user tags need TAG; with a policy file the store peer
needs the right of each event, READ_ALL reads everything, ADMIN_ACCESS makes a
super-user; ``--noauth`` turns the record checks off; a broken policy file stops
the server at start with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import REPO
from lbtx.cli.environment import Address
from lbtx.cli.store_client import send_events
from lbtx.protocols.box.messages import ResultCode

from test_server_query_process import _start, _stop

ALICE = "/DC=org/DC=example/CN=Alice"
BOB = "/DC=org/DC=example/CN=Bob"
CAROL = "/DC=org/DC=example/CN=Carol"
IL = "/DC=org/DC=example/CN=il.example.org"
NAME = ("--server-name", "lb.example.org:9000")
SEQ = "UI=000000:NS={ns:010d}:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS={lrms:06d}:" \
      "APP=000000:LBS=000000"


def _job(n: int) -> str:
    return f"https://lb.example.org:9000/rightsTestJob{n:013d}"


def _reg(job: str, user: str = ALICE) -> bytes:
    return (f'DATE=20240301120000.000000 HOST="wms" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="NetworkServer" DG.SRC_INSTANCE="" DG.EVNT="RegJob" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ns=1, lrms=0)}" DG.USER="{user}" DG.REGJOB.JDL="[]" '
            f'DG.REGJOB.NS="wms" DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="SIMPLE" '
            f'DG.REGJOB.NSUBJOBS="0" DG.REGJOB.SEED=""').encode()


def _running(job: str, user: str, n: int = 1) -> bytes:
    return (f'DATE=20240301120100.{n:06d} HOST="wn" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="LRMS" DG.SRC_INSTANCE="" DG.EVNT="Running" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ns=2, lrms=n)}" DG.USER="{user}" '
            f'DG.RUNNING.NODE="wn{n}"').encode()


def _tag(job: str, user: str, n: int = 1) -> bytes:
    return (f'DATE=20240301120200.{n:06d} HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="UserTag" DG.JOBID="{job}" '
            f'DG.SEQCODE="UI={n:06d}:NS=0000000002:WM=000000:BH=0000000000:JSS=000000:LM=000000:'
            f'LRMS=000000:APP=000000:LBS=000000" DG.USER="{user}" DG.USERTAG.NAME="phase" '
            f'DG.USERTAG.VALUE="{n}"').encode()


def _codes(store: int, lines) -> list[ResultCode]:
    return [r.code for r in send_events(Address("127.0.0.1", store), list(lines), timeout=20)]


def _status(query: int, job: str) -> dict:
    unique = job.rsplit("/", 1)[1]
    with urllib.request.urlopen(f"http://127.0.0.1:{query}/api/jobs/{unique}", timeout=10) as r:
        return json.load(r)["job"]["status"]


def test_record_level_rights(tmp_path):
    """§6.5 in a running server: Bob's LRMS event and an anonymous one for Alice's
    job are refused; Alice's is stored; the status shows only hers."""
    proc, query, store = _start(tmp_path, "s", tmp_path / "data", ALICE, *NAME)
    try:
        job = _job(1)
        assert _codes(store, [_reg(job)]) == [ResultCode.STORED]
        got = _codes(store, [_running(job, BOB, 1), _running(job, "anonymous", 2),
                             _tag(job, BOB, 1), _running(job, ALICE, 3)])
        assert got == [ResultCode.NOT_OWNER, ResultCode.NOT_OWNER, ResultCode.NOT_OWNER,
                       ResultCode.STORED]
        status = _status(query, job)
        assert status["state"] == "Running" and status["ce_node"] == "wn3"
        assert not status.get("user_tags")
    finally:
        _stop(proc)


def test_noauth_turns_record_checks_off(tmp_path):
    proc, query, store = _start(tmp_path, "s", tmp_path / "data", ALICE, *NAME, "--noauth")
    try:
        job = _job(2)
        assert _codes(store, [_reg(job), _running(job, BOB, 1)]) == [ResultCode.STORED] * 2
        assert _status(query, job)["ce_node"] == "wn1"
    finally:
        _stop(proc)


POLICY = f'''resource "LB" {{
    action "REGISTER_JOBS" {{ rule permit {{ subject = "{IL}" }} }}
    action "REGISTER_FOREIGN" {{ rule permit {{ subject = "{IL}" }} }}
    action "LOG_WMS_EVENTS" {{ rule permit {{ subject = "{IL}" }} }}
    action "READ_ALL" {{ rule permit {{ subject = "{IL}" }} }}
}}
'''


def test_policy_file_rights_of_the_store_peer(tmp_path):
    """The store peer (an interlogger identity) may register and log WMS events but
    not CE events; it reads every job (READ_ALL); another peer may store nothing."""
    policy = tmp_path / "policy.conf"
    policy.write_text(POLICY)
    il, il_query, il_store = _start(tmp_path, "il", tmp_path / "data", IL, *NAME,
                                    "--policy", str(policy))
    try:
        job = _job(3)
        accepted = (f'DATE=20240301120030.000000 HOST="wms" PROG=edg-wms LVL=SYSTEM '
                    f'DG.PRIORITY=0 DG.SOURCE="NetworkServer" DG.SRC_INSTANCE="" '
                    f'DG.EVNT="Accepted" DG.JOBID="{job}" DG.SEQCODE="{SEQ.format(ns=3, lrms=0)}" '
                    f'DG.USER="{IL}" DG.ACCEPTED.FROM="UserInterface" DG.ACCEPTED.FROM_HOST="ui" '
                    f'DG.ACCEPTED.FROM_INSTANCE="" DG.ACCEPTED.LOCAL_JOBID=""').encode()
        got = _codes(il_store, [_reg(job), accepted, _running(job, ALICE, 1)])
        assert got == [ResultCode.STORED, ResultCode.STORED, ResultCode.NOT_OWNER]
        assert _status(il_query, job)["state"] == "Waiting"       # READ_ALL: Alice's job
        log = (tmp_path / "il.log").read_text()
        assert "LOG_CE_EVENTS" in log
    finally:
        _stop(il)
    other, _, other_store = _start(tmp_path, "other", tmp_path / "data", CAROL, *NAME,
                                   "--policy", str(policy))
    try:
        assert _codes(other_store, [_reg(_job(4))]) == [ResultCode.NOT_OWNER]
    finally:
        _stop(other)


def test_a_broken_policy_file_stops_the_server_with_the_reason(tmp_path):
    policy = tmp_path / "policy.conf"
    policy.write_text('resource "LB" {\n  action "FLY" { }\n}\n')
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    out = subprocess.run([twistd, "-n", "lb-server", "--data-dir", str(tmp_path / "d"),
                          "--policy", str(policy)], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    assert out.returncode != 0
    assert "policy.conf:2:10: unknown action 'FLY'" in out.stdout + out.stderr


DAVE = "/DC=org/DC=example/CN=Dave Monitor"
READERS = f'''resource "LB" {{
    action "READ_ANONYMIZED" {{ rule permit {{ subject = "{CAROL}" }} }}
    action "STATUS_FOR_MONITORING" {{ rule permit {{ subject = "{DAVE}" }} }}
}}
'''


def _legacy_status(query: int, job: str) -> str:
    from test_server_web import _get
    r = _get(query, "/" + job.rsplit("/", 1)[1], accept="application/x-dglb",
             agent="edg_wll_Api/3.0/3.0")
    assert r.status == 200, r
    return r.body.decode()


def test_anonymised_and_monitoring_readers(tmp_path):
    """READ_ANONYMIZED sees the job with the owner hashed, the same hash on every
    front end and across restarts (the salt file); STATUS_FOR_MONITORING sees the
    state and destination but no owner and no JDL details; nobody else sees it."""
    policy = tmp_path / "policy.conf"
    policy.write_text(READERS)
    data = tmp_path / "data"
    alice, _, store = _start(tmp_path, "alice", data, ALICE, *NAME)
    job = _job(5)
    try:
        assert _codes(store, [_reg(job), _running(job, ALICE, 1)]) == [ResultCode.STORED] * 2
    finally:
        _stop(alice)
    hashes = []
    for run in range(2):
        carol, carol_query, _ = _start(tmp_path, f"carol{run}", data, CAROL, *NAME,
                                       "--policy", str(policy))
        try:
            status = _status(carol_query, job)
            assert status["state"] == "Running" and status["ce_node"] == "wn1"
            assert ALICE not in json.dumps(status)
            assert len(status["owner"]) == 64 and int(status["owner"], 16) >= 0
            hashes.append(status["owner"])
            legacy = _legacy_status(carol_query, job)
            assert ALICE not in legacy and status["owner"] in legacy
        finally:
            _stop(carol)
    assert hashes[0] == hashes[1]
    assert (data / "anonymization.salt").stat().st_mode & 0o077 == 0
    dave, dave_query, _ = _start(tmp_path, "dave", data, DAVE, *NAME, "--policy", str(policy))
    try:
        status = _status(dave_query, job)
        assert status["state"] == "Running"
        assert not status.get("owner") and not status.get("ce_node")
        assert ALICE not in _legacy_status(dave_query, job)
    finally:
        _stop(dave)
    bob, bob_query, _ = _start(tmp_path, "bob", data, BOB, *NAME, "--policy", str(policy))
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            _status(bob_query, job)
        assert e.value.code in (401, 403)
    finally:
        _stop(bob)
