"""py-spy for the benchmarks: :class:`Spy` samples one process for a while into
py-spy's collapsed-stack ("raw") format, and :func:`report_profiles` prints each
one's hottest functions: by samples on top of the stack (self) and anywhere on it
(total). py-spy is optional (``.venv/bin/pip install py-spy``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["PY_SPY", "Spy", "have_py_spy", "report_profiles"]

PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")


def have_py_spy() -> bool:
    """Whether py-spy is installed; says how to install it when it is not."""
    if os.path.exists(PY_SPY):
        return True
    sys.stdout.write("--profile: py-spy is not installed (.venv/bin/pip install py-spy)\n")
    return False


class Spy:
    """py-spy on one process: every thread not waiting in the kernel's idle calls (so a
    thread in fdatasync counts), or with ``gil`` only the thread holding the GIL (where
    the process's Python CPU goes)."""

    def __init__(self, name: str, pid: int, path: Path, seconds: float, *, gil: bool = False,
                 rate: int = 100):
        self.name, self.path = name + (" (GIL holder only)" if gil else " (all threads)"), path
        argv = [PY_SPY, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate),
                "--format", "raw", "-o", str(path), "--nonblocking"] + (["--gil"] if gil else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> None:
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _frame(text: str) -> str:
    """``func (path/to/file.py:LINE)`` as ``func (file.py:LINE)``."""
    name, sep, where = text.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if sep else text


def report_profiles(spies: list[Spy], top: int = 12) -> None:
    """The functions with the most samples on top of the stack (self) and anywhere
    on it (total), from py-spy's collapsed-stack output."""
    for spy in spies:
        if not spy.path.exists():
            sys.stdout.write(f"profile of {spy.name}: no output\n")
            continue
        own, total, samples = Counter(), Counter(), 0
        for line in spy.path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            frames = [_frame(f) for f in stack.split(";")]
            n = int(n)
            samples += n
            if frames:
                own[frames[-1]] += n
            for f in {f.split(":")[0] + ")" if ":" in f else f for f in frames}:
                total[f] += n
        sys.stdout.write(f"profile of {spy.name} ({samples} samples, {spy.path}):\n"
                         "  self:\n")
        for f, n in own.most_common(top):
            sys.stdout.write(f"    {n / samples:6.1%}  {f}\n")
        sys.stdout.write("  total (on the stack, by function):\n")
        functions = total
        boring = ("<module>", "run (", "main (", "Thread.", "ReactorBase.", "runApp",
                  "runReactorWithLogging", "ApplicationRunner", "UnixApplicationRunner")
        for f, n in [(f, n) for f, n in functions.most_common(top * 4)
                     if not f.startswith(boring)][:top]:
            sys.stdout.write(f"    {n / samples:6.1%}  {f}\n")
