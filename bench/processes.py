"""What the benchmarks share about processes: free ports, readiness, CPU time from
``/proc``, :class:`Daemon`, a ``twistd -n`` daemon started in a work directory
and stopped with SIGTERM (SIGKILL after 30 s), and :func:`python_yardstick`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["free_port", "free_port_pair", "connects", "cpu_seconds", "children", "Daemon",
           "TWISTD", "START_TIMEOUT", "python_yardstick", "ipc_yardstick", "yardsticks"]

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lbtx.testing.ports import connects, free_port, free_port_pair  # noqa: E402

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
START_TIMEOUT = 60.0  # seconds for a daemon to accept connections


def python_yardstick(rounds: int = 3) -> float:
    """Milliseconds one core takes now for a fixed pure-Python loop (a million
    additions; the best of ``rounds``). Printed beside the figures, it tells how fast
    the machine ran Python then: the same code on the same kind of machine has
    needed 2.7 times the CPU on one day as on another (see :func:`ipc_yardstick`)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def ipc_yardstick(rounds: int = 2000) -> float:
    """Microseconds of one round trip of a byte between two processes over a Unix
    socket pair: what waking another process costs on this machine now (much of a
    logger's one-event call is such kernel work, which the Python yardstick misses)."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echo
        a.close()
        while True:
            data = b.recv(64)
            if not data:
                os._exit(0)
            b.sendall(data)
    b.close()
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            a.sendall(b"x")
            a.recv(64)
        return (time.perf_counter() - start) / rounds * 1e6
    finally:
        a.close()
        os.waitpid(pid, 0)


def yardsticks() -> str:
    """Both yardsticks, for a benchmark's first line."""
    return (f"Python yardstick {python_yardstick():.0f} ms, "
            f"IPC round trip {ipc_yardstick():.0f} us")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` used so far (0 once it is gone)."""
    try:
        fields = _stat(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children(ppid: int) -> list[int]:
    """The processes whose parent is ``ppid``."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(_stat(int(name))[1]) == ppid:
                    out.append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    return out


class Daemon:
    """``twistd -n [TWISTD_ARGS] NAME ARGS`` in ``workdir`` (log ``TAG.log``), once
    every address of ``ready`` (ports or socket paths) accepts connections."""

    def __init__(self, name: str, args: list[str], workdir: Path, ready, *,
                 tag: str | None = None, twistd_args: list[str] = ()):
        tag = tag or name
        self.name = name
        self.log = workdir / f"{tag}.log"
        argv = [TWISTD, "-n", "--logfile", str(self.log), "--pidfile",
                str(workdir / f"{tag}.pid"), *twistd_args, name, *args]
        self.proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, PYTHONPATH=str(REPO)))
        waiting = list(ready) if isinstance(ready, (list, tuple)) else [ready]
        deadline = time.monotonic() + START_TIMEOUT
        while not all(connects(a) for a in waiting):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start; its log:\n{self.log_tail()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
