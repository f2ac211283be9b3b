"""A private PostgreSQL server for the tests (and benchmarks) that need one.

:class:`PgCluster` creates a cluster under a temporary directory with ``initdb``,
starts it listening on 127.0.0.1 on a free port (and on a unix socket inside the
directory), hands out fresh databases, and stops and removes everything at the
end. ``restart()``, and ``halt(mode)`` with ``resume()``, stop and start it under
running clients (reconnection tests). When the tests run as root the server runs as an unprivileged user
(``nobody``, or a ``lbtx-test`` user created on demand), which owns the directory.

Binaries are looked up in ``$LBTX_PG_BIN``, then on ``PATH``, then in
``/usr/lib/postgresql/<version>/bin`` (newest first). Set ``LBTX_TEST_POSTGRES``
to a libpq connection string (``host=... port=... user=...``) to use a server
that is already running instead; databases created there are dropped at the end.

The pytest fixtures (registered by ``conftest.py``):

* ``pg_cluster`` (session): the running server, or ``pytest.skip`` when no
  PostgreSQL binaries can be found;
* ``pg_dsn`` (function): the connection string of a new, empty database.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lbtx.testing.ports import free_port

#: the unprivileged user created for the server when ``nobody`` does not exist
TEST_USER = "lbtx-test"
SUPERUSER = "postgres"
START_TIMEOUT = 60  # seconds


def find_bindir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates = []
    env = os.environ.get("LBTX_PG_BIN")
    if env:
        candidates.append(Path(env))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(path: str) -> tuple:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        candidates.append(Path(d))
    for d in candidates:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _server_user() -> str | None:
    """The user to run the server as: None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", TEST_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    TEST_USER], check=True, capture_output=True)
    return TEST_USER


class PgCluster:
    """A throw-away PostgreSQL server; ``start()`` it, ``stop()`` it (idempotent)."""

    def __init__(self, bindir: Path, *, fsync: bool = False):
        self.bindir = bindir
        self.fsync = fsync
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="lbtx-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.logfile = self.root / "server.log"
        self.port = 0
        self._options = ""
        self.running = False
        self._names = itertools.count(1)

    # --- running commands as the server's user ---
    def _run(self, *argv: str, **kw) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, **kw)

    def start(self) -> "PgCluster":
        self.sockets.mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for p in (self.root, self.sockets):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")
        last_error = None
        for _ in range(5):
            self.port = free_port()
            self._options = (f"-h 127.0.0.1 -p {self.port} -k {self.sockets}"
                             f" -c fsync={'on' if self.fsync else 'off'} -c full_page_writes=off"
                             " -c max_connections=100 -c shared_buffers=128MB")
            try:
                self._pg_ctl_start()
            except subprocess.CalledProcessError as e:
                last_error = e
                continue
            self.running = True
            return self
        log = self.logfile.read_text() if self.logfile.exists() else ""
        self.remove()
        raise RuntimeError(f"PostgreSQL did not start: {last_error}; log:\n{log[-2000:]}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.running:
            try:
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))
            except subprocess.CalledProcessError:
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))
            self.running = False
        self.remove()

    def restart(self) -> None:
        """Stop the server and start it again on the same port (for reconnection tests)."""
        self._run("pg_ctl", "restart", "-w", "-m", "fast", "-D", str(self.data), "-l",
                  str(self.logfile))

    def halt(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (``pg_ctl stop -m MODE``: ``smart``, ``fast``
        or ``immediate``), so that :meth:`resume` starts it again on the same port."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        self._run("pg_ctl", "stop", "-w", "-t", str(START_TIMEOUT), "-m", mode,
                  "-D", str(self.data))
        self.running = False

    def resume(self) -> None:
        """Start a server stopped by :meth:`halt` again, on the same port and data."""
        self._pg_ctl_start()
        self.running = True

    def _pg_ctl_start(self) -> None:
        self._run("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT), "-D", str(self.data),
                  "-l", str(self.logfile), "-o", self._options)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ---
    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def create_database(self) -> str:
        """Create a new empty database; return its connection string."""
        return _create_database(self.dsn(), f"lbtx_{os.getpid()}_{next(self._names)}")


def _create_database(admin_dsn: str, name: str) -> str:
    import psycopg2
    conn = psycopg2.connect(admin_dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
    finally:
        conn.close()
    return _with_dbname(admin_dsn, name)


def _with_dbname(dsn: str, name: str) -> str:
    parts = [p for p in dsn.split() if not p.startswith("dbname=")]
    return " ".join(parts + [f"dbname={name}"])


class ExternalServer:
    """A server that is already running (``LBTX_TEST_POSTGRES``); databases are dropped at the end."""

    def __init__(self, dsn: str):
        self.admin = dsn
        self.created: list[str] = []
        self._names = itertools.count(1)

    def create_database(self) -> str:
        name = f"lbtx_{os.getpid()}_{int(time.time())}_{next(self._names)}"
        self.created.append(name)
        return _create_database(self.admin, name)

    def stop(self) -> None:
        import psycopg2
        conn = psycopg2.connect(self.admin)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in self.created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


@pytest.fixture(scope="session")
def pg_cluster():
    """A running PostgreSQL server for the whole test session, stopped at the end."""
    external = os.environ.get("LBTX_TEST_POSTGRES")
    if external:
        server = ExternalServer(external)
    else:
        bindir = find_bindir()
        if bindir is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL binaries not found on the CI machine (set LBTX_PG_BIN)")
            pytest.skip("PostgreSQL binaries not found (set LBTX_PG_BIN)")
        server = PgCluster(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg_cluster) -> str:
    """The connection string of a fresh, empty database on the session's server."""
    return pg_cluster.create_database()
