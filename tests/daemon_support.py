"""Running lbtx daemons as real ``twistd -n`` processes in tests.

:func:`start_daemon` starts one and waits until it accepts connections (a TCP
port or a Unix socket); :func:`stop_daemon` stops it with SIGTERM (or SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO
from lbtx.testing.ports import connects, free_port, free_port_pair  # noqa: F401 (for the tests)

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


def as_on_a_terminal() -> None:
    """A ``preexec_fn`` giving the child the default SIGINT (the ``Ctrl-C`` of a
    terminal): a shell starts background jobs with SIGINT ignored, which every child
    inherits, and a Twisted process leaves an ignored SIGINT ignored. Tests that stop
    a process with SIGINT must not depend on how the test run was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_daemon(name: str, args: list[str], workdir: Path, wait_for, *, tag: str | None = None,
                 timeout: float = 30.0) -> subprocess.Popen:
    """``twistd -n NAME ARGS`` in ``workdir``, once ``wait_for`` (a TCP port or a
    Unix socket path, or a list of them: every one) accepts connections; its log is
    ``workdir/TAG.log``. A daemon opens its ports one after another: wait for each
    port the test will use, not only the first."""
    tag = tag or name
    log = workdir / f"{tag}.log"
    pidfile = workdir / f"{tag}.pid"
    if pidfile.exists():
        pidfile.unlink()  # a killed daemon leaves its pid file behind
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([TWISTD, "-n", "--logfile", str(log), "--pidfile", str(pidfile),
                             name, *args], cwd=workdir, env=env)
    addresses = list(wait_for) if isinstance(wait_for, (list, tuple)) else [wait_for]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while addresses and connects(addresses[0]):
            addresses.pop(0)
        if not addresses:
            return proc
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited {proc.returncode}:\n"
                                 + (log.read_text() if log.exists() else ""))
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"{name} did not listen within {timeout} s:\n"
                         + (log.read_text() if log.exists() else ""))


def stop_daemon(proc: subprocess.Popen, *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) and wait."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_server(workdir: Path, query_port: int, *, data: Path | None = None,
                 identity: str = "/DC=org/DC=example/CN=Test Interlogger") -> subprocess.Popen:
    """``twistd lb-server`` on SQLite under ``data``: queries on ``query_port``, store
    on the next port (as job ids of ``127.0.0.1:query_port`` expect)."""
    data = data or workdir / "server-data"
    return start_daemon("lb-server", [
        "--data-dir", str(data),
        "--listen-store", f"tcp:{query_port + 1}:interface=127.0.0.1",
        "--listen-query", f"tcp:{query_port}:interface=127.0.0.1",
        "--server-name", f"127.0.0.1:{query_port}",
        "--peer-identity", identity], workdir, [query_port + 1, query_port], tag="server")


def wait_until(predicate, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def spool_empty(spool: Path) -> bool:
    """Every event file of the spool was delivered and removed."""
    return spool.is_dir() and not any(n.endswith(".ulm") for n in os.listdir(spool))
