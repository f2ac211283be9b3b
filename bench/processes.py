"""What the benchmarks share about processes: free ports, readiness, CPU time from
``/proc``, and :class:`Daemon`, a ``twistd -n`` daemon started in a work directory
and stopped with SIGTERM (SIGKILL after 30 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["free_port", "free_port_pair", "connects", "cpu_seconds", "children", "Daemon",
           "TWISTD", "START_TIMEOUT"]

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lbtx.testing.ports import connects, free_port, free_port_pair  # noqa: E402

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
START_TIMEOUT = 60.0  # seconds for a daemon to accept connections


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
