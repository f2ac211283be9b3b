"""``glite-lb-notify`` (cli.md §3.9) and ``lbtx watch``: argument parsing, quirks,
output lines and exit codes, the receive line format, and runs against a real
``twistd lb-server`` (pull receive, callback receive with ``-a``, watch)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO
from daemon_support import free_port, stop_daemon
from lbtx.cli.environment import Address
from lbtx.cli.glite import notify
from lbtx.cli.notify_lines import notification_line, parse_fields
from lbtx.cli.store_client import send_events
from lbtx.status import JobStatus, to_json
from lbtx.schema import JobState
from lbtx.timeval import Timeval
from notify_support import ALICE, job_streams, start_notify_server

NOTIF = "https://lb.example.org:9000/NOTIF:Hc2s8dQw0pLkT6uYv1nBzA"
VALID = re.compile(r"^valid: '(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC' \((\d+)\)$")
UNTIL = re.compile(r"^valid until: '(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC' \((\d+)\)$")


def run(*args, env=None):
    out, err = io.StringIO(), io.StringIO()
    old = dict(os.environ)
    try:
        os.environ.pop("GLITE_WMS_NOTIF_SERVER", None)
        os.environ.pop("EDG_WL_NOTIF_SERVER", None)
        os.environ.update(env or {})
        code = notify.main(list(args), out=out, err=err)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return code, out.getvalue(), err.getvalue()


# --- usage and quirks (no server needed) -------------------------------------------

@pytest.mark.parametrize("args,code", [
    ((), 0), (("help",), 0), (("--help",), 0), (("-h",), 0), (("-?",), 0),
    (("frob",), 64), (("new", "-o", "x", "-O"), 64), (("new", "-s", "3", "-a", "http://h/"), 64),
    (("new", "-t", "soon"), 64), (("new", "--bogus"), 64), (("new", "extra"), 64),
    (("new", "-n", "a", "-n", "b", "-n", "c", "-n", "d", "-n", "e", "-n", "f", "-n", "g",
      "-n", "h"), 64),
    (("bind",), 64), (("bind", "https://h:1/notanotif"), 64), (("refresh",), 64),
    (("receive",), 64), (("receive", "-s", "3", "-a", "http://h:1/", NOTIF), 64),
    (("receive", "-s", "3", "-r", NOTIF), 64),
])
def test_usage_exit_codes(args, code):
    """No command or help: usage, 0; bad usage: usage on stderr, EX_USAGE."""
    got, out, err = run(*args)
    assert got == code
    assert out == "" and "Usage:" in err


@pytest.mark.parametrize("args,message", [
    (("new", "-j", "not-a-job-id"), "Job ID parameter not set propperly!"),
    (("new", "-S", "running,bogus"), "'bogus' is not a valid state name! Exitting."),
    (("new", "-E", "nosuchtype"), "'nosuchtype' is not a valid job type! Exitting."),
])
def test_quirks_exit_zero_without_registering(args, message):
    """Upstream quirks: a message on stderr, exit 0, nothing registered (no server
    is configured, so reaching one would fail)."""
    code, out, err = run(*args)
    assert code == 0 and out == "" and message in err


def test_change_with_a_bad_id_prints_on_stdout_and_exits_1():
    code, out, err = run("change", "junk", "https://lb.example.org:9000/abc")
    assert code == 1 and out == "Notification ID parameter not set propperly!\n"
    assert "Usage:" in err


def test_drop_of_a_job_id_is_invalid():
    code, out, err = run("drop", "https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg")
    assert code == 22 and out == "" and "Invalid argument" in err


def test_unknown_receive_field():
    code, out, err = run("receive", "-f", "owner,nosuchfield", NOTIF)
    assert code == 64 and err.startswith("nosuchfield: invalid argument")


def test_new_without_a_server_fails_with_eioerr():
    code, out, err = run("new", "-S", "done")
    assert code == 74 and out == "" and "Invalid argument" in err


def test_unreachable_server():
    code, out, err = run("refresh", NOTIF,
                         env={"GLITE_WMS_NOTIF_SERVER": f"127.0.0.1:{free_port()}"})
    assert code == 111 and "Connection refused" in err


# --- the receive line -----------------------------------------------------------------

def test_notification_line_format():
    """TAB separated, ending with a TAB; (null), escapes, numbers, times, jdl:Attr."""
    st = JobStatus()
    st.state = JobState.RUNNING
    st.owner = "/CN=A\tB"
    st.reason = "two\nlines"
    st.exit_code = 3
    st.state_enter_time = Timeval(1714568400, 5)
    st.jdl = '[ Executable = "/bin/sh"; VirtualOrganisation = "vo" ]'
    doc = {"jobid": "https://lb.example.org:9000/j", "status": to_json(st)}
    fields = parse_fields("OWNER,reason,exit_code,stateEnterTime,location,jdl:Executable,"
                          "jdl:Nope,cancelling")
    line = notification_line(doc, fields)
    assert line == ("https://lb.example.org:9000/j\tRunning\t/CN=A\\tB\ttwo\\nlines\t3\t"
                    "'2024-05-01 13:00:00 UTC'\t(null)\t/bin/sh\t(null)\t0\t")


# --- against a real server --------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    proc, port = start_notify_server(tmp_path)
    yield port
    stop_daemon(proc)


def _log(port, streams):
    lines = [ln.encode() for _, s in streams for ln in s]
    results = send_events(Address("127.0.0.1", port + 1), lines)
    assert all(r.accepted for r in results)


def test_new_bind_refresh_receive_change_drop(server):
    """The output lines of every command; receive prints what was queued before it
    started (the recovery test); drop prints nothing at all."""
    env = {"GLITE_WMS_NOTIF_SERVER": f"127.0.0.1:{server}"}
    streams = job_streams(2, f"127.0.0.1:{server}")
    (job_a, _), (job_b, _) = streams
    code, out, err = run("new", "-j", job_a, "-t", "600", env=env)
    assert code == 0 and err == ""
    first, second = out.splitlines()
    assert first.startswith("notification ID: https://127.0.0.1:")
    notif = first.split()[2]
    m = VALID.match(second)
    assert m and abs(int(m.group(2)) - (time.time() + 600)) < 10
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(m.group(2)))) == m.group(1)
    code, out, err = run("bind", "-t", "900", notif, env=env)
    assert code == 0 and UNTIL.match(out.strip()) and err == ""
    code, out, err = run("refresh", notif, env=env)
    assert code == 0 and UNTIL.match(out.strip())
    _log(server, streams)
    code, out, err = run("receive", "-i", "3", "-f", "owner,done_code", notif, env=env)
    assert code == 110 and "Connection timed out" in err
    assert re.search(r"^notification is valid until: '.*' \(\d+\)$", err, re.M)
    lines = out.splitlines()
    assert len(lines) == 15 and all(ln.startswith(job_a + "\t") for ln in lines)
    assert lines[0] == f"{job_a}\tSubmitted\t{ALICE}\t0\t"
    assert [ln.split("\t")[1] for ln in lines][-3:] == ["Running", "Done", "Cleared"]
    code, out, err = run("change", notif, job_b, env=env)
    assert (code, out, err) == (0, "", "")
    code, out, err = run("receive", "-i", "1", notif, env=env)
    assert out == ""            # acknowledged: nothing again, and job_b came before
    code, out, err = run("drop", notif, env=env)
    assert (code, out, err) == (0, "", "")
    code, out, err = run("drop", notif, env=env)
    assert code == 2 and "No such file or directory" in err


def test_receive_with_a_callback_url(server):
    """receive -a URL binds the registration to the URL and prints the POSTs."""
    env = dict(os.environ, GLITE_WMS_NOTIF_SERVER=f"127.0.0.1:{server}",
               PYTHONPATH=str(REPO))
    code, out, _ = run("new", env={"GLITE_WMS_NOTIF_SERVER": f"127.0.0.1:{server}"})
    notif = out.split()[2]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lbtx.cli.glite.notify", "receive", "-i",
                             "30", "-a", f"http://127.0.0.1:{port}/cb", notif], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:    # until it listens
            try:
                import socket
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        streams = job_streams(1, f"127.0.0.1:{server}")
        _log(server, streams)
        lines = []
        while len(lines) < 15 and time.monotonic() < deadline + 20:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        assert len(lines) == 15
        assert all(ln.startswith(streams[0][0] + "\t") for ln in lines)
        assert lines[-1].split("\t")[1] == "Cleared"
    finally:
        proc.terminate()
        proc.wait(10)


def test_lbtx_watch_follows_to_a_terminal_state(server):
    """lbtx watch prints the current state, each change, and stops at Done."""
    streams = job_streams(1, f"127.0.0.1:{server}")
    job, lines = streams[0]
    send_events(Address("127.0.0.1", server + 1), [lines[0].encode()])   # registered
    proc = subprocess.Popen([sys.executable, "-m", "lbtx.cli.main", "watch", "--server",
                             f"127.0.0.1:{server}", "--timeout", "60", job],
                            env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first == f"{job}\tSubmitted\t\n"
        send_events(Address("127.0.0.1", server + 1), [ln.encode() for ln in lines[1:]])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    states = [ln.split("\t")[1] for ln in out.splitlines()]
    assert states[-1] == "Done" and "Running" in states and "Cleared" not in states
    assert all(ln.startswith(job + "\t") for ln in out.splitlines())


def test_callback_listener_refuses_bad_posts():
    """receive -a's listener: no length, oversized, malformed or non-object JSON bodies
    get 4xx and queue nothing; a good one gets 200 and is queued."""
    import http.client
    from lbtx.cli.notify_receive import MAX_BODY, CallbackServer
    port = free_port()
    server = CallbackServer(f"http://127.0.0.1:{port}/cb")
    try:
        def post(body, headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.putrequest("POST", "/cb")
                for k, v in (headers or {"Content-Length": str(len(body))}).items():
                    conn.putheader(k, v)
                conn.endheaders()
                if body:
                    conn.send(body)
                return conn.getresponse().status
            finally:
                conn.close()
        assert post(b"", {}) == 400
        assert post(b"", {"Content-Length": "x"}) == 400
        assert post(b"", {"Content-Length": str(MAX_BODY + 1)}) == 413
        assert post(b"{not json") == 400
        assert post(b"\xff\xfe") == 400
        assert post(b"[1, 2]") == 400
        assert server.inbox.empty()
        assert post(b'{"seq": 1}') == 200
        assert server.inbox.get(timeout=5) == {"seq": 1}
    finally:
        server.close()
    with pytest.raises(Exception):
        CallbackServer("https://127.0.0.1:1/x")
