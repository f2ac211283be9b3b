"""Command-line options of ``twistd lb-logger`` (formats.md §12.2, as endpoints).

The logger listens on a Unix socket under its data directory (``--socket``) and
on every ``--listen`` endpoint; ``--port N`` is short for ``--listen tcp:N`` (the
original's TCP port is 9002). The spool is ``DATA-DIR/spool`` unless ``--spool``
says otherwise. The interlogger runs in the same process unless
``--no-interlogger``; its options are those of ``twistd lb-interlogger``.
Synchronous events (``DG.PRIORITY & 3``) are answered with the server's answer
(within ``--sync-timeout``) and flush commands carried out by that interlogger, or
with ``--no-interlogger`` by the ``twistd lb-interlogger`` whose control socket is
``--interlogger-control``; if none answers there, synchronous events are answered
once on disk and flushes fail.
"""

from __future__ import annotations

import os

from twisted.python import usage

from lbtx.option_types import positive as _positive
from lbtx.interlogger.options import (DEFAULT_CONTROL, INTERLOGGER_PARAMETERS, check_template,
                                      control_socket, spool_directory)
from lbtx.logger.handler import DEFAULT_SYNC_TIMEOUT

__all__ = ["DEFAULT_PORT", "LoggerOptions"]

DEFAULT_DATA_DIR = "lbtx-data"
DEFAULT_PORT = 9002
DEFAULT_SOCKET = "logger.sock"
MEGABYTE = 1024 * 1024




class LoggerOptions(usage.Options):
    """Options of the local logger."""

    synopsis = "[options]"
    longdesc = ("The lbtx local logger: accepts events from producers on a Unix socket "
                "(and optional TCP endpoints) with the box protocol or the legacy DGLOG "
                "framing, answers once they are on disk in the spool, and (unless "
                "--no-interlogger) delivers them to their servers.")

    optFlags = [
        ["no-interlogger", None, "do not run the interlogger in this process"],
        ["no-socket", None, "no Unix socket (only the --listen endpoints)"],
    ]
    optParameters = [
        ["data-dir", "d", DEFAULT_DATA_DIR, "data directory (spool and socket live here)"],
        ["spool", "f", None, "spool directory (default: DATA-DIR/spool)"],
        ["socket", "s", None, f"Unix socket of the logger (default: DATA-DIR/{DEFAULT_SOCKET})"],
        ["socket-mode", None, "666", "permissions of the Unix socket (octal)"],
        ["peer-identity", None, "anonymous", "DG.USER of events from peers that prove no "
                                             "identity (plain TCP)"],
        ["max-frame", None, 16 * MEGABYTE, "largest accepted frame (and record) in bytes",
         _positive(int, "max-frame")],
        ["idle-timeout", None, 600.0, "seconds before an idle producer is dropped",
         _positive(float, "idle-timeout")],
        ["request-timeout", None, 120.0, "seconds one batch may take to reach the disk",
         _positive(float, "request-timeout")],
        ["interlogger-control", None, None,
         "with --no-interlogger: the control socket of the lb-interlogger delivering this "
         f"spool, for flushes and synchronous events (default: DATA-DIR/{DEFAULT_CONTROL})"],
        ["sync-timeout", None, DEFAULT_SYNC_TIMEOUT,
         "seconds a synchronous event (DG.PRIORITY & 3) waits for the server's answer "
         "before its producer gets a retryable error (less than --request-timeout)",
         _positive(float, "sync-timeout")],
    ] + INTERLOGGER_PARAMETERS

    def __init__(self):
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description):
        """Another endpoint to accept producers on, e.g. tcp:9002 (repeatable)."""
        self["listen"].append(description)

    def opt_port(self, port):
        """Listen on this TCP port too (--listen tcp:PORT; the original's is 9002)."""
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise usage.UsageError(f"--port needs a port number, not {port!r}")
        self["listen"].append(f"tcp:{port}")

    opt_p = opt_port

    def postOptions(self):
        check_template(self["destination-template"])
        try:
            int(self["socket-mode"], 8)
        except ValueError:
            raise usage.UsageError(f"--socket-mode is octal, not {self['socket-mode']!r}") from None
        if self["sync-timeout"] >= self["request-timeout"]:
            raise usage.UsageError(
                f"--sync-timeout ({self['sync-timeout']:g} s) must be less than "
                f"--request-timeout ({self['request-timeout']:g} s)")
        self["spool"] = spool_directory(self)
        self["interlogger-control"] = control_socket(self["interlogger-control"],
                                                     self["data-dir"])
        if self["no-socket"]:
            self["socket"] = None
        else:
            self["socket"] = os.path.abspath(
                self["socket"] or os.path.join(self["data-dir"], DEFAULT_SOCKET))
        if not self["listen"] and self["socket"] is None:
            raise usage.UsageError("nothing to listen on: --no-socket and no --listen")

    def endpoints(self) -> list[str]:
        """Every server endpoint description the logger listens on."""
        out = []
        if self["socket"] is not None:
            path = self["socket"].replace(":", "\\:")
            out.append(f"unix:{path}:mode={self['socket-mode']}:lockfile=1")
        return out + list(self["listen"])
