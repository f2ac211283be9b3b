"""The exit status of a daemon that stops because it cannot run.

A daemon whose store or spool cannot be opened, whose port cannot be bound or
whose interlogger cannot start logs why and stops the reactor
(:func:`stop_for_failure`). twistd then exits 0 whatever happened: it has no way
to pass on a status. A supervisor (systemd's ``Restart=on-failure``, a script
checking ``$?``) must see the failure, so the twistd plug-ins of lbtx call
:func:`exit_nonzero_on_failure`: once a failure has stopped the reactor, the
process ends with :data:`EXIT_FAILURE` after twistd is done (its log written, its
pid file removed), from an ``atexit`` hook. ``lbtx serve`` runs its own reactor
and reads :func:`failure` instead.

Without that call (the daemons' services built inside another program, a test)
nothing but the reactor is touched.
"""

from __future__ import annotations

import atexit
import os
import sys

__all__ = ["EXIT_FAILURE", "armed", "exit_nonzero_on_failure", "failure", "stop_for_failure"]

#: the status of a daemon that stopped because it could not run
EXIT_FAILURE = 1

_state: dict = {"armed": False, "failure": None, "hooked": False}


def exit_nonzero_on_failure() -> None:
    """Make this process exit with :data:`EXIT_FAILURE` if a failure stops it."""
    _state["armed"] = True
    if _state["failure"] is not None:
        _hook()


def stop_for_failure(reactor, reason: str) -> None:
    """Record ``reason`` (the first one counts) and stop ``reactor`` if it runs."""
    if _state["failure"] is None:
        _state["failure"] = reason
    if _state["armed"]:
        _hook()
    if reactor.running:
        reactor.stop()


def armed() -> bool:
    """Whether :func:`exit_nonzero_on_failure` was called in this process."""
    return _state["armed"]


def failure() -> str | None:
    """Why a failure stopped this process, or None."""
    return _state["failure"]


def _hook() -> None:
    if not _state["hooked"]:
        _state["hooked"] = True
        atexit.register(_exit)  # registered last, so it runs first of the hooks


def _exit() -> None:  # pragma: no cover - runs as the process ends
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(EXIT_FAILURE)
