"""``glite-lb-<state>.sh``: drive a job to a state with the standard WMS chain (cli.md §3.19).

::

    glite-lb-<state>.sh [-m server] [-j jobid] [-l reason_length]

``<state>`` is ``waiting``, ``ready``, ``scheduled``, ``running``, ``done``,
``cleared``, ``aborted`` or ``cancelled``. Without ``-j`` a job is registered on
``-m`` (source UserInterface, as ``glite-lb-job_reg -m server -s UserInterface``)
and ``EDG_JOBID=<jobid>`` is printed on stdout; its sequence code is the one the
registration printed. With ``-j`` the chain starts from ``EDG_WL_SEQUENCE`` or,
when that is unset, from ``UI=000003`` and all other components zero.

Then the fixed event chain of cli.md §3.2 is logged up to the named state, one
``glite-lb-logevent`` per event (run in this process), each threading the code
the previous one printed:

============  ============================================================
state         events (after those of the state before it)
============  ============================================================
waiting       NetworkServer Accepted
ready         NS EnQueued OK; WorkloadManager DeQueued, HelperCall CALLING,
              Match, HelperReturn CALLING, EnQueued OK
scheduled     JobController DeQueued, Transfer LRMS OK; LogMonitor Accepted,
              Transfer LRMS OK
running       LogMonitor Running
done          LogMonitor Done OK (exit code 0)
cleared       LogMonitor Clear USER
aborted       ready, then JobController Abort
cancelled     running, then LogMonitor Done CANCELLED
============  ============================================================

``DESTINATION`` (the Match's ``dest_id``) and ``CE_NODE`` (the Running's
``node``) may be set in the environment. Each logevent command line is echoed to
stderr (to file descriptor ``LOGFD`` if set) before it runs. The script exits 4
on a usage error, when the registration fails, or at the first event that is not
logged or prints no code (after logevent's own message); 0 otherwise. Every run
restarts the chain from its first event, so running a later state's script on a
job already driven by an earlier one re-sends events with identical sequence
codes, which the server ignores as duplicates.

``-l N`` is handed to every logevent call (its reason filler, for stress runs);
as upstream, the echoed command lines leave it out.

Not supported: ``-x``/``-X`` (the L&B proxy), which logevent does not support
either; refused with exit 4.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
from typing import Callable, Mapping, TextIO

from lbtx.cli.glite import job_reg, logevent
from lbtx.cli.program import program_name, run

__all__ = ["STATES", "chain", "main", "FIRST_CODE", "USAGE_STATUS"]

#: where a chain on a given job starts when EDG_WL_SEQUENCE is unset
FIRST_CODE = ("UI=000003:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:"
              "LRMS=000000:APP=000000:LBS=000000")
USAGE_STATUS = 4
_TRANSFER_LRMS = ["--destination=LRMS", "--dest_host=ce.lbtx.invalid",
                  "--dest_instance=lrms", "--job=job in the LRMS language", "--result=OK",
                  "--reason=transfer to the LRMS", "--dest_jobid=lrms-1"]


def _waiting(env) -> list[list[str]]:
    return [["-s", "NetworkServer", "-e", "Accepted", "--from=UserInterface",
             "--from_host=ui.lbtx.invalid", "--from_instance=ui", "--local_jobid=ns-1"]]


def _ready(env) -> list[list[str]]:
    enqueued = ["-e", "EnQueued", "--queue=wm queue", "--job=job for the next component",
                "--result=OK", "--reason=queued"]
    helper = "--helper_name=matchmaker"
    return [["-s", "NetworkServer", *enqueued],
            ["-s", "WorkloadManager", "-e", "DeQueued", "--queue=wm queue",
             "--local_jobid=wm-1"],
            ["-s", "WorkloadManager", "-e", "HelperCall", helper,
             "--helper_params=requirements", "--src_role=CALLING"],
            ["-s", "WorkloadManager", "-e", "Match",
             "--dest_id=" + env.get("DESTINATION", "ce.lbtx.invalid:2119/jobmanager-queue")],
            ["-s", "WorkloadManager", "-e", "HelperReturn", helper,
             "--retval=matched", "--src_role=CALLING"],
            ["-s", "WorkloadManager", *enqueued]]


def _scheduled(env) -> list[list[str]]:
    return [["-s", "JobController", "-e", "DeQueued", "--queue=jc queue", "--local_jobid=jc-1"],
            ["-s", "JobController", "-e", "Transfer", *_TRANSFER_LRMS],
            ["-s", "LogMonitor", "-e", "Accepted", "--from=JobController",
             "--from_host=jc.lbtx.invalid", "--from_instance=jc", "--local_jobid=lrms-1"],
            ["-s", "LogMonitor", "-e", "Transfer", *_TRANSFER_LRMS]]


def _running(env) -> list[list[str]]:
    node = env.get("CE_NODE", "wn.lbtx.invalid")
    return [["-s", "LogMonitor", "-e", "Running", "--node=" + node]]


def _done(status_code: str) -> Callable:
    def steps(env) -> list[list[str]]:
        return [["-s", "LogMonitor", "-e", "Done", f"--status_code={status_code}",
                 "--reason=job finished", "--exit_code=0"]]
    return steps


def _cleared(env) -> list[list[str]]:
    return [["-s", "LogMonitor", "-e", "Clear", "--reason=USER"]]


def _aborted(env) -> list[list[str]]:
    return [["-s", "JobController", "-e", "Abort", "--reason", "aborted by a helper script"]]


#: state -> the parts of its chain, in order
STATES: dict[str, tuple[Callable, ...]] = {
    "waiting": (_waiting,),
    "ready": (_waiting, _ready),
    "scheduled": (_waiting, _ready, _scheduled),
    "running": (_waiting, _ready, _scheduled, _running),
    "done": (_waiting, _ready, _scheduled, _running, _done("OK")),
    "cleared": (_waiting, _ready, _scheduled, _running, _done("OK"), _cleared),
    "aborted": (_waiting, _ready, _aborted),
    "cancelled": (_waiting, _ready, _scheduled, _running, _done("CANCELLED")),
}


def chain(state: str, env: Mapping[str, str] | None = None) -> list[list[str]]:
    """The logevent arguments (without ``-j`` and ``-c``) that lead to ``state``."""
    env = os.environ if env is None else env
    return [step for part in STATES[state] for step in part(env)]


def _usage(prog: str, err: TextIO) -> int:
    err.write(f"Usage : {prog} [-m bkserver_machine_name] [-j job_id] "
              f"[-l size_of_random_data]\n")
    return USAGE_STATUS


def _parse(argv: list[str]) -> dict | None:
    options: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-m", "-j", "-X", "-l"):
            if i + 1 >= len(argv):
                return None
            options[arg] = argv[i + 1]
            i += 2
        elif arg == "-x":
            options[arg] = ""
            i += 1
        else:
            return None
    return options


def _quiet(function, argv, **kwargs) -> tuple[int, str, str]:
    """Run a command's ``main`` here, its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = function(argv, **kwargs)
    return status, out.getvalue(), err.getvalue()


def _register(server: str) -> tuple[str | None, str | None, str]:
    """``(job id, sequence code, stderr)`` of ``job_reg -m server -s UserInterface``."""
    out, err = io.StringIO(), io.StringIO()
    status = job_reg.main(["-m", server, "-s", "UserInterface"], out=out, err=err)
    values = {}
    for line in out.getvalue().splitlines()[-2:]:
        name, eq, value = line.partition("=")
        if eq and len(value) >= 2 and value[0] == value[-1] == '"':
            values[name] = value[1:-1]
    if status != 0:
        return None, None, err.getvalue()
    return values.get("EDG_JOBID"), values.get("EDG_WL_SEQUENCE"), err.getvalue()


def main(state: str, argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Drive a job to ``state``; the exit status (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out = out or sys.stdout
    err = err or sys.stderr
    environ = os.environ if environ is None else environ
    prog = program_name()
    options = _parse(argv)
    if options is None or ("-m" not in options and "-j" not in options):
        return _usage(prog, err)
    if "-x" in options or "-X" in options:
        err.write(f"{prog}: -x and -X (the L&B proxy) are not supported by lbtx\n")
        return USAGE_STATUS
    stress = ["-l", options["-l"]] if "-l" in options else []
    job = options.get("-j")
    if job is None:
        job, code, messages = _register(options["-m"])
        if not job or not code:
            err.write(messages)
            return USAGE_STATUS
        out.write(f"EDG_JOBID={job}\n")
        out.flush()
    else:
        code = environ.get("EDG_WL_SEQUENCE") or FIRST_CODE
    echo = _echo(environ, err)
    for step in chain(state, environ):
        args = ["-j", job, "-c", code, *step]
        echo("glite-lb-logevent " + shlex.join(args) + "\n")
        status, printed, messages = _quiet(logevent.main, stress + args, environ=environ)
        code = printed.strip()
        if status != 0 or not code:
            err.write(messages)
            return USAGE_STATUS
    return 0


def _echo(environ, err: TextIO) -> Callable[[str], None]:
    """Where the command lines go: file descriptor ``LOGFD``, else stderr."""
    fd = environ.get("LOGFD", "")
    if fd.isdigit() and int(fd) != 2:
        def write(text: str) -> None:
            try:
                os.write(int(fd), text.encode())
            except OSError:
                pass
        return write

    def to_err(text: str) -> None:
        err.write(text)
        err.flush()
    return to_err


def _console(state: str) -> Callable[[], None]:
    def console() -> None:
        run(lambda argv: main(state, argv))
    console.__name__ = state
    console.__doc__ = f"The ``glite-lb-{state}.sh`` console script."
    return console


waiting = _console("waiting")
ready = _console("ready")
scheduled = _console("scheduled")
running = _console("running")
done = _console("done")
cleared = _console("cleared")
aborted = _console("aborted")
cancelled = _console("cancelled")
