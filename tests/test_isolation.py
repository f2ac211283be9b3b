"""Cross-user isolation through every interface (issue 6).

One ``twistd lb-server`` on ``lbtls:`` ports; Alice and Bob authenticate with
proxies made by ``lbtx ca`` and own 500 jobs each. Each grants the other READ on
a random few of their jobs, Alice grants Bob TAG on some; both log user tags,
Bob also on Alice's jobs. Then randomized reads by both users through the JSON
API, the legacy XML protocol, the web pages, notifications (pull receive) and
the installed commands: every answer holds exactly the user's own jobs plus
those granted to them, never a job id or a tag of a job that is not granted,
and tags were stored exactly where the sender held TAG.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from lbtx.cli.environment import Address
from lbtx.cli.query_client import ANSWER_HTTP_LIMITS, QueryClient
from lbtx.cli.store_client import send_events
from lbtx.cli.connection import connect
from lbtx.protocols.box.messages import ResultCode
from lbtx.protocols.legacy_query.http import ResponseDecoder, format_request
from lbtx.query.conditions import Attr, Condition, Op

from ca_support import make_ca, start_tls_server
from cli_support import command_env, run
from daemon_support import stop_daemon

USERS = {"alice": "/DC=org/DC=example/CN=alice", "bob": "/DC=org/DC=example/CN=bob"}
PER_USER = 500
SEED = 20261201
SEQ = "UI={ui:06d}:NS={ns:010d}:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:" \
      "APP=000000:LBS=000000"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The server, the users' jobs, the grants; yields a dict describing them."""
    tmp = tmp_path_factory.mktemp("isolation")
    pki = make_ca(tmp / "ca", list(USERS))
    proc, port = start_tls_server(pki, tmp)
    rng = random.Random(SEED)
    w = {"pki": pki, "port": port, "jobs": {}, "read": {}, "tag": set(), "tags": {}}
    try:
        for user, dn in USERS.items():
            jobs = [f"https://localhost:{port}/iso{user}{n:05d}x{rng.getrandbits(40):010x}"
                    for n in range(PER_USER)]
            w["jobs"][user] = jobs
            lines = [_reg(job, dn) for job in jobs]
            for job in jobs:
                w["tags"][job] = {"owner": str(rng.getrandbits(30))}
                lines.append(_tag(job, dn, 2, "owner", w["tags"][job]["owner"]))
            with as_user(w, user):
                results = send_events(Address("localhost", port + 1), lines, timeout=60)
            assert [r.code for r in results] == [ResultCode.STORED] * len(lines)
        for user, other in (("alice", "bob"), ("bob", "alice")):
            granted = rng.sample(w["jobs"][user], 25)
            w["read"][other] = set(granted)
            lines = [_acl(job, USERS[user], USERS[other], "READ", 3) for job in granted]
            if user == "alice":
                w["tag"] = set(rng.sample(granted, 8)) | set(rng.sample(w["jobs"]["alice"], 4))
                lines += [_acl(job, USERS[user], USERS[other], "TAG", 4) for job in w["tag"]]
            with as_user(w, user):
                results = send_events(Address("localhost", port + 1), lines, timeout=60)
            assert all(r.code is ResultCode.STORED for r in results), results
        # Bob tries to tag 40 of Alice's jobs: stored exactly where he holds TAG
        tries = rng.sample(w["jobs"]["alice"], 40) + sorted(w["tag"])
        lines = [_tag(job, USERS["bob"], 5, "bob", "was here") for job in tries]
        with as_user(w, "bob"):
            results = send_events(Address("localhost", port + 1), lines, timeout=60)
        for job, r in zip(tries, results):
            want = ResultCode.STORED if job in w["tag"] else ResultCode.NOT_OWNER
            if job in w["tag"] and r.code is ResultCode.DUPLICATE:
                continue  # tried twice (sampled and in the TAG set)
            assert r.code is want, (job, r)
            if want is ResultCode.STORED:
                w["tags"][job]["bob"] = "was here"
        yield w
    finally:
        stop_daemon(proc)


@contextlib.contextmanager
def as_user(w, user: str):
    """The in-process clients authenticate as ``user`` (lbtx.cli.connection reads
    the environment at each connection)."""
    saved = {k: os.environ.get(k) for k in ("X509_USER_PROXY", "X509_CERT_DIR", "LBTX_TLS")}
    os.environ.update(X509_USER_PROXY=str(w["pki"] / f"{user}.pem"),
                      X509_CERT_DIR=str(w["pki"] / "certificates"), LBTX_TLS="1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _reg(job: str, dn: str) -> bytes:
    return (f'DATE=20240301120000.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=1, ns=0)}" DG.USER="{dn}" DG.REGJOB.JDL="[]" '
            f'DG.REGJOB.NS="ns" DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="SIMPLE" '
            f'DG.REGJOB.NSUBJOBS="0" DG.REGJOB.SEED=""').encode()


def _tag(job: str, dn: str, n: int, name: str, value: str) -> bytes:
    return (f'DATE=20240301120{n}00.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="UserTag" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=n, ns=0)}" DG.USER="{dn}" DG.USERTAG.NAME="{name}" '
            f'DG.USERTAG.VALUE="{value}"').encode()


def _acl(job: str, owner: str, who: str, permission: str, n: int) -> bytes:
    return (f'DATE=20240301120{n}00.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="ChangeACL" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=n, ns=0)}" DG.USER="{owner}" '
            f'DG.CHANGEACL.USER_ID="{who}" DG.CHANGEACL.USER_ID_TYPE="DN" '
            f'DG.CHANGEACL.PERMISSION="{permission}" DG.CHANGEACL.PERMISSION_TYPE="ALLOW" '
            f'DG.CHANGEACL.OPERATION="ADD"').encode()


def visible(w, user: str) -> set[str]:
    return set(w["jobs"][user]) | w["read"].get(user, set())


def _http(w, user: str, method: str, target: str, body: bytes | None = None,
          accept: str = "application/json"):
    headers = ("User-Agent: isolation-test/1", f"Accept: {accept}", "Host: localhost")
    if body is not None:
        headers += ("Content-Type: application/json",)
    decoder = ResponseDecoder(ANSWER_HTTP_LIMITS)
    with as_user(w, user):
        sock = connect(Address("localhost", w["port"]), time.monotonic() + 30)
    try:
        sock.sendall(format_request(f"{method} {target} HTTP/1.1", headers, body))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sock.settimeout(10)
            data = sock.recv(1 << 16)
            if not data:
                break
            got = decoder.feed(data)
            if got:
                return got[0]
    finally:
        sock.close()
    raise AssertionError(f"no answer to {method} {target[:60]}")


def _job_ids_in(text: str, w) -> set[str]:
    every = set(w["jobs"]["alice"]) | set(w["jobs"]["bob"])
    return {job for job in every if job.rsplit("/", 1)[1] in text}


# --- the interfaces -------------------------------------------------------------------------
@pytest.mark.parametrize("user", list(USERS))
def test_json_api(world, user):
    w, rng = world, random.Random(f"{SEED}-json-{user}")
    every = w["jobs"]["alice"] + w["jobs"]["bob"]
    for job in rng.sample(every, 60) + sorted(w["read"][user])[:10]:
        r = _http(w, user, "GET", "/api/jobs/" + quote(job, safe=""))
        doc = json.loads(r.body)
        if job in visible(w, user):
            assert r.status == 200, doc
            tags = doc["job"]["status"].get("user_tags") or {}
            assert tags == w["tags"][job]
        else:
            assert r.status != 200 and job.rsplit("/", 1)[1] not in r.body.decode()
    for owner in USERS.values():
        query = json.dumps({"conditions": [[{"attr": "owner", "value": owner}]]}).encode()
        r = _http(w, user, "POST", "/api/query", query)
        got = {j["jobid"] for j in json.loads(r.body).get("jobs", [])} if r.status == 200 \
            else set()
        want = {j for j in visible(w, user) if j in w["jobs"][_name(owner)]}
        assert got == want
    mine = json.loads(_http(w, user, "GET", "/api/user-jobs").body)["jobs"]
    assert set(mine) == set(w["jobs"][user])


def _name(dn: str) -> str:
    return next(k for k, v in USERS.items() if v == dn)


@pytest.mark.parametrize("user", list(USERS))
def test_legacy_xml(world, user):
    w, rng = world, random.Random(f"{SEED}-xml-{user}")
    client = QueryClient(Address("localhost", w["port"]), timeout=30)
    every = w["jobs"]["alice"] + w["jobs"]["bob"]
    from lbtx.cli.client_error import ClientError
    from lbtx.jobid import JobId
    with as_user(w, user):
        for job in rng.sample(every, 40):
            try:
                view = client.job_status(JobId.parse(job))
                assert job in visible(w, user)
                assert dict(view.status.user_tags or {}) == w["tags"][job]
            except ClientError as e:
                assert job not in visible(w, user), e
        for owner in USERS.values():
            try:
                _, rows = client.query_jobs([[Condition(Attr.OWNER, Op.EQUAL, owner)]])
                got = {str(job_id) for job_id, _ in rows}
            except ClientError:
                got = set()
            assert got == {j for j in visible(w, user) if j in w["jobs"][_name(owner)]}


@pytest.mark.parametrize("user", list(USERS))
def test_web_pages(world, user):
    w, rng = world, random.Random(f"{SEED}-web-{user}")
    listing = _http(w, user, "GET", "/?text", accept="*/*").body.decode()
    assert _job_ids_in(listing, w) == set(w["jobs"][user])
    other = "bob" if user == "alice" else "alice"
    query = f"/?query=owner={quote(USERS[other])}?text"
    shown = _http(w, user, "GET", query, accept="*/*").body.decode()
    assert _job_ids_in(shown, w) == w["read"][user]
    for job in rng.sample(w["jobs"][other], 20) + sorted(w["read"][user])[:5]:
        r = _http(w, user, "GET", "/" + job.rsplit("/", 1)[1] + "?text", accept="*/*")
        if job in visible(w, user):
            assert r.status == 200 and f"Job={job}" in r.body.decode()
        else:
            assert r.status == 401 and _job_ids_in(r.body.decode(), w) == set()


def test_notifications_carry_only_readable_jobs(world):
    """Bob registers for every job of Alice's (owner condition); Alice then tags all
    her jobs: Bob's queue holds exactly the jobs Alice granted him."""
    w = world
    doc = {"destination": None, "conditions": [[{"attr": "owner", "value": USERS["alice"]}]]}
    r = _http(w, "bob", "POST", "/api/notifications", json.dumps(doc).encode())
    assert r.status == 200, r.body
    notif = json.loads(r.body)["notification"]["id"]
    lines = [_tag(job, USERS["alice"], 6, "round", "2") for job in w["jobs"]["alice"]]
    with as_user(w, "alice"):
        results = send_events(Address("localhost", w["port"] + 1), lines, timeout=60)
    assert all(r.code is ResultCode.STORED for r in results)
    seen, after = [], 0
    deadline = time.monotonic() + 60
    while len(seen) < len(w["read"]["bob"]) and time.monotonic() < deadline:
        r = _http(w, "bob", "GET", f"/api/notifications/{quote(notif, safe='')}/messages"
                                   f"?after={after}&wait=5")
        messages = json.loads(r.body)["messages"]
        for m in messages:
            seen.append(m["jobid"])
            after = max(after, m["seq"])
    time.sleep(1)
    r = _http(w, "bob", "GET", f"/api/notifications/{quote(notif, safe='')}/messages"
                               f"?after={after}&wait=1")
    seen += [m["jobid"] for m in json.loads(r.body)["messages"]]
    assert sorted(seen) == sorted(w["read"]["bob"])
    # and Alice may not read or drop Bob's registration
    r = _http(w, "alice", "GET", f"/api/notifications/{quote(notif, safe='')}")
    assert r.status != 200


@pytest.mark.parametrize("user", list(USERS))
def test_commands(world, user):
    w, rng = world, random.Random(f"{SEED}-cmd-{user}")
    env = command_env(GLITE_WMS_QUERY_SERVER=f"localhost:{w['port']}",
                      X509_USER_PROXY=str(w["pki"] / f"{user}.pem"),
                      X509_CERT_DIR=str(w["pki"] / "certificates"))
    r = run("glite-lb-user_jobs", env=env)
    assert r.returncode == 0, r.stderr
    assert _job_ids_in(r.stdout, w) == set(w["jobs"][user])
    other = "bob" if user == "alice" else "alice"
    granted = sorted(w["read"][user])
    for job in rng.sample(w["jobs"][other], 3) + granted[:2]:
        r = run("glite-lb-job_status", job, env=env)
        if job in w["read"][user]:
            assert r.returncode == 0 and f"jobId : {job}" in r.stdout, r.stderr
        else:
            assert r.returncode != 0 and _job_ids_in(r.stdout, w) == set()
