"""What every ``glite-lb-*`` command shares: its name as invoked, and how it exits.

Upstream tools print ``argv[0]`` as invoked in their messages (cli.md §3.3). A
Python console script sees the path the kernel resolved instead, so
:func:`program_name` gives back the bare name when that is what a ``PATH``
lookup finds, and the path as given otherwise.

Commands are functions ``main(argv=None) -> int`` (the exit status); the
``[project.scripts]`` entries call :func:`run`, which turns a closed pipe into a
quiet exit and ``KeyboardInterrupt`` into 130.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Callable

__all__ = ["program_name", "run", "exit_status"]


def program_name(argv0: str | None = None) -> str:
    """``argv[0]`` as the user typed it (see the module docstring)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if not argv0:
        return "glite-lb"
    base = os.path.basename(argv0)
    if base != argv0 and os.path.isabs(argv0):
        # a shell's PATH lookup hands the interpreter exactly what which() finds
        found = shutil.which(base)
        if found and os.path.abspath(found) == os.path.normpath(argv0):
            return base
    return argv0


def exit_status(code: int) -> int:
    """An error number as a process exit status (8 bits, never 0 for an error)."""
    code = int(code) & 0xFF
    return code or 1


def run(main: Callable[[list[str] | None], int]) -> None:
    """Run ``main`` as a console script and exit with its status."""
    try:
        status = main(None)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        status = 0
    except KeyboardInterrupt:
        status = 130
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    sys.exit(status)
