"""The notification front ends, sans I/O over a real SQLite store with real matching:
``/api/notifications`` (operations, long-poll receive, malformed and hostile
input) and the legacy ``POST /notifRequest`` (XML in and out, the error codes and
HTTP statuses of formats.md §7.16)."""

from __future__ import annotations

import json
import re
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from lbtx import ulm
from lbtx.jobid import JobId, NotifId
from lbtx.protocols.legacy_query import QueryService
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.protocols.legacy_query.http import HTTPRequest
from lbtx.protocols.legacy_query.messages import NotifChangeOp, NotifFunction, NotifRequest
from lbtx.protocols.legacy_query.notifications import LegacyNotifications
from lbtx.protocols.legacy_query.requests_out import write_request
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.server.api import JsonApi, _BadRequest
from lbtx.server.authz import Caller, ReadPolicy
from lbtx.server.notify.api import NotificationApi
from lbtx.server.notify.receive import PullReceiver
from lbtx.server.notify.registry import Registry
from lbtx.server.queries import StoreQueryBackend
from lbtx.server.store import open_store
from notify_support import job_streams

SERVER = ("lb.example.org", 9000)
ALICE = Caller("/DC=org/DC=example/O=Example Grid/CN=Alice Tester")
BOB = Caller("/DC=org/DC=example/CN=Bob")
LEGACY_HEADERS = ("Accept: application/x-dglb", "User-Agent: edg_wll_Api/3.0/3.0")


@pytest_twisted.async_yield_fixture
async def env(tmp_path):
    store = open_store("sqlite:///" + str(tmp_path / "f.sqlite"), reactor)
    await store.start()
    policy = ReadPolicy()
    store.read_policy = policy
    registry = Registry(store, policy=policy, clock=reactor)
    receiver = PullReceiver(store, reactor, poll=0.2)
    registry.on_change = receiver.wake
    backend = StoreQueryBackend(store)
    api = JsonApi(backend, server=SERVER, clock=reactor)
    api.notifications = NotificationApi(registry, receiver, server=SERVER,
                                        bad_request=_BadRequest)
    legacy = QueryService(backend, server=SERVER, clock=reactor)
    legacy.notifications = LegacyNotifications(registry)

    class Env:
        pass
    e = Env()
    e.store, e.api, e.legacy, e.receiver = store, api, legacy, receiver
    yield e
    receiver.stop()
    await store.stop()


async def call(api, method, path, body=None, caller=ALICE):
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    response = await api.handle(HTTPRequest(f"{method} {path} HTTP/1.1", (), body), caller)
    return response.status, json.loads(response.body)


async def log_jobs(store, count=1):
    streams = job_streams(count, "lb.example.org:9000")
    lines = [ln for _, s in streams for ln in s]
    await store.accept_events([ulm.parse(ln, require_user=True) for ln in lines], lines)
    return streams


def unique(notif_id):
    return notif_id.split("NOTIF:")[1]


# --- JSON API --------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_api_operations(env):
    """new (server-made id), get, bind, change, refresh, drop; owner only."""
    status, doc = await call(env.api, "POST", "/api/notifications", {
        "destination": "http://cb.example.org/x", "validity": 600, "flags": ["terminal_states"],
        "conditions": [[{"attr": "owner", "value": None}], [{"attr": "status", "value": "Done"}]]})
    assert status == 200, doc
    reg = doc["notification"]
    assert NotifId.parse(reg["id"]).host == "lb.example.org"
    assert reg["owner"] == ALICE and reg["flags"] == ["terminal_states"]
    assert reg["conditions"][0][0]["value"] == ALICE and reg["jobs"] == []
    assert abs(reg["expires"] - (time.time() + 600)) < 5
    u = unique(reg["id"])
    assert (await call(env.api, "GET", f"/api/notifications/{u}"))[1]["notification"] == reg
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}", caller=BOB)
    assert status == 403 and doc["name"] == "EPERM"
    status, doc = await call(env.api, "POST", f"/api/notifications/{u}/bind",
                             {"destination": None})
    assert status == 200 and doc["notification"]["destination"] is None
    job = "https://lb.example.org:9000/abcdefghijklmnopqrstuv"
    status, doc = await call(env.api, "POST", f"/api/notifications/{u}/change",
                             {"conditions": [[{"attr": "jobid", "value": job}]]})
    assert doc["notification"]["jobs"] == [job] and doc["notification"]["conditions"] == []
    status, doc = await call(env.api, "POST", f"/api/notifications/{u}/refresh", {"validity": 60})
    assert abs(doc["notification"]["expires"] - (time.time() + 60)) < 5
    status, doc = await call(env.api, "POST", f"/api/notifications/{u}/drop")
    assert status == 200 and doc == {"dropped": reg["id"]}
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}")
    assert status == 404 and doc["name"] == "ENOENT"


@pytest_twisted.ensureDeferred
async def test_api_refuses_anonymous_and_duplicates(env):
    status, doc = await call(env.api, "POST", "/api/notifications", {}, caller=None)
    assert status == 401 and doc["name"] == "EPERM"
    notif = "https://lb.example.org:9000/NOTIF:fixedidxxxxxxxxxxxxxxx"
    assert (await call(env.api, "POST", "/api/notifications", {"id": notif}))[0] == 200
    status, doc = await call(env.api, "POST", "/api/notifications", {"id": notif})
    assert doc["name"] == "EEXIST"


@pytest.mark.parametrize("method,path,body,name", [
    ("POST", "/api/notifications", b"{", "EINVAL"),
    ("POST", "/api/notifications", b"\xff\xfe", "EINVAL"),
    ("POST", "/api/notifications", b"[1]", "EINVAL"),
    ("POST", "/api/notifications", b"[" * 100000, "EINVAL"),
    ("POST", "/api/notifications", {"bogus": 1}, "EINVAL"),
    ("POST", "/api/notifications", {"validity": -1}, "EINVAL"),
    ("POST", "/api/notifications", {"validity": True}, "EINVAL"),
    ("POST", "/api/notifications", {"validity": 10 ** 30}, "EINVAL"),
    ("POST", "/api/notifications", {"destination": 5}, "EINVAL"),
    ("POST", "/api/notifications", {"destination": "gopher://x"}, "EINVAL"),
    ("POST", "/api/notifications", {"destination": "http://x/" + "a" * 5000}, "EINVAL"),
    ("POST", "/api/notifications", {"flags": ["nope"]}, "EINVAL"),
    ("POST", "/api/notifications", {"flags": "history"}, "EINVAL"),
    ("POST", "/api/notifications", {"id": "https://h:1/notanotif"}, "EINVAL"),
    ("POST", "/api/notifications", {"id": 7}, "EINVAL"),
    ("POST", "/api/notifications", {"conditions": [[{"attr": "nope"}]]}, "EINVAL"),
    ("POST", "/api/notifications", {"conditions": [[{"attr": "jobid", "value": "x"}]]},
     "EINVAL"),
    ("POST", "/api/notifications",
     {"conditions": [[{"attr": "status", "value": "Done"}] for _ in range(2000)]}, "E2BIG"),
    ("GET", "/api/notifications", None, "ENOSYS"),
    ("GET", "/api/notifications/", None, "ENOSYS"),
    ("GET", "/api/notifications/x%2Fy", None, "EINVAL"),
    ("GET", "/api/notifications/abc/frob", None, "ENOENT"),
    ("POST", "/api/notifications/abc", None, "ENOSYS"),
    ("GET", "/api/notifications/abc/drop", None, "ENOSYS"),
    ("GET", "/api/notifications/abc/messages?after=-1", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?after=1&after=2", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?wait=61", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?wait=x", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?bogus=1", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?&&=", None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages?after=" + "9" * 40, None, "EINVAL"),
    ("GET", "/api/notifications/abc/messages", None, "ENOENT"),
])
@pytest_twisted.ensureDeferred
async def test_api_bad_requests(env, method, path, body, name):
    """Malformed, truncated, oversized and hostile requests get a clear error."""
    status, doc = await call(env.api, method, path, body)
    assert 400 <= status < 600 and doc["name"] == name, doc
    assert isinstance(doc["message"], str) and len(doc["message"]) < 400


@pytest_twisted.ensureDeferred
async def test_long_poll_answers_when_messages_arrive_and_acknowledges(env):
    """messages?wait waits until intake queues something; after=N deletes up to N."""
    status, doc = await call(env.api, "POST", "/api/notifications", {})
    u = unique(doc["notification"]["id"])
    started = time.monotonic()
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}/messages?wait=0")
    assert status == 200 and doc == {"messages": []}
    poll = call(env.api, "GET", f"/api/notifications/{u}/messages?after=0&wait=20")
    await deferLater(reactor, 0.3, lambda: None)
    streams = await log_jobs(env.store)
    env.receiver.wake()
    status, doc = await poll
    assert status == 200 and time.monotonic() - started < 10
    seqs = [m["seq"] for m in doc["messages"]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 1
    assert doc["messages"][0]["jobid"] == streams[0][0]
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}/messages?after=3&limit=2")
    assert [m["seq"] for m in doc["messages"]] == [4, 5]
    assert [m.seq for m in await env.store.messages(doc["messages"][0]["notification"],
                                                    after_seq=0, limit=2)] == [4, 5]
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}/messages", caller=BOB)
    assert status == 403


@pytest_twisted.ensureDeferred
async def test_long_poll_times_out_empty(env):
    status, doc = await call(env.api, "POST", "/api/notifications", {})
    u = unique(doc["notification"]["id"])
    started = time.monotonic()
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}/messages?wait=1")
    assert status == 200 and doc == {"messages": []}
    assert 0.9 <= time.monotonic() - started < 5


# --- legacy /notifRequest ----------------------------------------------------------------

async def legacy(env, req_or_body, caller=ALICE):
    if isinstance(req_or_body, NotifRequest):
        path, doc = write_request(req_or_body)
        body = to_wire(doc)
    else:
        path, body = "/notifRequest", req_or_body
    response = await env.legacy.handle(HTTPRequest(f"POST {path} HTTP/1.1", LEGACY_HEADERS,
                                                   body), caller)
    return response.status, (response.body or b"").decode("utf-8", "replace")


def attrs(text):
    m = re.search(r'<edg_wll_NotifResult(?: code="(\d+)" desc="([^"]*)")?>', text)
    assert m, text
    v = re.search(r"<validity>(\d+)</validity>", text)
    return (int(m.group(1)) if m.group(1) else 0), (int(v.group(1)) if v else None)


NID = NotifId.parse("https://lb.example.org:9000/NOTIF:legacyxxxxxxxxxxxxxxxx")


@pytest_twisted.ensureDeferred
async def test_legacy_new_bind_change_refresh_drop(env):
    """The five functions over XML; validity in the answer; the registration is
    the one the JSON API shows."""
    owner = ((Condition(Attr.OWNER, Op.EQUAL, None),),)
    status, text = await legacy(env, NotifRequest(NotifFunction.NEW, NID, "0.0.0.0:40123",
                                                  validity=int(time.time()) + 300,
                                                  conditions=owner))
    assert status == 200 and attrs(text)[0] == 0
    assert abs(attrs(text)[1] - (time.time() + 300)) < 5
    reg = await env.store.registration(str(NID))
    assert reg.owner == ALICE and reg.destination == "0.0.0.0:40123"
    status, text = await legacy(env, NotifRequest(NotifFunction.BIND, NID,
                                                  "http://cb.example.org:8080/n"))
    assert status == 200 and attrs(text)[1] is not None
    assert (await env.store.registration(str(NID))).destination == \
        "http://cb.example.org:8080/n"
    job = ((Condition(Attr.JOBID, Op.EQUAL, JobId.parse(
        "https://lb.example.org:9000/abcdefghijklmnopqrstuv")),),)
    status, text = await legacy(env, NotifRequest(NotifFunction.CHANGE, NID,
                                                  change_op=NotifChangeOp.REPLACE,
                                                  conditions=job))
    assert status == 200
    assert (await env.store.registration(str(NID))).job_ids == (
        "https://lb.example.org:9000/abcdefghijklmnopqrstuv",)
    status, text = await legacy(env, NotifRequest(NotifFunction.REFRESH, NID))
    assert status == 200 and attrs(text)[1] > time.time() + 3600
    status, text = await legacy(env, NotifRequest(NotifFunction.DROP, NID))
    assert status == 200 and attrs(text) == (0, None)
    assert await env.store.registration(str(NID)) is None


@pytest_twisted.ensureDeferred
async def test_legacy_errors_and_statuses(env):
    """§7.16 notifRequest column: ENOENT 404, EPERM 401, EINVAL 579, EEXIST 200."""
    status, text = await legacy(env, NotifRequest(NotifFunction.REFRESH, NID))
    assert (status, attrs(text)[0]) == (404, 2)
    await legacy(env, NotifRequest(NotifFunction.NEW, NID))
    status, text = await legacy(env, NotifRequest(NotifFunction.NEW, NID))
    assert (status, attrs(text)[0]) == (200, 17)
    status, text = await legacy(env, NotifRequest(NotifFunction.DROP, NID), caller=BOB)
    assert (status, attrs(text)[0]) == (401, 1)
    status, text = await legacy(env, NotifRequest(NotifFunction.BIND, NID))
    assert (status, attrs(text)[0]) == (579, 22)          # Bind needs an address
    status, text = await legacy(env, NotifRequest(NotifFunction.BIND, NID, "nocolon"))
    assert (status, attrs(text)[0]) == (579, 22)
    status, text = await legacy(env, NotifRequest(NotifFunction.NEW, None))
    assert (status, attrs(text)[0]) == (579, 22)
    status, text = await legacy(env, NotifRequest(NotifFunction.NEW, NID), caller=None)
    assert (status, attrs(text)[0]) == (401, 1)


@pytest.mark.parametrize("body", [
    b"", b"<edg_wll_NotifRequest", b"<edg_wll_NotifRequest function=\"Frob\"/>",
    b"<edg_wll_NotifRequest function=\"New\"><requestedValidity>x</requestedValidity>"
    b"</edg_wll_NotifRequest>",
    b"<edg_wll_NotifRequest function=\"New\"><notifId>https://h:1/job</notifId>"
    b"</edg_wll_NotifRequest>",
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><edg_wll_NotifRequest function=\"New\">&a;"
    b"</edg_wll_NotifRequest>",
    b"<edg_wll_NotifRequest function=\"New\">" + b"<and>" * 5000,
    b"\xff\xfe\x00<",
])
@pytest_twisted.ensureDeferred
async def test_legacy_malformed_requests_are_400(env, body):
    """Malformed, truncated and hostile XML is 400 and registers nothing."""
    status, _ = await legacy(env, body)
    assert status == 400
    assert await env.store.pending_registrations(int(time.time()), 10) == []


@pytest_twisted.ensureDeferred
async def test_bootstrap_queues_the_current_states(env):
    """New with the bootstrap flag queues the current state of every matching job."""
    streams = await log_jobs(env.store, 2)
    status, doc = await call(env.api, "POST", "/api/notifications", {
        "flags": ["bootstrap"], "conditions": [[{"attr": "jobid", "value": streams[1][0]}]]})
    assert status == 200, doc
    u = unique(doc["notification"]["id"])
    status, doc = await call(env.api, "GET", f"/api/notifications/{u}/messages")
    assert [(m["seq"], m["jobid"], m["event"]) for m in doc["messages"]] == \
        [(1, streams[1][0], None)]
    assert doc["messages"][0]["status"]["state"] == "Cleared"
