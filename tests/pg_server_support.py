"""Real ``twistd lb-server`` processes on PostgreSQL, and reading job states back
through their query port, for the multi-process and reconnection tests.

:func:`start_pg_server` starts one (queries and intake on free ports, the
peers a super-user so that every job of every owner can be read back); :func:`json_views` reads the
JSON API view of many jobs over one kept-alive connection; :func:`legacy_statuses`
reads them through the legacy query protocol.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lbtx.cli.environment import Address
from lbtx.cli.query_client import QueryClient
from lbtx.protocols.legacy_query.messages import StatusFlag

from daemon_support import connects, free_port, start_daemon, stop_daemon, wait_until

__all__ = ["PgServer", "pg_url", "start_pg_server", "json_get", "json_views",
           "legacy_statuses"]

IDENTITY = "/DC=org/DC=example/CN=Test Interlogger"


def pg_url(dsn: str) -> str:
    """A ``key=value`` libpq connection string as the ``postgresql://`` URL of --db."""
    kv = dict(part.split("=", 1) for part in dsn.split())
    auth = quote(kv.get("user", ""), safe="")
    if kv.get("password"):
        auth += ":" + quote(kv["password"], safe="")
    return (f"postgresql://{auth}{'@' if auth else ''}{kv.get('host', '127.0.0.1')}:"
            f"{kv.get('port', '5432')}/{kv['dbname']}")


@dataclass
class PgServer:
    """A running lb-server process: its ports and log."""

    name: str
    proc: object
    query_port: int
    store_port: int
    log: Path

    def stop(self, *, kill: bool = False) -> None:
        stop_daemon(self.proc, kill=kill)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def start_pg_server(workdir: Path, name: str, dsn: str, *extra: str) -> PgServer:
    """``twistd lb-server --db postgresql://...`` named ``name`` (its log is
    ``workdir/NAME.log``), once both its ports accept connections. Its plaintext
    peers are :data:`IDENTITY`, a super-user (so queries read every job, while
    the events, which all name their sender, get the rights checks of lbtx
    replay)."""
    query, store = free_port(), free_port()
    proc = start_daemon("lb-server", [
        "--data-dir", str(workdir / f"{name}-data"), "--db", pg_url(dsn),
        "--listen-store", f"tcp:{store}:interface=127.0.0.1",
        "--listen-query", f"tcp:{query}:interface=127.0.0.1",
        "--peer-identity", IDENTITY, "--superuser", IDENTITY, "--request-timeout", "30",
        *extra],
        workdir, [store, query], tag=name)
    try:
        wait_until(lambda: connects(query), 30, f"the query port of {name}")
    except AssertionError:
        stop_daemon(proc, kill=True)
        raise
    return PgServer(name, proc, query, store, workdir / f"{name}.log")


def json_views(port: int, job_ids, *, flags: str = "children,childhist") -> dict[str, dict]:
    """job id -> the ``job`` document of ``GET /api/jobs/<id>?flags=FLAGS``, read
    over one kept-alive connection."""
    out = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for job_id in job_ids:
            conn.request("GET", f"/api/jobs/{quote(str(job_id), safe='')}?flags={flags}")
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (job_id, response.status, body[:300])
            out[str(job_id)] = json.loads(body)["job"]
    finally:
        conn.close()
    return out


def json_get(port: int, path: str) -> tuple[int, dict]:
    """``GET path`` on the query port: ``(HTTP status, JSON document)``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def legacy_statuses(port: int, job_ids) -> dict[str, object]:
    """job id -> the :class:`~lbtx.status.JobStatus` a legacy jobStat answer carries."""
    client = QueryClient(Address("127.0.0.1", port), timeout=30)
    return {str(j): client.job_status(j, StatusFlag.CLASSADS | StatusFlag.CHILDREN
                                        | StatusFlag.CHILDHIST_FAST).status
            for j in job_ids}
