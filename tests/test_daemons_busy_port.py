"""A daemon that cannot bind one of its ports stops (and says why) instead of
running without it, and exits with status 1 (lbtx/daemon_exit.py): real
``twistd lb-server``, ``lb-logger`` and ``lb-interlogger`` processes, ``lbtx
serve``, a port held by this test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO
from lbtx.testing.ports import free_port

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
LBTX = os.path.join(os.path.dirname(sys.executable), "lbtx")


@pytest.fixture
def busy_port():
    """A port of 127.0.0.1 someone else listens on."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def _run(tmp_path, name: str, args: list[str], status: int = 1) -> str:
    """Run ``twistd -n NAME ARGS`` to its end (it must end by itself, with exit
    ``status``); its log. Its pid file is gone: twistd finished before the exit."""
    log = tmp_path / f"{name}.log"
    pidfile = tmp_path / f"{name}.pid"
    proc = subprocess.run([TWISTD, "-n", "--logfile", str(log), "--pidfile", str(pidfile),
                           name, *args],
                          cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          timeout=60, capture_output=True, text=True)
    out = (log.read_text() if log.exists() else "") + proc.stdout + proc.stderr
    assert proc.returncode == status, out
    assert not pidfile.exists()
    return out


def test_lb_server_stops_when_its_store_port_is_taken(tmp_path, busy_port):
    query = free_port()
    started = time.monotonic()
    log = _run(tmp_path, "lb-server", [
        "--data-dir", str(tmp_path / "server"),
        "--listen-query", f"tcp:{query}:interface=127.0.0.1",
        "--listen-store", f"tcp:{busy_port}:interface=127.0.0.1"])
    assert time.monotonic() - started < 60
    assert f"cannot listen: Couldn't listen on 127.0.0.1:{busy_port}" in log
    assert "Address already in use" in log


def test_lb_server_exits_1_when_its_database_is_out_of_reach(tmp_path):
    """The same status for a store that cannot be opened: nothing listens on the
    database's port."""
    log = _run(tmp_path, "lb-server", [
        "--data-dir", str(tmp_path / "server"),
        "--db", f"postgresql://lbtx@127.0.0.1:{free_port()}/lbtx",
        "--listen-query", f"tcp:{free_port()}:interface=127.0.0.1",
        "--listen-store", f"tcp:{free_port()}:interface=127.0.0.1"])
    assert "cannot open the job store" in log


def test_lb_logger_stops_and_releases_its_spool_when_a_port_is_taken(tmp_path, busy_port):
    data = tmp_path / "data"
    log = _run(tmp_path, "lb-logger", ["-d", str(data), "--no-interlogger",
                                       "--listen", f"tcp:{busy_port}:interface=127.0.0.1"])
    assert f"cannot listen: Couldn't listen on 127.0.0.1:{busy_port}" in log
    assert "spool" in log and "closed" in log   # shut down in order, the spool closed
    # the spool's lock went with it: another logger takes the spool (and then stops
    # on the same port, the proof that it got that far)
    log = _run(tmp_path, "lb-logger", ["-d", str(data), "--no-interlogger",
                                       "--listen", f"tcp:{busy_port}:interface=127.0.0.1"])
    assert "cannot open the spool" not in log and "cannot listen" in log


def test_lb_interlogger_refuses_a_control_socket_it_cannot_make(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    out = _run(tmp_path, "lb-interlogger", ["-d", str(tmp_path / "data"),
                                            "--control", str(blocker / "interlogger.sock")],
               status=1)  # a usage error
    assert f"{blocker} is not a directory" in out and "Traceback" not in out


def test_lb_interlogger_stops_when_its_control_socket_is_taken(tmp_path):
    """Another interlogger's control socket, live: lockfile=1 keeps it, and this one
    stops (its spool is another, so the spool lock does not stop it first)."""
    sock = tmp_path / "control.sock"
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(str(sock))
    holder.listen()
    try:
        first = subprocess.Popen([TWISTD, "-n", "--logfile", str(tmp_path / "first.log"),
                                  "--pidfile", str(tmp_path / "first.pid"), "lb-interlogger",
                                  "-d", str(tmp_path / "a"), "--control", str(sock)],
                                 cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            first.wait(60)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()
            raise AssertionError("lb-interlogger ran on without its control socket")
        assert first.returncode == 1
        log = (tmp_path / "first.log").read_text()
        assert f"Couldn't listen on any:b'{sock}': [Errno 98] Address already in use" in log
    finally:
        holder.close()


def test_lbtx_serve_says_why_it_cannot_run_and_exits_1(tmp_path, busy_port):
    """Its intake port (base + 1) taken: no banner of addresses, one line on
    standard error naming the port, status 1, and the details in its log."""
    data = tmp_path / "lbtx-data"
    proc = subprocess.run([LBTX, "serve", "--data-dir", str(data), "--base-port",
                           str(busy_port - 1)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "export" not in proc.stdout
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"lbtx serve: cannot listen: Couldn't listen on "
                                  f"127.0.0.1:{busy_port}")
    assert f"details in {data / 'lbtx.log'}" in proc.stderr
    assert "Address already in use" in (data / "lbtx.log").read_text()
