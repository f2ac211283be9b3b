"""Running the ``glite-lb-*`` and ``lbtx`` commands as real processes, against a server.

* :func:`start_server` starts a bookkeeping server process on 127.0.0.1: the real
  ``twistd -n lb-server`` (SQLite in a temporary directory) once its query
  listener answers the legacy protocol, and the stand-in of ``fake_lb_server.py``
  (the real protocol stacks over the ``ReplayBackend`` fake) either way.
  :data:`SERVER_KINDS` lists the kinds available; the ``lb_server`` fixtures of the
  test modules are parametrised over it.
* :func:`run` runs a command with a clean environment (``TZ=UTC``, short
  timeouts, the venv's ``bin`` first on ``PATH``).
* :func:`wms_event`/:func:`wms_chain` build the events of the standard WMS
  sequence of cli.md §3.2 with sequence codes threaded as ``glite-lb-logevent``
  threads them; :func:`send` delivers ULM lines to a store port.
* :class:`CannedServer` answers every request with fixed bytes (or never), for
  error paths a real server does not produce on demand (purged jobs, denied
  reads, a hanging server).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from lbtx.testing.ports import free_port_pair

from conftest import REPO
from lbtx import ulm
from lbtx.cli.environment import Address
from lbtx.cli.store_client import send_events
from lbtx.events import make_event
from lbtx.jobid import JobId
from lbtx.schema import ENUMS, EVENTS_BY_NAME, Source
from lbtx.seqcode import GliteSeqCode
from lbtx.timeval import Timeval

BIN = Path(sys.executable).parent
IDENTITY = "/DC=org/DC=example/O=Example Grid/CN=Alice Tester"
FAKE_SERVER = Path(__file__).with_name("fake_lb_server.py")
START_TIMEOUT = 30.0


def real_server_answers_queries() -> bool:
    """Whether the committed ``twistd lb-server`` wires its legacy query listener
    (``lbtx/server/queries.py`` used by ``tap.py`` at HEAD); work in progress in the
    working tree does not count."""
    try:
        tap = subprocess.run(["git", "-C", str(REPO), "show", "HEAD:lbtx/server/tap.py"],
                             capture_output=True, text=True, timeout=10)
        tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "--error-unmatch",
                                  "lbtx/server/queries.py"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return tap.returncode == 0 and tracked.returncode == 0 and "queries" in tap.stdout


def _server_kinds() -> list[str]:
    """``LBTX_CLI_TEST_SERVERS=fake,real`` chooses; by default the fake, and the real
    server once it answers queries."""
    chosen = os.environ.get("LBTX_CLI_TEST_SERVERS")
    if chosen:
        return [k for k in chosen.split(",") if k in ("fake", "real")]
    return ["fake"] + (["real"] if real_server_answers_queries() else [])


SERVER_KINDS = _server_kinds()


@dataclass
class LBServer:
    """A running server process: queries on ``port``, intake on ``port + 1``."""

    kind: str
    port: int
    proc: subprocess.Popen
    log: Path
    identity: str = IDENTITY

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def store(self) -> Address:
        return Address("127.0.0.1", self.port + 1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_listening(proc, ports, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text() if log.exists() else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not listen within {START_TIMEOUT} s")
        try:
            socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5).close()
            pending.pop(0)
        except OSError:
            time.sleep(0.05)


def start_server(kind: str, tmp: Path, identity: str = IDENTITY, *,
                 unix_prefix: str | None = None) -> LBServer:
    """``unix_prefix``: also listen on ``<prefix>serve.sock`` and ``<prefix>store.sock``."""
    port = free_port_pair()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp / f"server-{kind}.log"
    if kind == "fake":
        cmd = [sys.executable, str(FAKE_SERVER), "--port", str(port), "--identity", identity]
        if unix_prefix:
            cmd += ["--unix-query", unix_prefix + "serve.sock",
                    "--unix-store", unix_prefix + "store.sock"]
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT)
    else:
        cmd = [str(BIN / "twistd"), "-n", "--logfile", str(log),
               "--pidfile", str(tmp / "server.pid"), "lb-server",
               "--data-dir", str(tmp / "data"),
               "--listen-query", f"tcp:{port}:interface=127.0.0.1",
               "--listen-store", f"tcp:{port + 1}:interface=127.0.0.1",
               "--server-name", f"127.0.0.1:{port}",
               "--peer-identity", identity]
        if unix_prefix:
            cmd += ["--listen-query", f"unix:{unix_prefix}serve.sock",
                    "--listen-store", f"unix:{unix_prefix}store.sock"]
        proc = subprocess.Popen(cmd, cwd=tmp, env=env)
    _wait_listening(proc, [port, port + 1], log)
    for name in (("serve.sock", "store.sock") if unix_prefix else ()):
        _wait_unix(proc, unix_prefix + name, log)
    return LBServer(kind, port, proc, log, identity)


def _wait_unix(proc, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no Unix socket {path}: "
                                     f"{log.read_text() if log.exists() else ''}")
            time.sleep(0.05)


def command_env(server: LBServer | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for the commands (no inherited GLITE_*/EDG_* settings, and
    no X509_*/LBTX_TLS ones, which would make them speak TLS)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GLITE_", "EDG_WL_", "X509_", "LBTX_TLS"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", TZ="UTC",
               GLITE_WMS_QUERY_TIMEOUT="10", GLITE_WMS_LOG_SYNC_TIMEOUT="10")
    if server is not None:
        env["GLITE_WMS_QUERY_SERVER"] = server.address
    env.update(extra)
    return env


def run(command: str, *args: str, env: dict | None = None, input: str | None = None,
        timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run ``command`` (looked up on the venv's PATH, so argv[0] is its bare name)."""
    return subprocess.run([command, *args], env=env if env is not None else command_env(),
                          input=input, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def registered(out: str) -> dict[str, str]:
    """The ``NAME="value"`` lines of ``glite-lb-job_reg`` output as a dict."""
    values = {}
    for line in out.splitlines():
        name, eq, value = line.partition("=")
        if eq and value.startswith('"') and value.endswith('"'):
            values[name] = value[1:-1]
    return values


def register(server: LBServer, *args: str, source: str = "UserInterface") -> tuple[str, dict]:
    """Register a job on ``server``; return its id and the printed values."""
    r = run("glite-lb-job_reg", "-m", server.address, "-s", source, *args,
            env=command_env(server))
    assert r.returncode == 0, r.stderr
    values = registered(r.stdout)
    job = next(values[k] for k in ("EDG_JOBID", "EDG_WL_DAG_JOBID", "EDG_WL_COLLECTION_JOBID")
               if k in values)
    return job, values


def send(server: LBServer, lines: list[str]):
    """Deliver ULM lines to the server's store port; every one must be accepted."""
    results = send_events(server.store, [ln.rstrip("\n").encode("utf-8", "surrogateescape")
                                         for ln in lines], timeout=10)
    assert all(r.accepted for r in results), [(r.code, r.reason) for r in results]
    return results


# --- the standard WMS sequence (cli.md §3.2) ---------------------------------------

def _value(spec, value):
    if spec.type == "logsrc":
        return Source.from_text(value)
    if spec.enum is not None:
        return ENUMS[spec.enum].from_text(value)
    if spec.type in ("int", "port"):
        return int(value)
    return value


def wms_event(job: str, source: str, name: str, seqcode: str, /, **fields) -> str:
    """A ULM line of event ``name`` logged by ``source`` (fields by their schema names)."""
    specs = {a.name: a for a in EVENTS_BY_NAME[name].attrs}
    attrs = {specs[k].py_name: _value(specs[k], v) for k, v in fields.items()}
    ev = make_event(name, timestamp=Timeval.now(), host="wms.example.org", priority=4,
                    source=Source.from_text(source), src_instance="", job_id=JobId.parse(job),
                    seqcode=seqcode, **attrs)
    return ulm.format(ev)


#: (source, event, fields, state after it) of cli.md §3.2's gLite WMS chain
WMS_CHAIN = [
    ("NetworkServer", "Accepted", dict(**{"from": "UserInterface"}, from_host="ui.example.org",
                                       from_instance="ui1", local_jobid="ns-42"), "Waiting"),
    ("NetworkServer", "EnQueued", dict(queue="/var/wm.fl", job="[]", result="OK",
                                       reason="queued"), "Waiting"),
    ("WorkloadManager", "DeQueued", dict(queue="/var/wm.fl", local_jobid="wm-1"), "Waiting"),
    ("WorkloadManager", "HelperCall", dict(helper_name="Planner", helper_params="p",
                                           src_role="CALLING"), "Waiting"),
    ("WorkloadManager", "Match", dict(dest_id="ce.example.org:2119/jobmanager-pbs-short"),
     "Waiting"),
    ("WorkloadManager", "HelperReturn", dict(helper_name="Planner", retval="ok",
                                             src_role="CALLING"), "Waiting"),
    ("WorkloadManager", "EnQueued", dict(queue="/var/jc.fl", job="[]", result="OK",
                                         reason="ready"), "Ready"),
    ("JobController", "DeQueued", dict(queue="/var/jc.fl", local_jobid="jc-1"), "Ready"),
    ("JobController", "Transfer", dict(destination="LRMS", dest_host="ce.example.org",
                                       dest_instance="", job="[]", result="OK",
                                       reason="submitted", dest_jobid="condor-7"), "Ready"),
    ("LogMonitor", "Accepted", dict(**{"from": "JobController"}, from_host="wms.example.org",
                                    from_instance="", local_jobid="condor-7"), "Ready"),
    ("LogMonitor", "Transfer", dict(destination="LRMS", dest_host="ce.example.org",
                                    dest_instance="", job="[]", result="OK",
                                    reason="at the CE", dest_jobid="pbs-9"), "Scheduled"),
    ("LogMonitor", "Running", dict(node="wn01.example.org"), "Running"),
    ("LogMonitor", "Done", dict(status_code="OK", reason="finished", exit_code=0), "Done"),
    ("LogMonitor", "Clear", dict(reason="USER"), "Cleared"),
]
_SLOTS = Source.spec.extra["slots"]


@dataclass
class Chain:
    """Threads a job's sequence code as consecutive ``glite-lb-logevent`` calls do."""

    job: str
    code: GliteSeqCode = field(default_factory=GliteSeqCode)

    def event(self, source: str, name: str, /, **fields) -> str:
        slot = _SLOTS[Source.from_text(source).name]
        logged = self.code.increment(slot)
        self.code = logged.increment(slot)
        return wms_event(self.job, source, name, logged.format(), **fields)


# --- a server with canned answers --------------------------------------------------

class CannedServer:
    """Listens on 127.0.0.1; answers each request with ``answer`` (None: never)."""

    def __init__(self, answer: bytes | None):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            self.requests.append(head + b"\r\n\r\n" + body)
            if self.answer is not None:
                conn.sendall(self.answer)
                conn.close()
        except OSError:
            return

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (and ``port - 1`` exists)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 1:
            return port


def canned_answer(status: int, reason: str, body: str) -> bytes:
    data = body.encode("iso-8859-1")
    return (f"HTTP/1.1 {status} {reason}\r\nCache-Control: no-cache\r\n"
            f"Server: edg_wll_Server/3.0/3.0\r\nContent-Type: application/x-dglb\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode("ascii") + data
