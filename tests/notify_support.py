"""Helpers of the notification tests: job event streams, a real HTTP callback
listener in the test process, a blocking JSON API client, a real lb-server.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.web import resource, server as web_server

from conftest import SCENARIOS
from daemon_support import free_port_pair, start_daemon
from lbtx.jobid import JobId
from lbtx.protocols.box.client import connect_box
from lbtx.testing.ports import free_port
from scenario_support import load, scenario_lines

ALICE = "/DC=org/DC=example/O=Example Grid/CN=Alice Tester"
SIMPLE = "P01-simple-job-full-life"


def job_streams(count: int, server: str, stem: str = SIMPLE) -> list[tuple[str, list[str]]]:
    """``count`` copies of a scenario's one-job stream, each with a fresh job id on
    ``server`` (``host:port``): ``[(job id, lines)]``."""
    scenario = load(SCENARIOS / f"{stem}.json")
    lines = scenario_lines(scenario)
    (old,) = scenario["jobs"].values()
    out = []
    for _ in range(count):
        new = str(JobId.generate(server))
        out.append((new, [ln.replace(old, new) for ln in lines]))
    return out


def interleave(streams) -> list[str]:
    """The lines of several streams, round robin (each stream stays in order)."""
    out, i = [], 0
    while True:
        row = [s[i] for _, s in streams if i < len(s)]
        if not row:
            return out
        out += row
        i += 1


@defer.inlineCallbacks
def send_lines(port: int, lines, batch: int = 20):
    """Log ``lines`` to the store port; fire with the results."""
    client = yield connect_box(TCP4ClientEndpoint(reactor, "127.0.0.1", port), clock=reactor)
    results = []
    try:
        for i in range(0, len(lines), batch):
            chunk = [ln.rstrip("\n").encode("utf-8") for ln in lines[i:i + batch]]
            results += (yield client.send_batch(chunk))
    finally:
        client.transport.loseConnection()
    return results


class _Sink(resource.Resource):
    isLeaf = True

    def __init__(self, listener):
        super().__init__()
        self.listener = listener

    def render_POST(self, request):
        body = request.content.read()
        self.listener.received.append({
            "path": request.path.decode(),
            "id": (request.getHeader("X-LB-Notification") or ""),
            "seq": int(request.getHeader("X-LB-Notification-Seq") or -1),
            "doc": json.loads(body)})
        for waiter in list(self.listener.waiters):
            waiter()
        request.setResponseCode(self.listener.status)
        return b"ok"


class _TrackingSite(web_server.Site):
    """A Site that remembers its connections, so a "down" listener drops them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections = []

    def buildProtocol(self, addr):
        proto = super().buildProtocol(addr)
        self.connections.append(proto)
        return proto


class CallbackListener:
    """A real HTTP listener (twisted.web in the test process) that records every
    POST; :meth:`stop` and :meth:`start` take it down and up on the same port."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port_pair()
        self.received: list[dict] = []
        self.waiters: list = []
        self.status = 200
        self._listening = None
        self.site = _TrackingSite(_Sink(self))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self._listening = reactor.listenTCP(self.port, self.site, interface="127.0.0.1")

    def stop(self):
        """Stop listening and drop open connections."""
        port, self._listening = self._listening, None
        d = defer.maybeDeferred(port.stopListening)
        for proto in self.site.connections:
            if getattr(proto, "transport", None) is not None:
                proto.transport.abortConnection()
        self.site.connections.clear()
        return d

    def until(self, predicate, timeout: float):
        """Fire when ``predicate()`` holds (checked at each POST and every 0.2 s)."""
        d = defer.Deferred()

        def check():
            if not d.called and predicate():
                d.callback(None)
        self.waiters.append(check)
        poll = _Poll(check)
        d.addTimeout(timeout, reactor)
        d.addBoth(lambda r: (self.waiters.remove(check), poll.stop(), r)[2])
        check()
        return d


class _Poll:
    def __init__(self, f, period=0.2):
        from twisted.internet.task import LoopingCall
        self.loop = LoopingCall(f)
        self.loop.start(period, now=False)

    def stop(self):
        if self.loop.running:
            self.loop.stop()


class Api:
    """A blocking client of the JSON API (http.client over TCP)."""

    def __init__(self, port: int, timeout: float = 90.0):
        self.port = port
        self.timeout = timeout

    def call(self, method: str, path: str, doc=None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            body = None if doc is None else json.dumps(doc).encode()
            headers = {"User-Agent": "lbtx-test/1", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()


def start_notify_server(workdir: Path, *, identity: str = ALICE, extra=(), db: str | None = None,
                        unix_query: Path | None = None,
                        port: int | None = None) -> tuple[subprocess.Popen, int]:
    """A real ``twistd lb-server`` (SQLite unless ``db``) with short notification
    retry pauses; fire ``(process, query port)``; the store port is the next one."""
    port = port or free_port_pair()
    args = ["--data-dir", str(workdir / "server-data"),
            "--listen-store", f"tcp:{port + 1}:interface=127.0.0.1",
            "--listen-query", f"tcp:{port}:interface=127.0.0.1",
            "--server-name", f"127.0.0.1:{port}", "--peer-identity", identity,
            "--notif-retry-max", "2", *extra]
    if unix_query is not None:
        args += ["--listen-query", f"unix:{unix_query}"]
    if db is not None:
        args += ["--db", db]
    ready = [port + 1, port] + ([unix_query] if unix_query is not None else [])
    proc = start_daemon("lb-server", args, workdir, ready, tag="server")
    return proc, port


__all__ = ["ALICE", "job_streams", "interleave", "send_lines", "CallbackListener", "Api",
           "start_notify_server", "free_port", "os"]
