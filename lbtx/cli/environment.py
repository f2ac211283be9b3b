"""Client settings from the environment, as the legacy client library reads them.

Every variable is looked up first as ``GLITE_WMS_<NAME>`` and then, for older
scripts, as ``EDG_WL_<NAME>`` (cli.md §1, formats.md §12.1). Host values are
``host[:port]``; timeouts are seconds (a float), with the library's defaults and
maxima:

=======================  ===========  =========================================
name                     default      meaning
=======================  ===========  =========================================
``QUERY_SERVER``         none         server of queries not tied to a job id
``QUERY_SERVER_OVERRIDE`` off         use ``QUERY_SERVER`` even for job ids
``QUERY_TIMEOUT``        120 (≤1800)  one query, connect to last byte
``LOG_SYNC_TIMEOUT``     120 (≤600)   a synchronous registration
``QUERY_JOBS_LIMIT``     0 (none)     soft limit of job queries
``QUERY_EVENTS_LIMIT``   0 (none)     soft limit of event queries
``QUERY_RESULTS``        unset        ``none``/``all``/``limited``
``LBPROXY_SERVE_SOCK``   ``<tmp>/lb_proxy_serve.sock``
``LBPROXY_STORE_SOCK``   ``<tmp>/lb_proxy_store.sock``
=======================  ===========  =========================================

Addresses are :class:`Address` values: a TCP ``host:port`` or a Unix socket path.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Mapping

from lbtx.jobid import DEFAULT_PORT, JobId

__all__ = ["Address", "Settings", "setting", "parse_server", "query_address",
           "store_address", "DEFAULT_QUERY_TIMEOUT", "DEFAULT_SYNC_TIMEOUT", "MAX_QUERY_TIMEOUT",
           "MAX_SYNC_TIMEOUT", "AddressError"]

SECONDS = 1.0
DEFAULT_QUERY_TIMEOUT = 120 * SECONDS
MAX_QUERY_TIMEOUT = 1800 * SECONDS
DEFAULT_SYNC_TIMEOUT = 120 * SECONDS
MAX_SYNC_TIMEOUT = 600 * SECONDS
PREFIXES = ("GLITE_WMS_", "EDG_WL_")


class AddressError(ValueError):
    """A server address that is not ``host[:port]``."""


@dataclass(frozen=True)
class Address:
    """Where a client connects: ``host`` and ``port``, or a Unix socket ``path``."""

    host: str | None = None
    port: int = 0
    path: str | None = None

    @classmethod
    def unix(cls, path: str) -> "Address":
        return cls(path=path)

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


def setting(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """``GLITE_WMS_<name>``, else ``EDG_WL_<name>``, else None (empty counts as unset)."""
    env = os.environ if env is None else env
    for prefix in PREFIXES:
        value = env.get(prefix + name)
        if value:
            return value
    return None


def parse_server(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``host[:port]`` (an IPv6 literal in brackets) as an address; a leading
    ``https://`` and a trailing ``/`` are tolerated, as users paste them."""
    t = text.strip()
    if t.startswith("https://"):
        t = t[len("https://"):]
    t = t.rstrip("/")
    if not t or "/" in t or any(c.isspace() for c in t):
        raise AddressError(f"bad server address {text!r}: expected host[:port]")
    host, port = t, default_port
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise AddressError(f"bad server address {text!r}: unclosed '['")
        host, rest = t[1:end], t[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"bad server address {text!r}")
            port = _port(rest[1:], text)
    elif ":" in t:
        host, _, port_text = t.rpartition(":")
        port = _port(port_text, text)
    if not host:
        raise AddressError(f"bad server address {text!r}: no host")
    return Address(host, port)


def _port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 65535:
        raise AddressError(f"bad port in server address {whole!r}")
    return int(text)


def _seconds(name: str, default: float, maximum: float, env) -> float:
    text = setting(name, env)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    if not value > 0:
        return default
    return min(value, maximum)


def _count(name: str, env) -> int:
    text = setting(name, env)
    try:
        return max(0, int(text)) if text is not None else 0
    except ValueError:
        return 0


@dataclass(frozen=True)
class Settings:
    """The client settings of one run (read once, from ``env``)."""

    query_server: str | None = None
    query_server_override: bool = False
    query_timeout: float = DEFAULT_QUERY_TIMEOUT
    sync_timeout: float = DEFAULT_SYNC_TIMEOUT
    jobs_limit: int = 0
    events_limit: int = 0
    query_results: str | None = None
    proxy_serve_sock: str = ""
    proxy_store_sock: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        override = (setting("QUERY_SERVER_OVERRIDE", env) or "").lower()
        tmp = tempfile.gettempdir()
        return cls(
            query_server=setting("QUERY_SERVER", env),
            query_server_override=override in ("1", "yes", "true", "on"),
            query_timeout=_seconds("QUERY_TIMEOUT", DEFAULT_QUERY_TIMEOUT, MAX_QUERY_TIMEOUT, env),
            sync_timeout=_seconds("LOG_SYNC_TIMEOUT", DEFAULT_SYNC_TIMEOUT, MAX_SYNC_TIMEOUT, env),
            jobs_limit=_count("QUERY_JOBS_LIMIT", env),
            events_limit=_count("QUERY_EVENTS_LIMIT", env),
            query_results=(setting("QUERY_RESULTS", env) or None),
            proxy_serve_sock=setting("LBPROXY_SERVE_SOCK", env)
            or os.path.join(tmp, "lb_proxy_serve.sock"),
            proxy_store_sock=setting("LBPROXY_STORE_SOCK", env)
            or os.path.join(tmp, "lb_proxy_store.sock"),
        )


def query_address(settings: Settings, job_id: JobId | None = None,
                  server: str | None = None) -> Address:
    """The server to ask: ``server`` (``--server``/``-m``) if given; for a job the
    server in its id unless ``QUERY_SERVER_OVERRIDE`` is on; else ``QUERY_SERVER``.

    :raises AddressError: no server is known, or its address is malformed.
    """
    if server:
        return parse_server(server)
    if job_id is not None and not (settings.query_server_override and settings.query_server):
        return Address(job_id.host, job_id.port)
    if settings.query_server:
        return parse_server(settings.query_server)
    raise AddressError("no server given (set GLITE_WMS_QUERY_SERVER or use --server)")


def store_address(job_id: JobId) -> Address:
    """Where events of ``job_id`` are delivered: its server's query port plus one."""
    host, port = job_id.store_address
    return Address(host, port)
