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


def tls_listen(ca: Path, port: int, **extra: str) -> str:
    """An ``lbtls:`` listening description on 127.0.0.1 with the CA's localhost host
    certificate (``extra``: more keywords, e.g. ``handshake_timeout``)."""
    host = ca / "hosts" / "localhost"
    more = "".join(f":{k}={v}" for k, v in extra.items())
    return (f"lbtls:{port}:interface=127.0.0.1:cert={host / 'hostcert.pem'}"
            f":key={host / 'hostkey.pem'}:cadir={ca / 'certificates'}{more}")


def start_tls_server(ca: Path, tmp: Path):
    """A ``twistd lb-server`` with its query and store ports on TLS (a port pair);
    returns ``(process, query port)``, the store on the port after it."""
    from daemon_support import free_port_pair, start_daemon
    port = free_port_pair()
    proc = start_daemon("lb-server", [
        "--data-dir", str(tmp / "data"), "--listen-store", tls_listen(ca, port + 1),
        "--listen-query", tls_listen(ca, port), "--server-name", f"localhost:{port}"],
        tmp, [port + 1, port], tag="server")
    return proc, port
