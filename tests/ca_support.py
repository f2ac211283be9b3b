"""Test credentials made by ``lbtx ca`` in this process (a subprocess per
certificate would dominate the tests' time): :func:`lbtx` runs one ``lbtx``
command, :func:`make_ca` a CA with a host certificate for ``localhost`` and, per
user, a user certificate and a proxy ``<dir>/<user>.pem``."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from lbtx.cli.main import main

__all__ = ["lbtx", "make_ca"]


def lbtx(*args) -> str:
    """``lbtx ARGS`` in this process; its standard output (AssertionError if it fails)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    if code != 0:
        raise AssertionError(f"lbtx {' '.join(map(str, args))} failed: {err.getvalue()}")
    return out.getvalue()


def make_ca(d: Path, users=(), *, host: str = "localhost") -> Path:
    """A CA in ``d`` (EC keys), a host certificate and the users' proxies."""
    lbtx("ca", "init", d, "--key-type", "ec")
    lbtx("ca", "host", d, host, "--key-type", "ec")
    for user in users:
        lbtx("ca", "user", d, user, "--key-type", "ec")
        lbtx("ca", "proxy", "--cert", d / "users" / user / "usercert.pem", "--key",
             d / "users" / user / "userkey.pem", "--out", d / f"{user}.pem", "--key-type", "ec")
    return d
