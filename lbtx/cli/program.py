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

import getopt
import os
import shutil
import sys
from typing import Callable, NamedTuple, Sequence, TextIO

__all__ = ["program_name", "run", "exit_status", "begin", "Invocation"]


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


class Invocation(NamedTuple):
    """A command's parsed options and the streams and settings it runs with."""

    opts: list
    rest: list
    out: TextIO
    err: TextIO
    settings: object
    prog: str


def begin(argv: list[str] | None, out: TextIO | None, err: TextIO | None, settings,
          short: str, longs: Sequence[str] = (), *, usage: Callable[[str, TextIO], None],
          status: int = 1) -> "Invocation | int":
    """The common start of a command: its arguments (``sys.argv`` when None) parsed
    with GNU getopt, the streams (stdout/stderr by default), the settings (the
    environment's by default) and its name; or ``status`` after printing the
    getopt error and the usage when the command line is refused."""
    from lbtx.cli.environment import Settings
    args = sys.argv[1:] if argv is None else list(argv)
    out = out or sys.stdout
    err = err or sys.stderr
    settings = settings or Settings.from_env()
    prog = program_name()
    try:
        opts, rest = getopt.gnu_getopt(args, short, list(longs))
    except getopt.GetoptError as e:
        err.write(f"{prog}: {e.msg}\n")
        usage(prog, err)
        return status
    return Invocation(opts, rest, out, err, settings, prog)


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
