"""Where a producer sends events: the local logger, and a job's server.

An address is a Unix socket path (anything with a ``/`` or ending in
``.sock``) or ``host[:port]``. The logger's is the argument, else ``LBTX_LOGGER``,
else ``GLITE_WMS_LOG_DESTINATION`` / ``EDG_WL_LOG_DESTINATION`` (``host[:port]``,
port 9002 by default, formats.md §12.1), else ``lbtx-data/logger.sock`` (the
socket of ``twistd lb-logger`` run in the current directory). A job's server
takes registrations on its store port, the job id's port plus one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from lbtx.jobid import JobId

__all__ = ["Address", "LOGGER_VARIABLES", "logger_address", "server_address"]

DEFAULT_LOGGER_PORT = 9002
DEFAULT_LOGGER_SOCKET = os.path.join("lbtx-data", "logger.sock")
LOGGER_VARIABLES = ("LBTX_LOGGER", "GLITE_WMS_LOG_DESTINATION", "EDG_WL_LOG_DESTINATION")


@dataclass(frozen=True)
class Address:
    """A Unix socket (``path``) or a TCP ``host``/``port``."""

    path: str | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_LOGGER_PORT) -> "Address":
        if "/" in text or text.endswith(".sock"):
            return cls(path=text)
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and "]" not in port:
            return cls(host=host.strip("[]"), port=int(port))
        return cls(host=text.strip("[]"), port=default_port)

    def endpoint_description(self) -> str:
        """The Twisted client endpoint string of this address."""
        if self.path is not None:
            return "unix:path=" + self.path.replace(":", "\\:")
        return f"tcp:host={self.host.replace(':', chr(92) + ':')}:port={self.port}"

    def __str__(self) -> str:
        return self.path if self.path is not None else f"{self.host}:{self.port}"


def logger_address(text: str | None = None, environ: Mapping[str, str] | None = None) -> Address:
    """The local logger's address (see the module docstring)."""
    if text:
        return Address.parse(text)
    environ = os.environ if environ is None else environ
    for name in LOGGER_VARIABLES:
        if environ.get(name):
            return Address.parse(environ[name])
    return Address(path=DEFAULT_LOGGER_SOCKET)


def server_address(job_id) -> Address:
    """The store port of the server that owns ``job_id``."""
    job = job_id if isinstance(job_id, JobId) else JobId.parse(str(job_id))
    host, port = job.store_address
    return Address(host=host, port=port)
